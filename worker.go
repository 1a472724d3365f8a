package nuvom

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// WorkerOptions configure a Worker. Zero fields take the defaults given.
type WorkerOptions struct {
	// ID names the worker in leases and attempt records; default host-pid-random.
	ID string
	// Concurrency is the number of jobs run at once; default runtime.NumCPU().
	Concurrency int
	// Queues are the queues to claim from. With two or more, they are served in
	// strict priority order (a later queue only gets the slots the earlier ones
	// leave). Empty means every queue of the registry's tasks, served together.
	Queues []string
	// BatchSize caps the jobs claimed in one statement; default 100. The worker
	// never claims more than it has free runners.
	BatchSize int
	// LeaseFor is how long a claim holds a job without a heartbeat; default 30s.
	LeaseFor time.Duration
	// HeartbeatEvery is how often held leases are extended, which is also how
	// soon a job cancelled while it runs is noticed at the latest; default the
	// shorter of LeaseFor/3 and 1s.
	HeartbeatEvery time.Duration
	// PollInterval is how often the worker looks for ready jobs when the backend
	// does not notify it (and for scheduled and retrying jobs); default 1s.
	PollInterval time.Duration
	// RecoverEvery is how often expired leases of any worker are recovered; default LeaseFor.
	RecoverEvery time.Duration
	// Grace is how long a shutdown waits for running jobs; default 10s.
	Grace time.Duration
	// AbandonAfter is how long a timed-out task that ignores its context may keep
	// running before the worker abandons it; default 5s.
	AbandonAfter time.Duration
	// Burst makes Run return once no ready job remains and nothing is running.
	Burst bool
	// Logger receives one line per job start (debug) and finish; default slog.Default().
	Logger *slog.Logger
	// Middleware wraps every attempt, outermost first.
	Middleware []Middleware
	// OnOutcome, when set, is called with every attempt's outcome (including
	// rejected, timed-out and abandoned ones) as soon as it is decided, before it
	// is stored. It must be quick; a panic in it is logged and ignored.
	OnOutcome func(job JobInfo, o Outcome)
	// OnStored, when set, is called with every outcome after the store has
	// committed it (outcomes whose lease was lost, and so were not stored, are
	// not reported). It runs on the goroutine that stores outcomes, in batches,
	// so it must be quick; a panic in it is logged and ignored. Metrics that
	// must count what really reached the store use it.
	OnStored func(job JobInfo, o Outcome)
	// Now is the clock used to stamp jobs; default time.Now. It is meant for
	// tests, which use a fake one.
	Now func() time.Time
}

// Defaults of WorkerOptions.
const (
	DefaultBatchSize    = 100
	DefaultLeaseFor     = 30 * time.Second
	DefaultPollInterval = time.Second
	DefaultGrace        = 10 * time.Second
	DefaultAbandonAfter = 5 * time.Second
)

// completion batching: flush when this many outcomes wait, or after flushDelay.
const (
	minCompleteBatch = 64
	flushDelay       = time.Millisecond
)

// claimCooldown is how long the fetch loop waits for more runners to free up
// before claiming for just a few.
const claimCooldown = 100 * time.Microsecond

// run states.
const (
	runClaimed  int32 = iota // claimed, waiting for a runner
	runStarted               // a runner is executing it
	runFinished              // its outcome is decided (or it was released); nothing else may write
)

// run is one claimed job while this worker holds it.
type run struct {
	job       *Job
	info      JobInfo // set by the runner before the attempt starts
	ctx       context.Context
	cancel    context.CancelCauseFunc
	state     atomic.Int32
	lost      atomic.Bool // the heartbeat found the lease gone
	cancelled atomic.Bool // ... because a user cancelled the job
	abandoned atomic.Bool // the abandon timer took the job from its runner
}

// Worker claims jobs from a backend and runs them with the tasks of a registry.
type Worker struct {
	b        Backend
	reg      *Registry
	o        WorkerOptions
	log      *slog.Logger
	now      func() time.Time
	queues   []string
	strict   bool // claim queue by queue, in order
	maxBatch int  // outcomes per Complete call

	started  atomic.Bool
	done     chan struct{} // closed when Run returns
	stopNow  chan struct{}
	stopOnce sync.Once

	mu   sync.Mutex
	runs map[string]*run // claimed and not finished

	inflight   atomic.Int64  // claimed and not finished
	slotFreed  chan struct{} // signalled (coalescing) when a run finishes
	jobs       chan *run     // claimed runs for the runners
	outcomes   chan *decided // decided outcomes for the completer
	flushReq   chan chan struct{}
	checkLease chan struct{} // signalled (coalescing) when the store changed: look for cancelled jobs
}

