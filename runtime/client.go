package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
)

// Client enqueues jobs and reads their state. It is safe for concurrent use.
type Client struct {
	backend   Backend
	now       func() time.Time
	scheduler Scheduler // see WithScheduler; may be nil
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithClock sets the clock the client stamps jobs with (tests use a fake one).
func WithClock(now func() time.Time) ClientOption {
	return func(c *Client) { c.now = now }
}

// NewClient returns a client over backend.
func NewClient(backend Backend, opts ...ClientOption) *Client {
	c := &Client{backend: backend, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Backend returns the backend the client writes to.
func (c *Client) Backend() Backend { return c.backend }

// Close closes the backend (and the scheduler given with WithScheduler).
func (c *Client) Close() error { return errors.Join(c.closeScheduler(), c.backend.Close()) }

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

// Request is one job to enqueue in a batch.
type Request struct {
	Spec    TaskSpec
	Args    []byte
	Options []EnqueueOption
}

// NewJob builds the record of a job of spec with encoded args, applying opts,
// stamped at now. It checks the options and returns an error naming a bad one.
func NewJob(spec TaskSpec, args []byte, now time.Time, opts ...EnqueueOption) (*Job, error) {
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
	return j, nil
}

// Enqueue adds one job of spec with already-encoded args. Generated Delay
// methods call it; most code uses those instead.
func (c *Client) Enqueue(ctx context.Context, spec TaskSpec, args []byte, opts ...EnqueueOption) (EnqueueResult, error) {
	res, err := c.EnqueueBatch(ctx, []Request{{Spec: spec, Args: args, Options: opts}})
	if err != nil {
		return EnqueueResult{}, err
	}
	return res[0], nil
}

// EnqueueBatch adds many jobs in one call (one transaction on SQLite).
func (c *Client) EnqueueBatch(ctx context.Context, reqs []Request) ([]EnqueueResult, error) {
	now := c.now()
	jobs := make([]*Job, len(reqs))
	for i, r := range reqs {
		j, err := NewJob(r.Spec, r.Args, now, r.Options...)
		if err != nil {
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

// Cancel cancels a scheduled, queued or retrying job.
func (c *Client) Cancel(ctx context.Context, id string) error {
	if err := c.backend.Cancel(ctx, id, c.now()); err != nil {
		return fmt.Errorf("cancel job %s: %w", id, err)
	}
	return nil
}

// Retry queues a failed, cancelled or quarantined job for one more attempt, keeping its history.
func (c *Client) Retry(ctx context.Context, id string) error {
	if err := c.backend.Retry(ctx, id, c.now()); err != nil {
		return fmt.Errorf("retry job %s: %w", id, err)
	}
	return nil
}

// Pending is a job enqueued through a typed handle; Wait returns its typed result.
type Pending[T any] struct {
	client *Client
	res    EnqueueResult
}

// NewPending returns the typed handle of an enqueued job. Generated code calls it.
func NewPending[T any](c *Client, res EnqueueResult) *Pending[T] {
	return &Pending[T]{client: c, res: res}
}

// ID returns the job's id.
func (p *Pending[T]) ID() string { return p.res.ID }

// Duplicate reports whether a unique key matched an existing job, which this handle refers to.
func (p *Pending[T]) Duplicate() bool { return p.res.Duplicate }

// Job returns the job's current record.
func (p *Pending[T]) Job(ctx context.Context) (*Job, error) { return p.client.Get(ctx, p.res.ID) }

// Wait blocks until the job is final and returns its result, or a *JobError
// when it did not succeed.
func (p *Pending[T]) Wait(ctx context.Context) (T, error) {
	var zero T
	j, err := p.client.Wait(ctx, p.res.ID)
	if err != nil {
		return zero, err
	}
	if j.State != StateSucceeded {
		return zero, &JobError{ID: j.ID, Task: j.Task, State: j.State, Message: j.Error}
	}
	var v T
	if len(j.Result) == 0 {
		return v, nil
	}
	if err := DecodeResult(j.Result, &v); err != nil {
		return zero, fmt.Errorf("job %s: %w", j.ID, err)
	}
	return v, nil
}

// JobError reports a job that ended without success.
type JobError struct {
	ID      string
	Task    string
	State   State
	Message string
}

func (e *JobError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("job %s (%s) %s", e.ID, e.Task, e.State)
	}
	return fmt.Sprintf("job %s (%s) %s: %s", e.ID, e.Task, e.State, e.Message)
}
