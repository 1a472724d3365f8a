package nuvom

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nuvom/nuvom/runtime/nuvomimpl"
	"github.com/oklog/ulid/v2"
)

// Client enqueues jobs and reads their state. It is safe for concurrent use.
//
// A client does not own the backend it is given: Close leaves it open unless
// the client was made with OwnBackend (runtime/config's OpenClient does that),
// so a worker in the same process may share the backend. Close a shared
// backend yourself, after the last client and worker are done with it.
type Client struct {
	backend   Backend
	now       func() time.Time
	scheduler Scheduler // see WithScheduler; may be nil
	owns      bool      // Close closes backend and scheduler
	hooks     []EnqueueHook
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithClock sets the clock the client stamps jobs with. It is meant for tests,
// which use a fake one.
func WithClock(now func() time.Time) ClientOption {
	return func(c *Client) { c.now = now }
}

// OwnBackend makes Close close the client's backend (and the scheduler given
// with WithScheduler, when it is an io.Closer).
func OwnBackend() ClientOption {
	return func(c *Client) { c.owns = true }
}

// NewClient returns a client over backend. See Client for who closes backend.
func NewClient(backend Backend, opts ...ClientOption) *Client {
	c := &Client{backend: backend, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Backend returns the backend the client writes to.
func (c *Client) Backend() Backend { return c.backend }

// Inspector returns an inspector over the client's backend, for listing,
// statistics and admin operations.
func (c *Client) Inspector() *Inspector { return NewInspector(c.backend, WithInspectorClock(c.now)) }

// Close closes the backend and the scheduler when the client owns them (see
// OwnBackend); otherwise it does nothing. It is safe to call more than once
// only when the backend's Close is.
func (c *Client) Close() error {
	if !c.owns {
		return nil
	}
	return errors.Join(c.closeScheduler(), c.backend.Close())
}

// EnqueueOption changes one enqueue call.
type EnqueueOption func(*enqueueSettings)

type enqueueSettings struct {
	delay         time.Duration
	at            time.Time
	queue         string
	priority      *int
	retries       *int
	timeout       *time.Duration
	timeoutPolicy TimeoutPolicy
	uniqueKey     string
	uniqueFor     time.Duration
	meta          map[string]string
}

// In delays the job by d.
func In(d time.Duration) EnqueueOption { return func(s *enqueueSettings) { s.delay = d } }

// At runs the job no earlier than t.
func At(t time.Time) EnqueueOption { return func(s *enqueueSettings) { s.at = t } }

// Queue puts the job on queue q instead of the task's own.
func Queue(q string) EnqueueOption { return func(s *enqueueSettings) { s.queue = q } }

// Priority overrides the task's priority; higher runs first.
func Priority(p int) EnqueueOption { return func(s *enqueueSettings) { s.priority = &p } }

// Retries overrides the number of retries after the first attempt.
func Retries(n int) EnqueueOption { return func(s *enqueueSettings) { s.retries = &n } }

// Timeout overrides the per-attempt timeout; 0 means none.
func Timeout(d time.Duration) EnqueueOption { return func(s *enqueueSettings) { s.timeout = &d } }

// OnTimeout overrides the timeout policy.
func OnTimeout(p TimeoutPolicy) EnqueueOption {
	return func(s *enqueueSettings) { s.timeoutPolicy = p }
}

// Unique makes the enqueue idempotent: while a job with the same key was created
// less than window ago, enqueueing again returns that job instead of a new one.
func Unique(key string, window time.Duration) EnqueueOption {
	return func(s *enqueueSettings) { s.uniqueKey, s.uniqueFor = key, window }
}

// Request is one job to enqueue with EnqueueBatch. Generated task handles
// build them with typed arguments:
//
//	reqs = append(reqs, images.ResizeTask.Request("a.png", 128, nuvom.Priority(5)))
//
// A task known only by its spec takes its arguments as a msgpack array, one
// element per parameter after the context (what the nuvom CLI does from JSON).
type Request struct {
	Spec TaskSpec
	// Args are the msgpack-encoded arguments.
	Args    []byte
	Options []EnqueueOption
	// Err, when not nil, is an error met while building the request (encoding
	// its arguments); enqueueing the request fails with it and stores nothing.
	Err error
}

// newJob builds the record of a job of spec with encoded args, applying opts,
// stamped at now. It checks the options and returns an error naming a bad one.
func newJob(spec TaskSpec, args []byte, now time.Time, opts ...EnqueueOption) (*Job, error) {
	var s enqueueSettings
	for _, o := range opts {
		o(&s)
	}
	if spec.Name == "" {
		return nil, errors.New("enqueue: task name is empty")
	}
	o := spec.Options
	j := &Job{
		ID:            ulid.Make().String(),
		Task:          spec.Name,
		Signature:     spec.Signature,
		Args:          args,
		Queue:         o.Queue,
		Priority:      o.Priority,
		State:         StateQueued,
		MaxAttempts:   o.Retries + 1,
		RunAt:         now,
		Timeout:       o.Timeout,
		TimeoutPolicy: o.TimeoutPolicy,
		StoreResult:   o.StoreResult,
		CreatedAt:     now,
		Attempts:      []Attempt{},
	}
	if s.queue != "" {
		j.Queue = s.queue
	}
	if j.Queue == "" {
		j.Queue = "default"
	}
	if s.priority != nil {
		j.Priority = *s.priority
	}
	if s.retries != nil {
		if *s.retries < 0 {
			return nil, fmt.Errorf("enqueue %s: retries %d is negative", spec.Name, *s.retries)
		}
		j.MaxAttempts = *s.retries + 1
	}
	if s.timeout != nil {
		if *s.timeout < 0 {
			return nil, fmt.Errorf("enqueue %s: timeout %s is negative", spec.Name, *s.timeout)
		}
		j.Timeout = *s.timeout
	}
	if s.timeoutPolicy != "" {
		switch s.timeoutPolicy {
		case TimeoutRetry, TimeoutFail, TimeoutIgnore:
			j.TimeoutPolicy = s.timeoutPolicy
		default:
			return nil, fmt.Errorf("enqueue %s: timeout policy %q is not one of retry, fail, ignore", spec.Name, s.timeoutPolicy)
		}
	}
	if j.TimeoutPolicy == "" {
		j.TimeoutPolicy = TimeoutFail
	}
	if s.delay < 0 {
		return nil, fmt.Errorf("enqueue %s: delay %s is negative", spec.Name, s.delay)
	}
	if s.delay > 0 {
		j.RunAt = now.Add(s.delay)
	}
	if !s.at.IsZero() {
		j.RunAt = s.at
	}
	if j.RunAt.After(now) {
		j.State = StateScheduled
	}
	if s.uniqueKey != "" {
		if s.uniqueFor <= 0 {
			return nil, fmt.Errorf("enqueue %s: unique window for key %q must be positive", spec.Name, s.uniqueKey)
		}
		j.UniqueKey = s.uniqueKey
		j.UniqueUntil = now.Add(s.uniqueFor)
	}
	j.Meta = s.meta
	return j, nil
}

// Enqueue adds one job of the task spec describes, with its msgpack-encoded
// args (see Request). It is the dynamic form: generated Delay methods, which
// take typed arguments, call it.
func (c *Client) Enqueue(ctx context.Context, spec TaskSpec, args []byte, opts ...EnqueueOption) (EnqueueResult, error) {
	res, err := c.EnqueueBatch(ctx, []Request{{Spec: spec, Args: args, Options: opts}})
	if err != nil {
		return EnqueueResult{}, err
	}
	return res[0], nil
}

// EnqueueBatch adds many jobs in one call, all or none (one transaction on
// SQLite). Results are in the order of reqs. A bad request fails the whole
// batch with an error naming its index.
func (c *Client) EnqueueBatch(ctx context.Context, reqs []Request) ([]EnqueueResult, error) {
	now := c.now()
	jobs := make([]*Job, len(reqs))
	for i, r := range reqs {
		if r.Err != nil {
			return nil, fmt.Errorf("enqueue: request %d (%s): %w", i, r.Spec.Name, r.Err)
		}
		j, err := newJob(r.Spec, r.Args, now, r.Options...)
		if err != nil {
			if len(reqs) > 1 {
				return nil, fmt.Errorf("request %d: %w", i, err)
			}
			return nil, err
		}
		if err := c.runHooks(ctx, j); err != nil {
			if len(reqs) > 1 {
				return nil, fmt.Errorf("request %d: %w", i, err)
			}
			return nil, err
		}
		jobs[i] = j
	}
	res, err := c.backend.Enqueue(ctx, jobs)
	if err != nil {
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	return res, nil
}

// Get returns a job's full record.
func (c *Client) Get(ctx context.Context, id string) (*Job, error) {
	j, err := c.backend.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get job %s: %w", id, err)
	}
	return j, nil
}

// Wait blocks until the job reaches a final state (or ctx ends) and returns its record.
func (c *Client) Wait(ctx context.Context, id string) (*Job, error) {
	delay := time.Millisecond
	for {
		j, err := c.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if j.State.Final() {
			return j, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait for job %s: %w", id, ctx.Err())
		case <-t.C:
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// Cancel cancels a job that has not finished. A scheduled, queued or retrying
// job will not run; a running one has its context cancelled by the worker that
// runs it (within about a second, in any process) and its attempt is recorded
// as cancelled. Cancelling a finished job fails with an error that matches
// ErrWrongState; an unknown id, ErrNotFound.
func (c *Client) Cancel(ctx context.Context, id string) error { return c.Inspector().Cancel(ctx, id) }

// Pending is a typed handle to an enqueued job: Wait returns its result as
// the task's result type. Generated Delay methods return one; PendingOf makes
// one for a job enqueued otherwise, or known by its id.
type Pending[T any] struct {
	client *Client
	res    EnqueueResult
}

// PendingOf returns the typed handle of an enqueued job. T must be the task's
// result type (struct{} for a task without one). For a job known only by its
// id, pass EnqueueResult{ID: id}.
func PendingOf[T any](c *Client, res EnqueueResult) *Pending[T] {
	return &Pending[T]{client: c, res: res}
}

// ID returns the job's id.
func (p *Pending[T]) ID() string { return p.res.ID }

// String returns "job " and the job's id, so that printing a handle shows what it refers to.
func (p *Pending[T]) String() string { return "job " + p.res.ID }

// Duplicate reports whether a unique key matched an existing job, which this handle refers to.
func (p *Pending[T]) Duplicate() bool { return p.res.Duplicate }

// Job returns the job's current record.
func (p *Pending[T]) Job(ctx context.Context) (*Job, error) { return p.client.Get(ctx, p.res.ID) }

// Cancel cancels the job (see Client.Cancel).
func (p *Pending[T]) Cancel(ctx context.Context) error { return p.client.Cancel(ctx, p.res.ID) }

// Wait blocks until the job is final and returns its result, or a *JobError
// when it did not succeed (errors.Is tells ErrJobFailed, ErrJobCancelled,
// ErrJobTimedOut and ErrJobQuarantined apart).
func (p *Pending[T]) Wait(ctx context.Context) (T, error) {
	var zero T
	j, err := p.client.Wait(ctx, p.res.ID)
	if err != nil {
		return zero, err
	}
	if j.State != StateSucceeded {
		return zero, newJobError(j)
	}
	var v T
	if len(j.Result) == 0 {
		return v, nil
	}
	if err := nuvomimpl.DecodeResult(j.Result, &v); err != nil {
		return zero, fmt.Errorf("job %s: %w", j.ID, err)
	}
	return v, nil
}