// decided is an outcome on its way to the store, with the job it belongs to.
type decided struct {
	info JobInfo
	o    Outcome
}

// NewWorker returns a worker that runs reg's tasks from b. It checks opts and
// fills in defaults; Run starts it.
func NewWorker(b Backend, reg *Registry, opts WorkerOptions) (*Worker, error) {
	if b == nil {
		return nil, errors.New("new worker: backend is nil")
	}
	if reg == nil {
		return nil, errors.New("new worker: registry is nil")
	}
	o := opts
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"LeaseFor", o.LeaseFor}, {"HeartbeatEvery", o.HeartbeatEvery}, {"PollInterval", o.PollInterval},
		{"RecoverEvery", o.RecoverEvery}, {"Grace", o.Grace}, {"AbandonAfter", o.AbandonAfter}} {
		if d.v < 0 {
			return nil, fmt.Errorf("new worker: %s %s is negative", d.name, d.v)
		}
	}
	if o.Concurrency < 0 || o.BatchSize < 0 {
		return nil, fmt.Errorf("new worker: concurrency %d and batch size %d must not be negative", o.Concurrency, o.BatchSize)
	}
	if o.ID == "" {
		o.ID = defaultWorkerID()
	}
	if o.Concurrency == 0 {
		o.Concurrency = goruntime.NumCPU()
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.LeaseFor == 0 {
		o.LeaseFor = DefaultLeaseFor
	}
	if o.HeartbeatEvery == 0 {
		o.HeartbeatEvery = min(o.LeaseFor/3, time.Second)
	}
	if o.HeartbeatEvery >= o.LeaseFor {
		return nil, fmt.Errorf("new worker: HeartbeatEvery %s must be shorter than LeaseFor %s", o.HeartbeatEvery, o.LeaseFor)
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.RecoverEvery == 0 {
		o.RecoverEvery = o.LeaseFor
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.AbandonAfter == 0 {
		o.AbandonAfter = DefaultAbandonAfter
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &Worker{
		b: b, reg: reg, o: o, log: o.Logger, now: o.Now,
		maxBatch:   max(o.BatchSize, o.Concurrency, minCompleteBatch),
		stopNow:    make(chan struct{}),
		done:       make(chan struct{}),
		runs:       make(map[string]*run),
		slotFreed:  make(chan struct{}, 1),
		jobs:       make(chan *run, o.Concurrency),
		outcomes:   make(chan *decided, max(o.BatchSize, o.Concurrency, minCompleteBatch)),
		flushReq:   make(chan chan struct{}),
		checkLease: make(chan struct{}, 1),
	}
	if len(o.Queues) > 0 {
		w.queues = append([]string(nil), o.Queues...)
		w.strict = len(o.Queues) > 1
	} else {
		for _, q := range reg.Queues() {
			if q == "" {
				q = "default"
			}
			w.queues = appendUnique(w.queues, q)
		}
		if len(w.queues) == 0 {
			return nil, errors.New("new worker: the registry has no tasks and no queues were given")
		}
	}
	return w, nil
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// ID returns the worker's id.
func (w *Worker) ID() string { return w.o.ID }

// StopNow makes a running or shutting-down Run stop at once: running jobs get
// their contexts cancelled and are handed back without waiting for the grace
// period. It is safe to call more than once and from any goroutine.
func (w *Worker) StopNow() { w.stopOnce.Do(func() { close(w.stopNow) }) }

// Done is closed when Run has returned.
func (w *Worker) Done() <-chan struct{} { return w.done }

// Run claims and runs jobs until ctx is cancelled, then shuts down gracefully:
// it stops claiming, hands back claimed jobs that have not started, waits up to
// Grace for running jobs, hands back those still running (their attempt is not
// counted), stores every outcome and returns. In Burst mode it also returns once
// no ready job remains. A Worker runs once.
func (w *Worker) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("worker: Run called more than once")
	}
	// Backend calls outlive ctx so that a graceful shutdown can still release and complete.
	defer close(w.done)
	bctx := context.WithoutCancel(ctx)
	jobBase, cancelJobs := context.WithCancel(bctx)
	defer cancelJobs()

	w.recoverOnce(bctx)
	w.log.Info("worker started", "worker", w.o.ID, "concurrency", w.o.Concurrency, "queues", w.queues, "burst", w.o.Burst)
	for i := 0; i < w.o.Concurrency; i++ {
		go w.runner()
	}
	compStop, compDone := make(chan struct{}), make(chan struct{})
	go w.completer(bctx, compStop, compDone)
	bgCtx, stopBg := context.WithCancel(bctx)
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); w.heartbeat(bgCtx) }()
	go func() { defer bg.Done(); w.recoverer(bgCtx) }()

	err := w.fetchLoop(ctx, bctx, jobBase)

	w.shutdown(bctx)
	stopBg()
	bg.Wait()
	close(compStop)
	<-compDone
	w.log.Info("worker stopped", "worker", w.o.ID)
	return err
}

