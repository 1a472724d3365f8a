package nuvom_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/memory"
	"github.com/nuvom/nuvom/runtime/nuvomimpl"
)

// --- helpers ---

func newBackend(t *testing.T) *memory.Backend {
	t.Helper()
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func spec(name string, o nuvom.TaskOptions) nuvom.TaskSpec {
	if o.Queue == "" {
		o.Queue = "default"
	}
	return nuvom.TaskSpec{Name: name, Signature: "sig-" + name, Options: o}
}

func def(s nuvom.TaskSpec, invoke nuvom.InvokeFunc) nuvom.TaskDef {
	return nuvom.TaskDef{TaskSpec: s, Invoke: invoke}
}

func registry(t *testing.T, defs ...nuvom.TaskDef) *nuvom.Registry {
	t.Helper()
	r, err := nuvom.NewRegistry(defs...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func enqueue(t *testing.T, b nuvom.Backend, s nuvom.TaskSpec, opts ...nuvom.EnqueueOption) string {
	t.Helper()
	res, err := nuvom.NewClient(b).Enqueue(context.Background(), s, []byte{0x90}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

func getJob(t *testing.T, b nuvom.Backend, id string) *nuvom.Job {
	t.Helper()
	j, err := b.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func newWorker(t *testing.T, b nuvom.Backend, reg *nuvom.Registry, o nuvom.WorkerOptions) *nuvom.Worker {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	if o.Concurrency == 0 {
		o.Concurrency = 4
	}
	w, err := nuvom.NewWorker(b, reg, o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// burst runs a burst worker to completion.
func burst(t *testing.T, b nuvom.Backend, reg *nuvom.Registry, o nuvom.WorkerOptions) {
	t.Helper()
	o.Burst = true
	if o.PollInterval == 0 {
		o.PollInterval = 5 * time.Millisecond
	}
	w := newWorker(t, b, reg, o)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // hang guard
	defer cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("burst worker did not finish in time")
	}
}

// start runs a worker in the background; the returned function cancels it gracefully and waits.
func start(t *testing.T, w *nuvom.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Error(err)
				}
			case <-time.After(5 * time.Minute): // hang guard
				t.Error("worker did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFinal(t *testing.T, b nuvom.Backend, id string) *nuvom.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	j, err := nuvom.NewClient(b).Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func outcomes(j *nuvom.Job) []string {
	var out []string
	for _, a := range j.Attempts {
		out = append(out, a.Outcome)
	}
	return out
}

func ok(context.Context, []byte) ([]byte, error) { return []byte{0xc0}, nil }

// --- tests ---

func TestBurstRunsEveryJobAndStoresResults(t *testing.T) {
	b := newBackend(t)
	keep := spec("keep", nuvom.TaskOptions{StoreResult: true})
	drop := spec("drop", nuvom.TaskOptions{StoreResult: false})
	var ran atomic.Int64
	invoke := func(ctx context.Context, args []byte) ([]byte, error) {
		ran.Add(1)
		return []byte{0x2a}, nil
	}
	reg := registry(t, def(keep, invoke), def(drop, invoke))
	var ids []string
	for i := 0; i < 150; i++ {
		ids = append(ids, enqueue(t, b, keep))
	}
	dropID := enqueue(t, b, drop)
	burst(t, b, reg, nuvom.WorkerOptions{Concurrency: 3, BatchSize: 7})
	if ran.Load() != 151 {
		t.Fatalf("ran %d jobs, want 151", ran.Load())
	}
	for _, id := range ids {
		j := getJob(t, b, id)
		if j.State != nuvom.StateSucceeded || !bytes.Equal(j.Result, []byte{0x2a}) || j.Attempt != 1 {
			t.Fatalf("job %s: state %s result %x attempt %d", id, j.State, j.Result, j.Attempt)
		}
		if got := outcomes(j); !slices.Equal(got, []string{nuvom.OutcomeSucceeded}) {
			t.Fatalf("job %s attempts %v", id, got)
		}
	}
	if j := getJob(t, b, dropID); j.State != nuvom.StateSucceeded || len(j.Result) != 0 {
		t.Fatalf("StoreResult false: state %s result %x", j.State, j.Result)
	}
}

func TestRejectedJobsAreNotRun(t *testing.T) {
	b := newBackend(t)
	var ran atomic.Int64
	invoke := func(context.Context, []byte) ([]byte, error) { ran.Add(1); return nil, nil }
	known := spec("known", nuvom.TaskOptions{Retries: 3})
	reg := registry(t, def(known, invoke))

	unknown := enqueue(t, b, spec("ghost", nuvom.TaskOptions{Retries: 3}))
	stale := known
	stale.Signature = "sig-old"
	mismatch := enqueue(t, b, stale)
	burst(t, b, reg, nuvom.WorkerOptions{HandBackFor: -1})

	if ran.Load() != 0 {
		t.Fatalf("a rejected job ran %d times", ran.Load())
	}
	// A job of a task this worker lacks is not claimed: it waits for a worker that has it.
	if j := getJob(t, b, unknown); j.State != nuvom.StateQueued || len(j.Attempts) != 0 {
		t.Fatalf("unknown task: state %s attempts %v, want queued and untouched", j.State, outcomes(j))
	}
	j := getJob(t, b, mismatch)
	if j.State != nuvom.StateFailed || !strings.Contains(j.Error, "sig-old") || !strings.Contains(j.Error, "sig-known") {
		t.Fatalf("signature mismatch: state %s error %q", j.State, j.Error)
	}
	if got := outcomes(j); !slices.Equal(got, []string{nuvom.OutcomeRejected}) || j.Attempt != 1 {
		t.Fatalf("signature mismatch: attempts %v at attempt %d, want one rejected", got, j.Attempt)
	}
}

// During a rolling deploy, a job whose signature differs from this worker's
// is handed back (its attempt refunded) for HandBackFor, so that a worker of
// the other deploy can run it; then it fails.
func TestSignatureMismatchIsHandedBackThenFails(t *testing.T) {
	b := newBackend(t)
	known := spec("known", nuvom.TaskOptions{})
	reg := registry(t, def(known, ok))
	stale := known
	stale.Signature = "sig-new"
	clock := time.Now()
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	res, err := nuvom.NewClient(b, nuvom.WithClock(now)).Enqueue(context.Background(), stale, []byte{0x90})
	if err != nil {
		t.Fatal(err)
	}
	id := res.ID
	opts := nuvom.WorkerOptions{Now: now, HandBackFor: time.Minute}
	burst(t, b, reg, opts)
	j := getJob(t, b, id)
	if j.State != nuvom.StateRetrying || j.MaxAttempts != 2 || !slices.Equal(outcomes(j), []string{nuvom.OutcomeHandedBack}) {
		t.Fatalf("first look: state %s max attempts %d attempts %v; want retrying, refunded, handed back", j.State, j.MaxAttempts, outcomes(j))
	}
	for range 4 { // 1s, 2s, 4s, 8s later: still within the minute
		advance(j.RunAt.Sub(now()))
		burst(t, b, reg, opts)
		j = getJob(t, b, id)
	}
	if j.State != nuvom.StateRetrying || len(j.Attempts) != 5 || j.MaxAttempts != 6 {
		t.Fatalf("within the window: state %s, %d attempts, max %d; want retrying after 5 hand-backs", j.State, len(j.Attempts), j.MaxAttempts)
	}
	advance(time.Minute)
	burst(t, b, reg, opts)
	j = getJob(t, b, id)
	if j.State != nuvom.StateFailed || !strings.Contains(j.Error, "signature mismatch") {
		t.Fatalf("after the window: state %s error %q, want failed with the mismatch", j.State, j.Error)
	}
}

func TestPanicFailsTheAttemptAndWorkerGoesOn(t *testing.T) {
	b := newBackend(t)
	var calls atomic.Int64
	s := spec("flaky", nuvom.TaskOptions{Retries: 1})
	reg := registry(t, def(s, func(ctx context.Context, _ []byte) ([]byte, error) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return nil, nil
	}), def(spec("fine", nuvom.TaskOptions{}), ok))
	id := enqueue(t, b, s)
	other := enqueue(t, b, spec("fine", nuvom.TaskOptions{}))
	var seen []nuvom.Outcome
	var mu sync.Mutex
	burst(t, b, reg, nuvom.WorkerOptions{Concurrency: 1, OnOutcome: func(_ nuvom.JobInfo, o nuvom.Outcome) {
		mu.Lock()
		seen = append(seen, o)
		mu.Unlock()
	}})
	j := getJob(t, b, id)
	if j.State != nuvom.StateSucceeded || j.Attempt != 2 {
		t.Fatalf("state %s attempt %d, want succeeded on attempt 2", j.State, j.Attempt)
	}
	if got := outcomes(j); !slices.Equal(got, []string{nuvom.OutcomePanicked, nuvom.OutcomeSucceeded}) {
		t.Fatalf("attempts %v", got)
	}
	if j.Attempts[0].Error != "panic: boom" {
		t.Fatalf("panic attempt error %q", j.Attempts[0].Error)
	}
	var panicked *nuvom.Outcome
	for i := range seen {
		if seen[i].Attempt.Outcome == nuvom.OutcomePanicked {
			panicked = &seen[i]
		}
	}
	if panicked == nil || !strings.Contains(panicked.PanicStack, "worker_test.go") || panicked.State != nuvom.StateRetrying {
		t.Fatalf("panicked outcome %+v", panicked)
	}
	if getJob(t, b, other).State != nuvom.StateSucceeded {
		t.Fatal("the worker stopped after a panic")
	}
}

func TestPanicStackIsStoredWhenFinal(t *testing.T) {
	b := newBackend(t)
	s := spec("bad", nuvom.TaskOptions{})
	reg := registry(t, def(s, func(context.Context, []byte) ([]byte, error) { panic(errors.New("kaput")) }))
	id := enqueue(t, b, s)
	burst(t, b, reg, nuvom.WorkerOptions{})
	j := getJob(t, b, id)
	if j.State != nuvom.StateFailed || j.Error != "panic: kaput" || !strings.Contains(j.PanicStack, "goroutine") {
		t.Fatalf("state %s error %q stack %q", j.State, j.Error, j.PanicStack)
	}
}

func TestDecodeErrorQuarantines(t *testing.T) {
	b := newBackend(t)
	s := spec("typed", nuvom.TaskOptions{Retries: 5})
	reg := registry(t, def(s, func(ctx context.Context, args []byte) ([]byte, error) {
		r := nuvomimpl.NewArgReader("typed", args, 1)
		_ = r.Int()
		return nil, r.Err()
	}))
	id := enqueue(t, b, s) // payload is an empty array: the task wants one arg
	burst(t, b, reg, nuvom.WorkerOptions{})
	j := getJob(t, b, id)
	if j.State != nuvom.StateQuarantined || j.Attempt != 1 {
		t.Fatalf("state %s attempt %d, want quarantined after 1", j.State, j.Attempt)
	}
	if !strings.Contains(j.Error, "payload has 0 args, the task takes 1") {
		t.Fatalf("error %q", j.Error)
	}
}

func TestRetriesAndErrorChain(t *testing.T) {
	b := newBackend(t)
	var calls atomic.Int64
	// No delay: a burst worker stops when no job is ready, and these retries must be.
	s := spec("retry", nuvom.TaskOptions{Retries: 2, Backoff: nuvom.BackoffFixed})
	base := errors.New("disk full")
	reg := registry(t, def(s, func(ctx context.Context, _ []byte) ([]byte, error) {
		if calls.Add(1) < 3 {
			return nil, fmt.Errorf("write: %w", errors.Join(base, errors.New("quota")))
		}
		return nil, nil
	}))
	id := enqueue(t, b, s)
	var chain []string
	burst(t, b, reg, nuvom.WorkerOptions{Concurrency: 1, PollInterval: time.Millisecond,
		OnOutcome: func(_ nuvom.JobInfo, o nuvom.Outcome) {
			if chain == nil {
				chain = o.ErrorChain
			}
		}})
	j := getJob(t, b, id)
	if j.State != nuvom.StateSucceeded || j.Attempt != 3 {
		t.Fatalf("state %s attempt %d", j.State, j.Attempt)
	}
	if got := outcomes(j); !slices.Equal(got, []string{"failed", "failed", "succeeded"}) {
		t.Fatalf("attempts %v", got)
	}
	want := []string{"write: disk full\nquota", "disk full\nquota", "disk full", "quota"}
	if !slices.Equal(chain, want) {
		t.Fatalf("error chain %q, want %q", chain, want)
	}
}

func TestRetryDecisions(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name      string
		opts      nuvom.TaskOptions
		err       error
		wantState nuvom.State
		wantDelay time.Duration // exact, or -1 for "within jitter of 4s"
	}{
		{"exhausted", nuvom.TaskOptions{}, errors.New("x"), nuvom.StateFailed, 0},
		{"no retry", nuvom.TaskOptions{Retries: 3}, nuvom.NoRetry(errors.New("x")), nuvom.StateFailed, 0},
		{"retry after", nuvom.TaskOptions{Retries: 3, RetryDelay: time.Hour}, nuvom.RetryAfter(7*time.Second, errors.New("x")), nuvom.StateRetrying, 7 * time.Second},
		{"fixed", nuvom.TaskOptions{Retries: 3, RetryDelay: 3 * time.Second, Backoff: nuvom.BackoffFixed}, errors.New("x"), nuvom.StateRetrying, 3 * time.Second},
		{"exponential first", nuvom.TaskOptions{Retries: 3, RetryDelay: 4 * time.Second, Backoff: nuvom.BackoffExponential}, errors.New("x"), nuvom.StateRetrying, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBackend(t)
			s := spec("t", c.opts)
			reg := registry(t, def(s, func(context.Context, []byte) ([]byte, error) { return nil, c.err }))
			res, err := nuvom.NewClient(b, nuvom.WithClock(func() time.Time { return now })).Enqueue(context.Background(), s, []byte{0x90})
			if err != nil {
				t.Fatal(err)
			}
			var got nuvom.Outcome
			burst(t, b, reg, nuvom.WorkerOptions{Now: func() time.Time { return now },
				OnOutcome: func(_ nuvom.JobInfo, o nuvom.Outcome) { got = o }})
			if got.State != c.wantState {
				t.Fatalf("state %s, want %s", got.State, c.wantState)
			}
			if j := getJob(t, b, res.ID); j.State != c.wantState {
				t.Fatalf("stored state %s, want %s", j.State, c.wantState)
			}
			if c.wantState != nuvom.StateRetrying {
				return
			}
			d := got.RunAt.Sub(now)
			if c.wantDelay >= 0 && d != c.wantDelay {
				t.Fatalf("delay %s, want %s", d, c.wantDelay)
			}
			if c.wantDelay < 0 && (d < 3200*time.Millisecond || d > 4800*time.Millisecond) {
				t.Fatalf("delay %s, want 4s ± 20%%", d)
			}
		})
	}
}

func TestTimeoutPolicies(t *testing.T) {
	cases := []struct {
		policy       nuvom.TimeoutPolicy
		retries      int
		wantState    nuvom.State
		wantOutcomes []string
	}{
		{nuvom.TimeoutFail, 2, nuvom.StateFailed, []string{"timed_out"}},
		{nuvom.TimeoutRetry, 1, nuvom.StateFailed, []string{"timed_out", "timed_out"}},
		{nuvom.TimeoutIgnore, 2, nuvom.StateSucceeded, []string{"timed_out"}},
	}
	for _, c := range cases {
		t.Run(string(c.policy), func(t *testing.T) {
			b := newBackend(t)
			s := spec("slow", nuvom.TaskOptions{Retries: c.retries, Timeout: 10 * time.Millisecond, TimeoutPolicy: c.policy, StoreResult: true})
			reg := registry(t, def(s, func(ctx context.Context, _ []byte) ([]byte, error) {
				<-ctx.Done() // a well-behaved task: returns when its context ends
				return []byte{0x01}, ctx.Err()
			}))
			id := enqueue(t, b, s)
			burst(t, b, reg, nuvom.WorkerOptions{PollInterval: time.Millisecond})
			j := getJob(t, b, id)
			if j.State != c.wantState || !slices.Equal(outcomes(j), c.wantOutcomes) {
				t.Fatalf("state %s attempts %v, want %s %v", j.State, outcomes(j), c.wantState, c.wantOutcomes)
			}
			if !strings.Contains(j.Attempts[0].Error, "timed out after 10ms") {
				t.Fatalf("attempt error %q", j.Attempts[0].Error)
			}
			if c.policy == nuvom.TimeoutIgnore && len(j.Result) != 0 {
				t.Fatalf("ignored timeout stored result %x", j.Result)
			}
		})
	}
}

func TestAbandonedTaskCannotWriteLater(t *testing.T) {
	b := newBackend(t)
	release := make(chan struct{})
	returned := make(chan struct{})
	var calls atomic.Int64
	s := spec("stubborn", nuvom.TaskOptions{Retries: 0, Timeout: 5 * time.Millisecond, TimeoutPolicy: nuvom.TimeoutFail, StoreResult: true})
	reg := registry(t, def(s, func(ctx context.Context, _ []byte) ([]byte, error) {
		if calls.Add(1) == 1 {
			<-release // ignores its context
		}
		return []byte{0x07}, nil
	}), def(spec("next", nuvom.TaskOptions{}), ok))
	var reported atomic.Int64
	mw := func(next nuvom.Handler) nuvom.Handler {
		return func(ctx context.Context, job nuvom.JobInfo) error {
			err := next(ctx, job)
			if job.Task == "stubborn" {
				close(returned)
			}
			return err
		}
	}
	id := enqueue(t, b, s)
	// Concurrency 1: the next job can only run because the abandoned runner was replaced.
	nextID := enqueue(t, b, spec("next", nuvom.TaskOptions{}), nuvom.Priority(-1))
	w := newWorker(t, b, reg, nuvom.WorkerOptions{Concurrency: 1, AbandonAfter: 10 * time.Millisecond, Middleware: []nuvom.Middleware{mw},
		PollInterval: 5 * time.Millisecond,
		OnOutcome: func(info nuvom.JobInfo, _ nuvom.Outcome) {
			if info.ID == id {
				reported.Add(1)
			}
		}})
	stop := start(t, w)
	defer stop()
	waitFinal(t, b, id)
	waitFinal(t, b, nextID)
	if w.Abandoned() != 1 {
		t.Fatalf("Abandoned() = %d, want 1 while the task ignores its context", w.Abandoned())
	}
	j := getJob(t, b, id)
	if j.State != nuvom.StateFailed || !slices.Equal(outcomes(j), []string{nuvom.OutcomeAbandoned}) {
		t.Fatalf("state %s attempts %v", j.State, outcomes(j))
	}
	if !strings.Contains(j.Error, "abandoned") {
		t.Fatalf("error %q", j.Error)
	}
	if getJob(t, b, nextID).State != nuvom.StateSucceeded {
		t.Fatal("the next job did not run after the abandonment")
	}
	close(release)
	<-returned
	waitUntil(t, "the abandoned task's runner to finish", func() bool { return w.Abandoned() == 0 })
	stop() // stores every outcome the worker still holds: a (buggy) late write included
	j = getJob(t, b, id)
	if j.State != nuvom.StateFailed || len(j.Attempts) != 1 || len(j.Result) != 0 || reported.Load() != 1 {
		t.Fatalf("late write after abandonment: state %s attempts %v result %x reported %d", j.State, outcomes(j), j.Result, reported.Load())
	}
}

func TestHooksMiddlewareAndJobInfo(t *testing.T) {
	b := newBackend(t)
	var mu sync.Mutex
	var trail []string
	add := func(s string) { mu.Lock(); trail = append(trail, s); mu.Unlock() }
	s := spec("hooked", nuvom.TaskOptions{})
	d := def(s, func(ctx context.Context, _ []byte) ([]byte, error) {
		info, _ := nuvom.JobInfoFromContext(ctx)
		add(fmt.Sprintf("task attempt=%d worker=%s", nuvom.AttemptFromContext(ctx), info.Worker))
		return nil, errors.New("nope")
	})
	d.Before = func(ctx context.Context, j nuvom.JobInfo) error { add("before"); return nil }
	d.OnError = func(ctx context.Context, j nuvom.JobInfo, err error) { add("on_error " + err.Error()) }
	d.After = func(ctx context.Context, j nuvom.JobInfo, err error) { add(fmt.Sprintf("after %v", err)) }
	gate := spec("gated", nuvom.TaskOptions{})
	g := def(gate, func(context.Context, []byte) ([]byte, error) { add("gated task ran"); return nil, nil })
	g.Before = func(context.Context, nuvom.JobInfo) error { return errors.New("closed") }
	reg := registry(t, d, g)
	mw := func(name string) nuvom.Middleware {
		return func(next nuvom.Handler) nuvom.Handler {
			return func(ctx context.Context, job nuvom.JobInfo) error {
				add(name + " in " + job.Task)
				err := next(ctx, job)
				add(fmt.Sprintf("%s out %v", name, err))
				return err
			}
		}
	}
	id := enqueue(t, b, s)
	burst(t, b, reg, nuvom.WorkerOptions{ID: "w1", Middleware: []nuvom.Middleware{mw("outer"), mw("inner")}})
	want := []string{"outer in hooked", "inner in hooked", "before", "task attempt=1 worker=w1",
		"on_error nope", "after nope", "inner out nope", "outer out nope"}
	if !slices.Equal(trail, want) {
		t.Fatalf("trail\n%q\nwant\n%q", trail, want)
	}
	if j := getJob(t, b, id); j.State != nuvom.StateFailed || j.Attempts[0].Worker != "w1" {
		t.Fatalf("state %s worker %q", j.State, j.Attempts[0].Worker)
	}

	trail = nil
	gid := enqueue(t, b, gate)
	burst(t, b, reg, nuvom.WorkerOptions{})
	if slices.Contains(trail, "gated task ran") {
		t.Fatal("a failing Before hook did not stop the task")
	}
	if j := getJob(t, b, gid); j.State != nuvom.StateFailed || j.Error != "closed" {
		t.Fatalf("gated: state %s error %q", j.State, j.Error)
	}
}

func TestMiddlewareSeesPanics(t *testing.T) {
	b := newBackend(t)
	s := spec("p", nuvom.TaskOptions{})
	reg := registry(t, def(s, func(context.Context, []byte) ([]byte, error) { panic("ouch") }))
	var got error
	mw := func(next nuvom.Handler) nuvom.Handler {
		return func(ctx context.Context, job nuvom.JobInfo) error { got = next(ctx, job); return got }
	}
	enqueue(t, b, s)
	burst(t, b, reg, nuvom.WorkerOptions{Middleware: []nuvom.Middleware{mw}})
	var pe *nuvom.PanicError
	if !errors.As(got, &pe) || pe.Value != "ouch" {
		t.Fatalf("middleware saw %v", got)
	}
}

func TestNotifierWakesAnIdleWorker(t *testing.T) {
	b := newBackend(t)
	s := spec("wake", nuvom.TaskOptions{})
	reg := registry(t, def(s, ok))
	w := newWorker(t, b, reg, nuvom.WorkerOptions{PollInterval: time.Hour, RecoverEvery: time.Hour})
	start(t, w)
	for i := 0; i < 3; i++ { // with an hour's poll, only a notification can start these
		id := enqueue(t, b, s)
		if j := waitFinal(t, b, id); j.State != nuvom.StateSucceeded {
			t.Fatalf("state %s", j.State)
		}
	}
}

func TestPollingFindsScheduledJobs(t *testing.T) {
	b := newBackend(t)
	s := spec("later", nuvom.TaskOptions{})
	reg := registry(t, def(s, ok))
	w := newWorker(t, b, reg, nuvom.WorkerOptions{PollInterval: 5 * time.Millisecond})
	start(t, w)
	id := enqueue(t, b, s, nuvom.In(20*time.Millisecond))
	if j := waitFinal(t, b, id); j.State != nuvom.StateSucceeded {
		t.Fatalf("state %s", j.State)
	}
}

// countingBackend records the claim limits and completion batches of a real backend.
type countingBackend struct {
	nuvom.Backend
	mu         sync.Mutex
	running    *atomic.Int64
	conc       int
	overClaims []string
	claims     int
	completes  []int
}

func (c *countingBackend) Claim(ctx context.Context, req backend.ClaimRequest) ([]*nuvom.Job, error) {
	c.mu.Lock()
	c.claims++
	if held := int(c.running.Load()); req.Limit+held > c.conc {
		c.overClaims = append(c.overClaims, fmt.Sprintf("limit %d with %d held", req.Limit, held))
	}
	c.mu.Unlock()
	jobs, err := c.Backend.Claim(ctx, req)
	c.running.Add(int64(len(jobs)))
	return jobs, err
}

func (c *countingBackend) Complete(ctx context.Context, os []nuvom.Outcome) ([]error, error) {
	c.mu.Lock()
	c.completes = append(c.completes, len(os))
	c.mu.Unlock()
	return c.Backend.Complete(ctx, os)
}

// TestClaimsStayWithinRunnersAndCompletionsBatch: a worker never claims
// more jobs than it has free runners (with ClaimAhead: than its runners and
// BatchSize more), and stores outcomes in batches.
func TestClaimsStayWithinRunnersAndCompletionsBatch(t *testing.T) {
	for _, ahead := range []bool{false, true} {
		t.Run(fmt.Sprintf("claim-ahead=%t", ahead), func(t *testing.T) {
			mb := newBackend(t)
			var held atomic.Int64 // jobs between claim and finish, as the task sees them
			limit := 3
			if ahead {
				limit += 2
			}
			cb := &countingBackend{Backend: mb, running: &held, conc: limit}
			s := spec("n", nuvom.TaskOptions{})
			reg := registry(t, def(s, func(context.Context, []byte) ([]byte, error) { return nil, nil }))
			reqs := make([]nuvom.Request, 500)
			for i := range reqs {
				reqs[i] = nuvom.Request{Spec: s, Args: []byte{0x90}}
			}
			if _, err := nuvom.NewClient(mb).EnqueueBatch(context.Background(), reqs); err != nil {
				t.Fatal(err)
			}
			var finished atomic.Int64
			burst(t, cb, reg, nuvom.WorkerOptions{Concurrency: 3, BatchSize: 2, ClaimAhead: ahead,
				// A decided outcome frees its slot right after OnOutcome: count it free here,
				// never later than the worker does.
				OnOutcome: func(nuvom.JobInfo, nuvom.Outcome) { finished.Add(1); held.Add(-1) }})
			if held.Load() != 0 {
				t.Fatalf("%d jobs claimed and never finished", held.Load())
			}
			if len(cb.overClaims) > 0 {
				t.Fatalf("claims beyond %d held jobs: %v", limit, cb.overClaims)
			}
			total, most := 0, 0
			for _, n := range cb.completes {
				total += n
				most = max(most, n)
			}
			if total != 500 || finished.Load() != 500 {
				t.Fatalf("completed %d, reported %d, want 500", total, finished.Load())
			}
			if len(cb.completes) >= 500 || most < 2 {
				t.Fatalf("completions were not batched: %d calls, largest %d", len(cb.completes), most)
			}
			st, err := mb.Stats(context.Background(), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range st {
				if q.State != nuvom.StateSucceeded && q.Count > 0 {
					t.Fatalf("%d jobs left %s", q.Count, q.State)
				}
			}
		})
	}
}

func TestStrictQueueOrder(t *testing.T) {
	b := newBackend(t)
	var mu sync.Mutex
	var order []string
	mk := func(q string) nuvom.TaskDef {
		return def(spec("t-"+q, nuvom.TaskOptions{Queue: q}), func(ctx context.Context, _ []byte) ([]byte, error) {
			mu.Lock()
			order = append(order, q)
			mu.Unlock()
			return nil, nil
		})
	}
	reg := registry(t, mk("hi"), mk("lo"))
	for i := 0; i < 5; i++ {
		enqueue(t, b, spec("t-lo", nuvom.TaskOptions{Queue: "lo"}), nuvom.Priority(10))
	}
	for i := 0; i < 5; i++ {
		enqueue(t, b, spec("t-hi", nuvom.TaskOptions{Queue: "hi"}))
	}
	burst(t, b, reg, nuvom.WorkerOptions{Concurrency: 1, Queues: []string{"hi", "lo"}})
	want := []string{"hi", "hi", "hi", "hi", "hi", "lo", "lo", "lo", "lo", "lo"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v", order)
	}
}

func TestLostLeaseCancelsAndDiscards(t *testing.T) {
	b := newBackend(t)
	cancelled := make(chan struct{})
	returned := make(chan struct{})
	s := spec("long", nuvom.TaskOptions{Retries: 2, StoreResult: true})
	reg := registry(t, def(s, func(ctx context.Context, _ []byte) ([]byte, error) {
		<-ctx.Done()
		close(cancelled)
		return []byte{0x01}, nil // claims success, but its lease is gone
	}))
	mw := func(next nuvom.Handler) nuvom.Handler {
		return func(ctx context.Context, job nuvom.JobInfo) error {
			defer close(returned)
			return next(ctx, job)
		}
	}
	var reported atomic.Int64
	id := enqueue(t, b, s)
	w := newWorker(t, b, reg, nuvom.WorkerOptions{LeaseFor: time.Second, HeartbeatEvery: 5 * time.Millisecond,
		PollInterval: 5 * time.Millisecond, RecoverEvery: time.Hour, Middleware: []nuvom.Middleware{mw},
		OnOutcome: func(nuvom.JobInfo, nuvom.Outcome) { reported.Add(1) }})
	stop := start(t, w)
	// Wait until the job runs, then let another party recover its lease as if it had expired.
	deadline := time.Now().Add(5 * time.Minute)
	for getJob(t, b, id).State != nuvom.StateRunning {
		if time.Now().After(deadline) {
			t.Fatal("job never started")
		}
		time.Sleep(time.Millisecond)
	}
	later := time.Now().Add(time.Hour)
	if n, err := b.RecoverExpired(context.Background(), later, 5); err != nil || n != 1 {
		t.Fatalf("recover: %d, %v", n, err)
	}
	<-cancelled // the heartbeat found the lease lost and cancelled the task
	<-returned
	stop() // stores every outcome the worker still holds: a (buggy) late write included
	j := getJob(t, b, id)
	if j.State != nuvom.StateRetrying || len(j.Result) != 0 || reported.Load() != 0 {
		t.Fatalf("state %s result %x reported %d", j.State, j.Result, reported.Load())
	}
	if got := outcomes(j); !slices.Equal(got, []string{nuvom.OutcomeLost}) {
		t.Fatalf("attempts %v", got)
	}
}

func TestRecovererRunsAtStart(t *testing.T) {
	b := newBackend(t)
	s := spec("orphan", nuvom.TaskOptions{Retries: 1})
	reg := registry(t, def(s, ok))
	past := time.Now().Add(-time.Hour)
	res, err := nuvom.NewClient(b, nuvom.WithClock(func() time.Time { return past })).Enqueue(context.Background(), s, []byte{0x90})
	if err != nil {
		t.Fatal(err)
	}
	id := res.ID
	if js, err := b.Claim(context.Background(), backend.ClaimRequest{Limit: 1, Worker: "crashed", Now: past, LeaseFor: time.Second}); err != nil || len(js) != 1 {
		t.Fatalf("claim as crashed worker: %v %v", js, err)
	}
	burst(t, b, reg, nuvom.WorkerOptions{})
	j := getJob(t, b, id)
	if j.State != nuvom.StateSucceeded || !slices.Equal(outcomes(j), []string{nuvom.OutcomeLost, nuvom.OutcomeSucceeded}) {
		t.Fatalf("state %s attempts %v", j.State, outcomes(j))
	}
}

func TestGracefulShutdown(t *testing.T) {
	b := newBackend(t)
	started := make(chan string, 10)
	finishQuick := make(chan struct{})
	quick := spec("quick", nuvom.TaskOptions{StoreResult: true})
	stuck := spec("stuck", nuvom.TaskOptions{Retries: 3})
	reg := registry(t,
		def(quick, func(ctx context.Context, _ []byte) ([]byte, error) {
			started <- "quick"
			<-finishQuick // finishes during the grace period, ignoring the shutdown
			return []byte{0x05}, nil
		}),
		def(stuck, func(ctx context.Context, _ []byte) ([]byte, error) {
			started <- "stuck"
			<-ctx.Done() // runs until cancelled
			return nil, ctx.Err()
		}))
	quickID := enqueue(t, b, quick, nuvom.Priority(2))
	stuckID := enqueue(t, b, stuck, nuvom.Priority(1))
	waiting := enqueue(t, b, quick) // never claimed: only two runners

	w := newWorker(t, b, reg, nuvom.WorkerOptions{Concurrency: 2, Grace: 200 * time.Millisecond, PollInterval: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	<-started
	<-started
	cancel()
	close(finishQuick)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if j := getJob(t, b, quickID); j.State != nuvom.StateSucceeded || !bytes.Equal(j.Result, []byte{0x05}) {
		t.Fatalf("job running at shutdown did not finish in the grace period: %s", j.State)
	}
	j := getJob(t, b, stuckID)
	if j.State != nuvom.StateQueued || j.Attempt != 0 || len(j.Attempts) != 0 || j.LeaseOwner != "" {
		t.Fatalf("job still running after the grace period: state %s attempt %d attempts %v owner %q", j.State, j.Attempt, outcomes(j), j.LeaseOwner)
	}
	if j := getJob(t, b, waiting); j.State != nuvom.StateQueued || j.Attempt != 0 {
		t.Fatalf("unclaimed job: state %s attempt %d", j.State, j.Attempt)
	}
}

func TestStopNowSkipsTheGracePeriod(t *testing.T) {
	b := newBackend(t)
	started := make(chan struct{}, 1)
	s := spec("deaf", nuvom.TaskOptions{})
	block := make(chan struct{})
	defer close(block)
	reg := registry(t, def(s, func(ctx context.Context, _ []byte) ([]byte, error) {
		started <- struct{}{}
		<-block // ignores cancellation entirely
		return nil, nil
	}))
	id := enqueue(t, b, s)
	w := newWorker(t, b, reg, nuvom.WorkerOptions{Concurrency: 1, Grace: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	<-started
	cancel()
	w.StopNow()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Minute): // hang guard
		t.Fatal("StopNow did not stop the worker")
	}
	if j := getJob(t, b, id); j.State != nuvom.StateQueued || j.Attempt != 0 {
		t.Fatalf("state %s attempt %d, want queued 0", j.State, j.Attempt)
	}
}

func TestLogLines(t *testing.T) {
	b := newBackend(t)
	var buf lockedBuf
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	okSpec := spec("fine", nuvom.TaskOptions{})
	bad := spec("bad", nuvom.TaskOptions{})
	slow := spec("slow", nuvom.TaskOptions{Timeout: time.Millisecond, TimeoutPolicy: nuvom.TimeoutIgnore})
	reg := registry(t, def(okSpec, ok), def(bad, func(context.Context, []byte) ([]byte, error) { panic("zap") }),
		def(slow, func(ctx context.Context, _ []byte) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() }))
	okID := enqueue(t, b, okSpec)
	enqueue(t, b, bad)
	slowID := enqueue(t, b, slow)
	burst(t, b, reg, nuvom.WorkerOptions{Logger: logger})
	out := buf.String()
	for _, want := range []string{
		`msg="job started" worker=`, "task=fine job=" + okID + " attempt=1",
		`msg="job finished"`, "outcome=succeeded", "duration=",
		`msg="job panicked"`, `err="panic: zap"`, "stack=",
		// A timeout the policy ignores is not logged as a failure: the job succeeded.
		`level=WARN msg="job timed out; succeeded by its timeout policy (ignore)" worker=`,
		"task=slow job=" + slowID + " attempt=1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestNewWorkerChecksOptions(t *testing.T) {
	b := newBackend(t)
	reg := registry(t, def(spec("x", nuvom.TaskOptions{}), ok))
	for _, o := range []nuvom.WorkerOptions{
		{LeaseFor: time.Second, HeartbeatEvery: 2 * time.Second},
		{AbandonAfter: -time.Second},
		{Concurrency: -1},
		{Concurrency: nuvom.MaxConcurrency + 1},
	} {
		if _, err := nuvom.NewWorker(b, reg, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	if _, err := nuvom.NewWorker(b, registry(t), nuvom.WorkerOptions{}); err == nil {
		t.Error("empty registry without queues accepted")
	}
}

// TestDefaultConcurrency: a worker without a Concurrency runs
// DefaultConcurrency (100) jobs at once, whatever the number of CPUs: tasks
// that wait on I/O must not crawl at two at a time on a 2-core machine. Each
// job waits until all 100 have started, so fewer slots never get there.
func TestDefaultConcurrency(t *testing.T) {
	if nuvom.DefaultConcurrency != 100 {
		t.Fatalf("DefaultConcurrency %d, want 100", nuvom.DefaultConcurrency)
	}
	b := newBackend(t)
	var started atomic.Int64
	all := make(chan struct{})
	spec := nuvom.TaskSpec{Name: "wait.All", Options: nuvom.TaskOptions{Queue: "default"}}
	reg, err := nuvom.NewRegistry(nuvom.TaskDef{TaskSpec: spec, Invoke: func(ctx context.Context, _ []byte) ([]byte, error) {
		if started.Add(1) == nuvom.DefaultConcurrency {
			close(all)
		}
		select {
		case <-all:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	client := nuvom.NewClient(b)
	reqs := make([]nuvom.Request, nuvom.DefaultConcurrency)
	for i := range reqs {
		reqs[i] = nuvom.Request{Spec: spec, Args: []byte{0x90}}
	}
	if _, err := client.EnqueueBatch(context.Background(), reqs); err != nil {
		t.Fatal(err)
	}
	w, err := nuvom.NewWorker(b, reg, nuvom.WorkerOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-all:
	case <-time.After(60 * time.Second): // hang guard only
		t.Fatalf("only %d of %d jobs ran at once with the default concurrency", started.Load(), nuvom.DefaultConcurrency)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRetentionDeletesJobsThatEndedLongAgo runs workers with
// KeepFinishedFor: a job that ended two days ago is deleted (by a burst
// worker before Run returns, by a long-running one at its start), one that
// ended just now is kept.
func TestRetentionDeletesJobsThatEndedLongAgo(t *testing.T) {
	b := newBackend(t)
	s := spec("kept", nuvom.TaskOptions{})
	reg := registry(t, def(s, ok))
	ctx := context.Background()
	past := time.Now().Add(-48 * time.Hour)
	endedLongAgo := func() string {
		t.Helper()
		old, err := nuvom.NewClient(b, nuvom.WithClock(func() time.Time { return past })).Enqueue(ctx, s, []byte{0x90})
		if err != nil {
			t.Fatal(err)
		}
		burst(t, b, reg, nuvom.WorkerOptions{Now: func() time.Time { return past }})
		if j := getJob(t, b, old.ID); j.State != nuvom.StateSucceeded || !j.FinishedAt.Equal(past) {
			t.Fatalf("setup: old job %s finished at %s, want succeeded at %s", j.State, j.FinishedAt, past)
		}
		return old.ID
	}
	gone := func(id string) bool {
		t.Helper()
		_, err := b.Get(ctx, id)
		if err != nil && !errors.Is(err, nuvom.ErrNotFound) {
			t.Fatal(err)
		}
		return err != nil
	}
	for _, keep := range []time.Duration{-time.Hour, time.Second} {
		if _, err := nuvom.NewWorker(b, reg, nuvom.WorkerOptions{KeepFinishedFor: keep}); err == nil ||
			!strings.Contains(err.Error(), "KeepFinishedFor") {
			t.Fatalf("NewWorker with KeepFinishedFor %s: err = %v, want one naming it", keep, err)
		}
	}

	old := endedLongAgo()
	fresh := enqueue(t, b, s)
	burst(t, b, reg, nuvom.WorkerOptions{KeepFinishedFor: 24 * time.Hour})
	if !gone(old) || gone(fresh) {
		t.Fatalf("after a burst worker with a day's retention: old job gone %v, fresh job gone %v; want true, false", gone(old), gone(fresh))
	}

	old = endedLongAgo()
	w := newWorker(t, b, reg, nuvom.WorkerOptions{KeepFinishedFor: 24 * time.Hour})
	start(t, w)
	fresh = enqueue(t, b, s)
	waitFinal(t, b, fresh)
	deadline := time.Now().Add(5 * time.Minute) // hang guard: the first pass runs at start
	for !gone(old) {
		if time.Now().After(deadline) {
			t.Fatal("the job that ended two days ago is still stored")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if j := getJob(t, b, fresh); j.State != nuvom.StateSucceeded {
		t.Fatalf("the job that ended just now is %s, want kept as succeeded", j.State)
	}
}

// TestRetentionByCountKeepsTheNewest checks WorkerOptions.KeepFinished: a
// burst worker, and a running worker at start, keep the newest ended jobs
// of each queue and delete the others.
func TestRetentionByCountKeepsTheNewest(t *testing.T) {
	b := newBackend(t)
	s1 := spec("one", nuvom.TaskOptions{Queue: "q1"})
	s2 := spec("two", nuvom.TaskOptions{Queue: "q2"})
	reg := registry(t, def(s1, ok), def(s2, ok))
	ctx := context.Background()
	if _, err := nuvom.NewWorker(b, reg, nuvom.WorkerOptions{KeepFinished: -1}); err == nil ||
		!strings.Contains(err.Error(), "KeepFinished") {
		t.Fatalf("NewWorker with KeepFinished -1: err = %v, want one naming it", err)
	}
	// One burst per job: each ends after the one before.
	var q1 []string
	for range 4 {
		q1 = append(q1, enqueue(t, b, s1))
		burst(t, b, reg, nuvom.WorkerOptions{})
	}
	q2 := enqueue(t, b, s2)
	burst(t, b, reg, nuvom.WorkerOptions{})
	stored := func() []string {
		t.Helper()
		var out []string
		for _, id := range append(slices.Clone(q1), q2) {
			if _, err := b.Get(ctx, id); err == nil {
				out = append(out, id)
			} else if !errors.Is(err, nuvom.ErrNotFound) {
				t.Fatal(err)
			}
		}
		return out
	}

	burst(t, b, reg, nuvom.WorkerOptions{KeepFinished: 2})
	if got, want := stored(), []string{q1[2], q1[3], q2}; !slices.Equal(got, want) {
		t.Fatalf("after a burst worker keeping 2 per queue, stored %v, want %v", got, want)
	}

	w := newWorker(t, b, reg, nuvom.WorkerOptions{KeepFinished: 1})
	start(t, w)
	want := []string{q1[3], q2}
	deadline := time.Now().Add(5 * time.Minute) // hang guard: the first pass runs at start
	for got := stored(); !slices.Equal(got, want); got = stored() {
		if time.Now().After(deadline) {
			t.Fatalf("a worker keeping 1 per queue left %v, want %v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blockingPurge is a backend whose PurgeEnded and TrimEnded wait for
// their context to end.
type blockingPurge struct {
	nuvom.Backend
	started chan struct{}
}

func (b *blockingPurge) PurgeEnded(ctx context.Context, _ time.Time, _ nuvom.PurgeFilter) (int, error) {
	close(b.started)
	<-ctx.Done()
	return 0, ctx.Err()
}

func (b *blockingPurge) TrimEnded(ctx context.Context, _ int, _ nuvom.PurgeFilter) (int, error) {
	return b.PurgeEnded(ctx, time.Time{}, nuvom.PurgeFilter{})
}

// TestBurstRetentionPassStopsAtStopNow checks that a burst worker's
// retention pass, by age or by count, run when its jobs are done, ends at
// StopNow instead of holding Run.
func TestBurstRetentionPassStopsAtStopNow(t *testing.T) {
	for name, opts := range map[string]nuvom.WorkerOptions{
		"age":   {KeepFinishedFor: time.Hour},
		"count": {KeepFinished: 1},
	} {
		t.Run(name, func(t *testing.T) {
			b := &blockingPurge{Backend: newBackend(t), started: make(chan struct{})}
			s := spec("t", nuvom.TaskOptions{})
			enqueue(t, b, s)
			enqueue(t, b, s) // two ended: one beyond KeepFinished
			opts.Burst, opts.PollInterval = true, 5*time.Millisecond
			w := newWorker(t, b, registry(t, def(s, ok)), opts)
			done := make(chan error, 1)
			go func() { done <- w.Run(context.Background()) }()
			select {
			case <-b.started:
			case <-time.After(5 * time.Minute): // hang guard
				t.Fatal("the burst worker made no retention pass")
			}
			w.StopNow()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run = %v, want nil after a stop during the retention pass", err)
				}
			case <-time.After(5 * time.Minute): // hang guard
				t.Fatal("Run did not return after StopNow during the retention pass")
			}
		})
	}
}

// TestBurstWaitsForRateLimitedJobs: a burst worker runs the queued jobs that
// a task's rate limit holds back (they become claimable within its period)
// before it returns, and does not wait for those of a paused queue.
func TestBurstWaitsForRateLimitedJobs(t *testing.T) {
	b := newBackend(t)
	rated := spec("rated", nuvom.TaskOptions{Rate: nuvom.Rate{N: 1, Per: 20 * time.Millisecond}})
	held := spec("rated", nuvom.TaskOptions{Queue: "held", Rate: nuvom.Rate{N: 1, Per: 20 * time.Millisecond}})
	var ran atomic.Int64
	reg := registry(t, def(rated, func(context.Context, []byte) ([]byte, error) { ran.Add(1); return nil, nil }))
	var ids []string
	for range 3 {
		ids = append(ids, enqueue(t, b, rated))
	}
	paused := enqueue(t, b, held)
	if err := b.SetPaused(context.Background(), "held", true); err != nil {
		t.Fatal(err)
	}
	burst(t, b, reg, nuvom.WorkerOptions{Concurrency: 4})
	if ran.Load() != 3 {
		t.Fatalf("the burst ran %d jobs, want the 3 of the rate-limited task", ran.Load())
	}
	for _, id := range ids {
		if j := getJob(t, b, id); j.State != nuvom.StateSucceeded {
			t.Errorf("job %s after the burst: %s, want succeeded", id, j.State)
		}
	}
	if j := getJob(t, b, paused); j.State != nuvom.StateQueued {
		t.Errorf("the job of the paused queue after the burst: %s, want queued", j.State)
	}
}