// fetchLoop claims jobs while there are free runners, until ctx ends, StopNow,
// or (Burst) no ready job remains.
func (w *Worker) fetchLoop(ctx, bctx, jobBase context.Context) error {
	notify, unsubscribe := w.b.Subscribe()
	defer unsubscribe()
	poll := time.NewTicker(w.o.PollInterval)
	defer poll.Stop()
	// Claim at once when at least lowWater runners are free or none is busy;
	// otherwise wait up to claimCooldown for more to free up.
	lowWater := max(1, min(w.o.BatchSize, w.o.Concurrency)/2)
	coolTimer := time.NewTimer(time.Hour)
	coolTimer.Stop()
	defer coolTimer.Stop()
	var cool <-chan time.Time // armed cooldown, or nil
	cooled := false           // the cooldown ran out: claim whatever is free
	more := true              // ready jobs may be waiting: claim as soon as a runner is free
	flushed := false          // Burst: outcomes were flushed since the last claim that found work
	for {
		if ctx.Err() != nil || w.stopping() {
			return nil
		}
		free := w.o.Concurrency - int(w.inflight.Load())
		if more && free > 0 && free < lowWater && w.inflight.Load() > 0 && !cooled {
			// Few runners are free and the rest are busy: let more free up for a
			// moment so that one claim serves many (each claim is a statement).
			if cool == nil {
				coolTimer.Reset(claimCooldown)
				cool = coolTimer.C
			}
		} else if more && free > 0 {
			if cool != nil {
				coolTimer.Stop()
				cool = nil
			}
			cooled = false
			limit := min(free, w.o.BatchSize)
			got, err := w.claim(bctx, jobBase, limit)
			switch {
			case err != nil:
				w.log.Error("claim jobs", "worker", w.o.ID, "err", err)
				more = false
			case got > 0:
				flushed = false
				more = got == limit
				continue
			default:
				more = false
				if w.o.Burst && w.inflight.Load() == 0 {
					if flushed {
						return nil
					}
					// Retries decided by the last jobs may be ready now: store them, look once more.
					w.flushNow()
					flushed, more = true, true
					continue
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.stopNow:
			return nil
		case <-notify:
			more = true
			if w.inflight.Load() > 0 {
				select { // a running job may have been cancelled: let the heartbeat look
				case w.checkLease <- struct{}{}:
				default:
				}
			}
		case <-poll.C:
			more = true
		case <-w.slotFreed:
			if w.o.Burst && w.inflight.Load() == 0 {
				more = true
			}
		case <-cool:
			cool, cooled = nil, true
		}
	}
}

func (w *Worker) stopping() bool {
	select {
	case <-w.stopNow:
		return true
	default:
		return false
	}
}

// claim leases up to limit jobs and hands them to the runners.
func (w *Worker) claim(bctx, jobBase context.Context, limit int) (int, error) {
	now := w.now()
	var jobs []*Job
	if w.strict {
		for _, q := range w.queues {
			js, err := w.b.Claim(bctx, backend.ClaimRequest{Queues: []string{q}, Limit: limit - len(jobs), Worker: w.o.ID, Now: now, LeaseFor: w.o.LeaseFor})
			if err != nil {
				return 0, fmt.Errorf("claim from queue %s: %w", q, err)
			}
			jobs = append(jobs, js...)
			if len(jobs) >= limit {
				break
			}
		}
	} else {
		js, err := w.b.Claim(bctx, backend.ClaimRequest{Queues: w.queues, Limit: limit, Worker: w.o.ID, Now: now, LeaseFor: w.o.LeaseFor})
		if err != nil {
			return 0, fmt.Errorf("claim from queues %v: %w", w.queues, err)
		}
		jobs = js
	}
	w.mu.Lock()
	runs := make([]*run, len(jobs))
	for i, j := range jobs {
		r := &run{job: j}
		r.ctx, r.cancel = context.WithCancelCause(jobBase)
		w.runs[j.ID] = r
		runs[i] = r
	}
	w.mu.Unlock()
	w.inflight.Add(int64(len(runs)))
	for _, r := range runs {
		w.jobs <- r // never blocks: the channel holds Concurrency runs and inflight <= Concurrency
	}
	return len(runs), nil
}

// runner executes claimed runs until the channel closes, or until its current
// task is abandoned (a fresh runner then takes its place).
func (w *Worker) runner() {
	for r := range w.jobs {
		if !r.state.CompareAndSwap(runClaimed, runStarted) {
			continue // handed back during shutdown
		}
		if abandoned := w.execute(r); abandoned {
			return
		}
	}
}

// finish decides r's fate once: it returns false when another party (the
// abandon timer, the shutdown) already did. o may be nil (nothing to store).
func (w *Worker) finish(r *run, from int32, o *Outcome) bool {
	if !r.state.CompareAndSwap(from, runFinished) {
		return false
	}
	w.settle(r, o)
	return true
}

// settle lets go of a finished run: stops tracking it, cancels its context,
// queues its outcome (unless the lease was lost) and frees its slot.
func (w *Worker) settle(r *run, o *Outcome) {
	w.mu.Lock()
	delete(w.runs, r.job.ID)
	w.mu.Unlock()
	r.cancel(errAttemptOver)
	if o != nil {
		if r.lost.Load() {
			if !r.cancelled.Load() {
				w.log.Warn("job lease lost while running; its outcome is discarded", "worker", w.o.ID, "task", r.job.Task, "job", r.job.ID, "attempt", r.job.Attempt)
			}
		} else {
			w.outcomes <- &decided{info: r.info, o: *o}
		}
	}
	w.inflight.Add(-1)
	select {
	case w.slotFreed <- struct{}{}:
	default:
	}
}

// errAttemptOver is the cause of an attempt context cancelled because the
// attempt is over (finished, abandoned or handed back).
var errAttemptOver = errors.New("attempt over")

// minLeaseCheck is the least time between two lease checks asked for by store
// changes (a busy store changes all the time; the heartbeat ticks regardless).
const minLeaseCheck = 100 * time.Millisecond

// heartbeat extends the leases of every held job until ctx ends: every
// HeartbeatEvery, and soon after the store changed (at most every
// minLeaseCheck), so that a job cancelled while it runs is noticed quickly.
func (w *Worker) heartbeat(ctx context.Context) {
	t := time.NewTicker(w.o.HeartbeatEvery)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.checkLease:
			if wait := minLeaseCheck - time.Since(last); wait > 0 {
				timer := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					timer.Stop()
					return
				case <-timer.C:
				}
			}
		}
		last = time.Now()
		w.extendHeld(ctx)
	}
}

// extendHeld extends every held lease once and cancels the runs whose lease is
// gone: cancelled by a user, or taken over after this worker stalled.
func (w *Worker) extendHeld(ctx context.Context) {
	w.mu.Lock()
	leases := make([]Lease, 0, len(w.runs))
	for _, r := range w.runs {
		leases = append(leases, r.job.Lease())
	}
	w.mu.Unlock()
	if len(leases) == 0 {
		return
	}
	lost, err := w.b.Extend(ctx, leases, w.now().Add(w.o.LeaseFor))
	if err != nil {
		if ctx.Err() == nil {
			w.log.Error("extend leases", "worker", w.o.ID, "jobs", len(leases), "err", err)
		}
		return
	}
	for _, id := range lost {
		w.mu.Lock()
		r := w.runs[id]
		w.mu.Unlock()
		if r == nil {
			continue // finished meanwhile
		}
		if j, err := w.b.Get(ctx, id); err == nil && j.State == StateCancelled {
			r.cancelled.Store(true)
			r.lost.Store(true)
			r.cancel(ErrJobCancelled)
			w.log.Info("job cancelled while running; its context is cancelled", "worker", w.o.ID, "task", r.job.Task, "job", id, "attempt", r.job.Attempt)
			continue
		}
		r.lost.Store(true)
		r.cancel(ErrLeaseLost)
		w.log.Warn("job lease lost; cancelling it", "worker", w.o.ID, "task", r.job.Task, "job", id, "attempt", r.job.Attempt)
	}
}

// recoverer makes jobs whose lease expired (a crashed or stalled worker) visible again.
// Run recovers once before claiming; this goroutine does it every RecoverEvery after.
func (w *Worker) recoverer(ctx context.Context) {
	t := time.NewTicker(w.o.RecoverEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.recoverOnce(ctx)
	}
}

// maxLostInARow is how many attempts in a row a job may lose to an expired
// lease (a crash or stall) before RecoverExpired fails it as a poison pill.
const maxLostInARow = 5

func (w *Worker) recoverOnce(ctx context.Context) {
	n, err := w.b.RecoverExpired(ctx, w.now(), maxLostInARow)
	switch {
	case err != nil && ctx.Err() == nil:
		w.log.Error("recover expired leases", "worker", w.o.ID, "err", err)
	case n > 0:
		w.log.Warn("recovered jobs whose lease expired", "worker", w.o.ID, "jobs", n)
	}
}

// shutdown hands back claimed-not-started jobs, waits up to Grace (or StopNow)
// for running ones, then hands back those still running.
func (w *Worker) shutdown(bctx context.Context) {
	if n := w.release(bctx, runClaimed); n > 0 {
		w.log.Info("handed back jobs that had not started", "worker", w.o.ID, "jobs", n)
	}
	if w.inflight.Load() > 0 {
		w.log.Info("waiting for running jobs", "worker", w.o.ID, "jobs", w.inflight.Load(), "grace", w.o.Grace)
		grace := time.NewTimer(w.o.Grace)
	wait:
		for w.inflight.Load() > 0 {
			select {
			case <-w.slotFreed:
			case <-grace.C:
				break wait
			case <-w.stopNow:
				break wait
			}
		}
		grace.Stop()
	}
	if n := w.release(bctx, runStarted); n > 0 {
		w.log.Warn("handed back running jobs after the grace period; their attempt is not counted", "worker", w.o.ID, "jobs", n)
	}
	close(w.jobs)
	// A finisher that won its run just before the release may still be sending its outcome.
	for w.inflight.Load() > 0 {
		select {
		case <-w.slotFreed:
		case <-time.After(time.Millisecond):
		}
	}
}

// release hands back every held run in state from, cancelling its context.
func (w *Worker) release(bctx context.Context, from int32) int {
	w.mu.Lock()
	var rs []*run
	for _, r := range w.runs {
		if r.state.Load() == from {
			rs = append(rs, r)
		}
	}
	w.mu.Unlock()
	var leases []Lease
	for _, r := range rs {
		if w.finish(r, from, nil) {
			leases = append(leases, r.job.Lease())
		}
	}
	if len(leases) == 0 {
		return 0
	}
	if err := w.b.Release(bctx, leases); err != nil {
		w.log.Error("hand back jobs", "worker", w.o.ID, "jobs", len(leases), "err", err)
	}
	return len(leases)
}

// completer stores outcomes in batches: when maxBatch are waiting, when
// flushDelay has passed since the first, when no job is running, on a flush
// request, and finally when stop closes.
func (w *Worker) completer(ctx context.Context, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	batch := make([]*decided, 0, w.maxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		timer.Stop()
		w.store(ctx, batch)
		clear(batch)
		batch = batch[:0]
	}
	drain := func() {
		for len(batch) < w.maxBatch {
			select {
			case d := <-w.outcomes:
				batch = append(batch, d)
			default:
				return
			}
		}
	}
	for {
		if len(batch) == 0 {
			select {
			case d := <-w.outcomes:
				batch = append(batch, d)
				timer.Reset(flushDelay)
			case req := <-w.flushReq:
				drain()
				flush()
				close(req)
				continue
			case <-stop:
				for {
					drain()
					if len(batch) == 0 {
						return
					}
					flush()
				}
			}
		}
		drain()
		if len(batch) >= w.maxBatch || w.inflight.Load() == 0 {
			flush()
			continue
		}
		select {
		case d := <-w.outcomes:
			batch = append(batch, d)
		case <-timer.C:
			flush()
		case req := <-w.flushReq:
			drain()
			flush()
			close(req)
		case <-stop:
			drain()
			flush()
		}
	}
}

// flushNow asks the completer to store every outcome it holds and waits.
func (w *Worker) flushNow() {
	req := make(chan struct{})
	w.flushReq <- req
	<-req
}

// store writes one batch of outcomes, then reports the stored ones to OnStored.
func (w *Worker) store(ctx context.Context, batch []*decided) {
	outs := make([]Outcome, len(batch))
	for i, d := range batch {
		outs[i] = d.o
	}
	errs, err := w.b.Complete(ctx, outs)
	if err != nil {
		w.log.Error("store job outcomes; their leases will expire and the jobs run again", "worker", w.o.ID, "jobs", len(batch), "err", err)
		return
	}
	for i, d := range batch {
		if i < len(errs) && errs[i] != nil {
			w.log.Warn("job outcome not stored", "worker", w.o.ID, "job", d.o.Lease.JobID, "err", errs[i])
			continue
		}
		if w.o.OnStored != nil {
			w.callHook("OnStored", func() { w.o.OnStored(d.info, d.o) })
		}
	}
}
