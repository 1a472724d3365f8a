package nuvom

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// WorkerOptions configure a Worker. Zero fields take the defaults given.
type WorkerOptions struct {
	// ID names the worker in leases and attempt records; default host-pid-random.
	ID string
	// Concurrency is the number of jobs run at once; default
	// DefaultConcurrency (100). Each slot is a goroutine, so slots waiting on
	// I/O cost little: size it by what the tasks wait on (the connections of
	// the database or API they call), not by CPUs; CPU-bound tasks gain
	// nothing above runtime.NumCPU().
	Concurrency int
	// Queues are the queues to claim from. With two or more, they are served in
	// strict priority order (a later queue only gets the slots the earlier ones
	// leave). Empty means any queue: the worker runs every job of its tasks,
	// whatever queue it was enqueued on (nuvom.Queue moves a job to another
	// queue, not out of reach). A worker only ever claims jobs of its own tasks.
	Queues []string
	// BatchSize caps the jobs claimed in one statement; default 100. The worker
	// never claims more than it has free runners, unless ClaimAhead is set.
	BatchSize int
	// ClaimAhead lets the worker claim jobs beyond its free runners when its
	// jobs finish faster than a claim returns (short jobs, a store across the
	// network): up to Concurrency × claim time ÷ job duration of them, at
	// most BatchSize, so that a runner that finishes starts the next job
	// without waiting for a claim. It is off by default because a job claimed
	// ahead waits in this worker, leased, until a runner frees up: behind a
	// job that turns out long it waits that long while other workers may be
	// idle (the estimate drops to none once a claim sees no attempt finish),
	// and a rate-limited task's start is counted when it is claimed, so jobs
	// claimed ahead may start closer together than the rate says. It has no
	// effect with two or more Queues (strict priority) or when a task of the
	// registry declares a concurrency or rate limit.
	ClaimAhead bool
	// LeaseFor is how long a claim holds a job without a heartbeat; default 5s.
	// Heartbeats keep the jobs of a live worker however long they run; a dead
	// worker's jobs are ready again about LeaseFor after it died. A longer lease
	// tolerates longer stalls (a process paused by a debugger or starved of
	// CPU) before its jobs are taken over, at the cost of slower recovery.
	LeaseFor time.Duration
	// HeartbeatEvery is how often held leases are extended, which is also how
	// soon a job cancelled while it runs is noticed at the latest; default the
	// shorter of LeaseFor/3 and 1s.
	HeartbeatEvery time.Duration
	// PollInterval is how often the worker looks for ready jobs when the backend
	// does not notify it (and for scheduled and retrying jobs); default 1s.
	PollInterval time.Duration
	// RecoverEvery is how often expired leases of any worker are recovered (an
	// indexed look-up that writes only when it finds some); default the shorter
	// of LeaseFor/4 and 250ms.
	RecoverEvery time.Duration
	// KeepFinishedFor, when set, is the retention of ended jobs: the worker
	// deletes the jobs that ended (succeeded, failed, cancelled or
	// quarantined) more than this long ago, results and history with them
	// (Backend.PurgeEnded), when it starts and then every quarter of it (at
	// most an hour apart); a burst worker does it once, before Run returns.
	// At least MinKeepFinishedFor; zero (the default) keeps them until
	// purged (nuvom queue purge).
	KeepFinishedFor time.Duration
	// KeepFinished, when set, is the retention of ended jobs by count: the
	// worker keeps the newest KeepFinished ended jobs of each queue and
	// deletes the others (Backend.TrimEnded), when it starts (and a burst
	// worker once, before Run returns); then every minute it trims the
	// queues holding more than KeepFinished by a tenth of it (at least
	// 1,000): a trim reads the queue's jobs, so it is made once per so many
	// jobs ended. With KeepFinishedFor too, a job goes when either says so.
	// A result can go before a caller waiting for it reads it, if more than
	// this many jobs of its queue end meanwhile: size it well above that.
	// Zero (the default) sets no limit; negative is an error.
	KeepFinished int
	// Grace is how long a shutdown waits for running jobs; default 10s. A
	// negative value means no grace period: running jobs are handed back at once.
	Grace time.Duration
	// AbandonAfter is how long a timed-out task that ignores its context may keep
	// running before the worker abandons it; default 5s.
	AbandonAfter time.Duration
	// HandBackFor is how long a job whose task signature differs from this
	// worker's (a job of another deploy's code, during a rolling deploy) is
	// handed back, with growing delays and without spending its attempts, for
	// a worker that has its signature; after that it fails. Default 10m;
	// negative fails such jobs at once.
	HandBackFor time.Duration
	// MaxLost is how many attempts in a row a job may lose to expired leases
	// (its worker crashed) before it is failed as a poison pill; lost attempts
	// do not spend the task's retries. Default 5; negative means no limit.
	MaxLost int
	// MaxAbandoned is how many abandoned tasks (timed out, and still running
	// because they ignore their context: Go cannot stop a goroutine) a worker
	// tolerates; past it the worker stops claiming, drains and Run returns
	// ErrTooManyAbandoned, so that its supervisor restarts it clean. Default
	// 100; negative means no limit.
	MaxAbandoned int
	// Burst makes Run return once no ready job remains and nothing is running,
	// after recovering (and running) the jobs of dead workers whose leases
	// expire, and after running the queued jobs that a task's rate limit holds
	// back (of queues that are not paused).
	Burst bool
	// Logger receives one line per job start (debug) and finish; default slog.Default().
	Logger *slog.Logger
	// Middleware wraps every attempt, outermost first.
	Middleware []Middleware
	// OnOutcome, when set, is called with the outcome of every attempt the
	// worker decides (including rejected, timed-out and abandoned ones) as soon
	// as it is decided, before it is stored. Attempts whose lease was lost or
	// whose job was cancelled meanwhile, and jobs handed back at shutdown, are
	// not reported. It must be quick; a panic in it is logged and ignored.
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
	// Version and ManifestHash are shown in the worker registry (nuvom
	// workers, the dashboard); Version defaults to the main module's version.
	Version      string
	ManifestHash string
}

// Defaults of WorkerOptions.
const (
	// DefaultConcurrency is the jobs a worker runs at once unless told:
	// enough for tasks that mostly wait on I/O, as most background tasks do.
	DefaultConcurrency  = 100
	DefaultBatchSize    = 100
	DefaultLeaseFor     = 5 * time.Second
	DefaultPollInterval = time.Second
	DefaultGrace        = 10 * time.Second
	DefaultAbandonAfter = 5 * time.Second
	DefaultMaxAbandoned = 100
	DefaultHandBackFor  = 10 * time.Minute
	DefaultMaxLost      = 5
	// MaxConcurrency bounds WorkerOptions.Concurrency: each slot is a goroutine
	// and a channel slot; more than this is almost certainly a typo.
	MaxConcurrency = 10000
	// MinKeepFinishedFor bounds WorkerOptions.KeepFinishedFor from below: a
	// shorter retention could delete a result before the caller waiting for
	// it reads it.
	MinKeepFinishedFor = time.Minute
)

// ErrTooManyAbandoned is returned by Run when more tasks than
// WorkerOptions.MaxAbandoned were abandoned and are still running.
var ErrTooManyAbandoned = errors.New("too many abandoned tasks still running; restart the worker to reclaim them")

// completion batching: flush when this many outcomes wait, or after flushDelay.
const (
	minCompleteBatch = 64
	flushDelay       = time.Millisecond
)

// claimCooldown is how long the fetch loop waits, while runners are busy, for
// a full batch of them to free up before claiming for fewer: each claim is a
// transaction whose cost is mostly per call, so claims of a full batch cost
// far less per job (the burn-down claimed 90 jobs per call with claims at
// half a batch after 100µs, 190 with full batches after 1ms).
const claimCooldown = time.Millisecond

// run states.
const (
	runClaimed   int32 = iota // claimed, waiting for a runner
	runStarted                // a runner is executing it
	runFinished               // its outcome is decided (or it was released); nothing else may write
	runAbandoned              // like runFinished, decided by the abandon timer: its runner must exit
)

// run is one claimed job while this worker holds it. It carries everything
// one attempt needs (its context, JobInfo, result and outcome) so that an
// attempt costs few allocations, and it is what the completer receives.
type run struct {
	job       *Job
	info      JobInfo         // set by the runner before the attempt starts
	base      context.Context // parent of the attempt's context
	ctxMu     sync.Mutex
	ctx       context.Context         // the attempt's cancellable context, made on first use (see context)
	cancelFn  context.CancelCauseFunc // ctx's cancel
	cause     error                   // why the attempt was cancelled before ctx was made, or nil
	state     atomic.Int32
	lost      atomic.Bool // the heartbeat found the lease gone
	cancelled atomic.Bool // ... because a user cancelled the job
	// leaseUntil is when the lease ends as last stored (UnixNano): set by
	// the claim, moved by every successful extend.
	leaseUntil atomic.Int64

	def    *TaskDef // set by the runner; read by core
	result []byte   // the task's result, written by core
	out    Outcome  // the decided outcome, written once by whoever finished the run
}

// Worker claims jobs from a backend and runs them with the tasks of a registry.
type Worker struct {
	b        Backend
	reg      *Registry
	o        WorkerOptions
	log      *slog.Logger
	now      func() time.Time
	queues   []string            // queues to claim from; nil: any queue
	tasks    []string            // tasks to claim jobs of: the registry's (empty only for an empty registry)
	defs     map[string]*TaskDef // the registry's tasks as NewWorker found them, by name
	strict   bool                // claim queue by queue, in order
	maxBatch int                 // outcomes per Complete call

	started  atomic.Bool
	done     chan struct{} // closed when Run returns
	stopNow  chan struct{}
	stopOnce sync.Once

	mu   sync.Mutex
	runs map[string]*run // claimed, and not finished or with an outcome not yet stored (the heartbeat extends them all)
	// claimMu keeps recovery passes out of claims: a claimed job is in runs
	// before a recovery can look for leases that ended (a claim that waited
	// for a locked store past a lease returns leases already ended).
	claimMu sync.Mutex

	inflight   atomic.Int64  // claimed and not finished (running, or claimed ahead and waiting for a runner)
	running    atomic.Int64  // attempts a runner is executing (the worker registry's count)
	ahead      bool          // ClaimAhead applies (see claimAhead)
	runNanos   atomic.Int64  // wall time the runners spent on attempts, for the claim-ahead estimate
	runCount   atomic.Int64  // attempts in runNanos
	slotFreed  chan struct{} // signalled (coalescing) when a run finishes
	jobs       chan *run     // claimed runs for the runners
	outcomes   chan *run     // finished runs whose outcome (run.out) is to be stored
	flushReq   chan chan struct{}
	checkLease chan struct{} // signalled (coalescing) when the store changed: look for cancelled jobs

	storeFailing  atomic.Bool   // the last Complete failed: do not claim more work
	dropped       atomic.Int64  // outcomes given up on (StopNow or shutdown while the store failed)
	abandoned     atomic.Int64  // abandoned tasks still running
	tooMany       chan struct{} // closed when abandoned passes MaxAbandoned
	shutdownBegun chan struct{} // closed when Run stops claiming
	tooManyOnce   sync.Once
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
		{"RecoverEvery", o.RecoverEvery}, {"AbandonAfter", o.AbandonAfter}, {"KeepFinishedFor", o.KeepFinishedFor}} {
		if d.v < 0 {
			return nil, fmt.Errorf("new worker: %s %s is negative", d.name, d.v)
		}
	}
	if o.KeepFinishedFor != 0 && o.KeepFinishedFor < MinKeepFinishedFor {
		return nil, fmt.Errorf("new worker: KeepFinishedFor %s is below the least retention, %s", o.KeepFinishedFor, MinKeepFinishedFor)
	}
	if o.KeepFinished < 0 {
		return nil, fmt.Errorf("new worker: KeepFinished %d is negative", o.KeepFinished)
	}
	if o.Concurrency < 0 || o.BatchSize < 0 {
		return nil, fmt.Errorf("new worker: concurrency %d and batch size %d must not be negative", o.Concurrency, o.BatchSize)
	}
	if o.Concurrency > MaxConcurrency {
		return nil, fmt.Errorf("new worker: concurrency %d is above the limit of %d jobs at once", o.Concurrency, MaxConcurrency)
	}
	if o.ID == "" {
		o.ID = defaultWorkerID()
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
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
	if o.LeaseFor < 10*time.Millisecond {
		return nil, fmt.Errorf("new worker: LeaseFor %s is shorter than 10ms", o.LeaseFor)
	}
	if o.HeartbeatEvery >= o.LeaseFor {
		return nil, fmt.Errorf("new worker: HeartbeatEvery %s must be shorter than LeaseFor %s", o.HeartbeatEvery, o.LeaseFor)
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.RecoverEvery == 0 {
		o.RecoverEvery = min(o.LeaseFor/4, 250*time.Millisecond)
	}
	switch {
	case o.Grace == 0:
		o.Grace = DefaultGrace
	case o.Grace < 0:
		o.Grace = 0
	}
	if o.MaxAbandoned == 0 {
		o.MaxAbandoned = DefaultMaxAbandoned
	}
	if o.HandBackFor == 0 {
		o.HandBackFor = DefaultHandBackFor
	}
	if o.MaxLost == 0 {
		o.MaxLost = DefaultMaxLost
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
		maxBatch:      max(o.BatchSize, o.Concurrency, minCompleteBatch),
		stopNow:       make(chan struct{}),
		done:          make(chan struct{}),
		runs:          make(map[string]*run),
		slotFreed:     make(chan struct{}, 1),
		jobs:          make(chan *run, o.Concurrency+o.BatchSize), // runners and jobs claimed ahead
		outcomes:      make(chan *run, max(o.BatchSize, o.Concurrency, minCompleteBatch)),
		flushReq:      make(chan chan struct{}),
		checkLease:    make(chan struct{}, 1),
		tooMany:       make(chan struct{}),
		shutdownBegun: make(chan struct{}),
	}
	w.tasks = reg.Names()
	if len(w.tasks) == 0 {
		return nil, errors.New("new worker: the registry has no tasks")
	}
	w.defs = make(map[string]*TaskDef, len(w.tasks))
	for _, name := range w.tasks {
		def, _ := reg.Lookup(name)
		w.defs[name] = &def
	}
	if len(o.Queues) > 0 {
		w.queues = append([]string(nil), o.Queues...)
		w.strict = len(o.Queues) > 1
	}
	w.ahead = o.ClaimAhead && !w.strict
	for _, def := range w.defs {
		if def.Options.MaxConcurrency > 0 || def.Options.Rate.N > 0 {
			w.ahead = false // the store counts a start when it is claimed
		}
	}
	return w, nil
}

// serves reports whether j is a job this worker claims: of its queues (any
// when none were given) and of its tasks.
func (w *Worker) serves(j *Job) bool {
	return (w.queues == nil || slices.Contains(w.queues, j.Queue)) &&
		(len(w.tasks) == 0 || slices.Contains(w.tasks, j.Task))
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
	// Attempt contexts derive from bctx, which is never cancelled (so that
	// deriving one registers nothing with its parent): each is cancelled when
	// its attempt is settled, and every attempt is settled before Run returns.
	jobBase := bctx

	w.recoverOnce(bctx)
	w.declareLimits(bctx) // flow.go
	queues := any("any")
	if w.queues != nil {
		queues = w.queues
	}
	w.log.Info("worker started", "worker", w.o.ID, "concurrency", w.o.Concurrency, "queues", queues, "tasks", len(w.tasks), "burst", w.o.Burst)
	for i := 0; i < w.o.Concurrency; i++ {
		go w.runner()
	}
	compStop, compDone := make(chan struct{}), make(chan struct{})
	go w.completer(bctx, compStop, compDone)
	bgCtx, stopBg := context.WithCancel(bctx)
	var bg sync.WaitGroup
	bg.Add(4)
	go func() { defer bg.Done(); w.heartbeat(bgCtx) }()
	go func() { defer bg.Done(); w.registry(bgCtx) }()
	go func() { defer bg.Done(); w.recoverer(bgCtx) }()
	go func() { defer bg.Done(); w.retention(bgCtx) }()

	err := w.fetchLoop(ctx, bctx, jobBase)
	close(w.shutdownBegun) // from now on a store that keeps failing is given up after the grace period

	w.shutdown(bctx)
	close(compStop)
	<-compDone
	// The heartbeat kept the leases of outcomes being stored until now.
	stopBg()
	bg.Wait()
	if w.o.Burst && err == nil && w.dropped.Load() == 0 {
		// A burst worker's one retention pass (see retention), once its jobs
		// are done; not after a failure or a stop, and cut short by ctx or
		// StopNow. Its failure is the worker's.
		pctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-w.stopNow:
				cancel()
			case <-pctx.Done():
			}
		}()
		if ctx.Err() == nil {
			if perr := w.pruneOnce(pctx); perr != nil {
				err = perr
			}
		}
		cancel()
	}
	if n := w.dropped.Load(); n > 0 {
		err = errors.Join(err, fmt.Errorf("worker %s: %d job outcomes could not be stored; those jobs run again once their leases expire", w.o.ID, n))
	}
	if err != nil {
		w.log.Error("worker stopped", "worker", w.o.ID, "err", err)
		return err
	}
	w.log.Info("worker stopped", "worker", w.o.ID)
	return nil
}

// maxBurstClaimFailures is how many claims in a row may fail before a burst
// worker gives up (a long-running worker keeps trying, with backoff).
const maxBurstClaimFailures = 10

// fetchLoop claims jobs while there are free runners, until ctx ends, StopNow,
// too many abandoned tasks, or (Burst) no ready or recoverable job remains.
func (w *Worker) fetchLoop(ctx, bctx, jobBase context.Context) error {
	notify, unsubscribe := w.b.Subscribe()
	defer unsubscribe()
	poll := time.NewTicker(w.o.PollInterval)
	defer poll.Stop()
	// Claim at once when a full batch of runners is free or none is busy;
	// otherwise wait up to claimCooldown for more to free up.
	lowWater := max(1, min(w.o.BatchSize, w.o.Concurrency))
	coolTimer := time.NewTimer(time.Hour)
	coolTimer.Stop()
	defer coolTimer.Stop()
	var cool <-chan time.Time // armed cooldown, or nil
	cooled := false           // the cooldown ran out: claim whatever is free
	more := true              // ready jobs may be waiting: claim as soon as a runner is free
	flushed := false          // Burst: outcomes were flushed since the last claim that found work
	retryTimer := time.NewTimer(time.Hour)
	retryTimer.Stop()
	defer retryTimer.Stop()
	var retry <-chan time.Time // armed after a failed claim or store: look again then
	claimFailures := 0
	backoff := func(n int) time.Duration { return min(10*time.Millisecond<<min(n, 7), time.Second) }
	var burstWatch map[string]time.Time // Burst: other workers' leases seen at the end, by job id
	var rateLogged map[string]bool      // Burst: tasks logged as held back by their rate limit
	var ahead claimAhead
	for {
		if ctx.Err() != nil || w.stopping() {
			return nil
		}
		select {
		case <-w.tooMany:
			return ErrTooManyAbandoned
		default:
		}
		free := w.o.Concurrency + ahead.jobs - int(w.inflight.Load())
		switch {
		case w.storeFailing.Load():
			// Outcomes cannot be stored: claiming more work would only make more.
			if retry == nil {
				retryTimer.Reset(100 * time.Millisecond)
				retry = retryTimer.C
			}
		case retry != nil:
			// waiting out a backoff
		case more && free > 0 && free < lowWater && w.inflight.Load() > 0 && !cooled:
			// Few runners are free and the rest are busy: let more free up for a
			// moment so that one claim serves many (each claim is a statement).
			if cool == nil {
				coolTimer.Reset(claimCooldown)
				cool = coolTimer.C
			}
		case more && free > 0:
			if cool != nil {
				coolTimer.Stop()
				cool = nil
			}
			cooled = false
			limit := min(free, w.o.BatchSize)
			t0 := time.Now()
			got, err := w.claim(bctx, jobBase, limit)
			if w.ahead && err == nil && got > 0 {
				ahead.update(time.Since(t0), w.runNanos.Swap(0), w.runCount.Swap(0), w.o.Concurrency, w.o.BatchSize)
			}
			switch {
			case err != nil:
				claimFailures++
				if claimFailures == 1 || claimFailures%10 == 0 {
					w.log.Error("claim jobs", "worker", w.o.ID, "failures_in_a_row", claimFailures, "err", err)
				}
				if w.o.Burst && claimFailures >= maxBurstClaimFailures {
					return fmt.Errorf("worker %s: claiming jobs failed %d times in a row: %w", w.o.ID, claimFailures, err)
				}
				retryTimer.Reset(backoff(claimFailures))
				retry = retryTimer.C
				continue
			case got > 0:
				claimFailures = 0
				flushed = false
				more = got == limit
				continue
			default:
				claimFailures = 0
				more = false
				if w.o.Burst && w.inflight.Load() == 0 {
					if !flushed {
						// Retries decided by the last jobs may be ready now: store them, look once more.
						w.flushNow(ctx)
						flushed, more = true, true
						continue
					}
					if burstWatch == nil {
						burstWatch = map[string]time.Time{}
					}
					wait, live, err := w.burstLeftovers(bctx, burstWatch)
					if err != nil {
						return err
					}
					if wait <= 0 {
						// Jobs a rate limit holds back are the burst's too.
						if rateLogged == nil {
							rateLogged = map[string]bool{}
						}
						if wait, err = w.burstRateHeld(bctx, rateLogged); err != nil {
							return err
						}
					}
					if wait <= 0 {
						if live > 0 {
							w.log.Info("burst done; jobs still run in other live workers", "worker", w.o.ID, "jobs", live)
						}
						return nil
					}
					// A dead worker's lease expires in wait: then recover its jobs and run them.
					retryTimer.Reset(wait)
					retry = retryTimer.C
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.stopNow:
			return nil
		case <-w.tooMany:
			return ErrTooManyAbandoned
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
		case <-retry:
			retry = nil
			more = true
			if w.o.Burst && flushed && w.inflight.Load() == 0 {
				w.recoverOnce(bctx)
				flushed = false
			}
		}
	}
}

// claimAhead sizes how many jobs the fetch loop claims beyond its free
// runners (WorkerOptions.ClaimAhead). By Little's law, while one claim is
// out, Concurrency runners finish about Concurrency × claim time ÷ job
// duration jobs; with that many claimed ahead, the runners do not sit idle
// waiting for the claim. The figure is capped at BatchSize; it is 0 for jobs
// that run longer than Concurrency claims take, and it drops to 0 as soon as
// a claim returns with no attempt finished since the one before (the runners
// are busy with longer jobs than the estimate knew).
type claimAhead struct {
	jobs   int           // jobs to claim beyond the free runners
	claim  time.Duration // smoothed wall time of a claim that found work
	run    time.Duration // smoothed wall time of an attempt
	warmed bool          // claim and run hold measurements
}

// update folds in one claim's wall time and the attempts finished since the
// last update (their total wall time and count), and sizes jobs.
func (a *claimAhead) update(claim time.Duration, runNanos, runs int64, concurrency, batch int) {
	if runs == 0 {
		a.jobs = 0 // nothing finished during a whole claim: claim for free runners only
		return
	}
	run := time.Duration(runNanos / runs)
	if !a.warmed {
		a.claim, a.run, a.warmed = claim, run, true
	} else {
		// Exponential smoothing, a quarter weight to the newest figure.
		a.claim += (claim - a.claim) / 4
		a.run += (run - a.run) / 4
	}
	want := batch
	if a.run > 0 {
		if n := float64(concurrency) * float64(a.claim) / float64(a.run); n < float64(batch) {
			want = int(n)
		}
	}
	a.jobs = max(0, min(want, batch))
}

// burstLeftovers looks, at the end of a burst, for running jobs of this
// worker's queues held by other workers. A lease seen for the first time is
// watched until its deadline; one whose deadline has moved since is held by a
// live worker and no longer waited for. It returns how long to wait for the
// earliest watched lease to expire (then recover it), or 0 when nothing is
// left that a recovery could bring back, and how many jobs live workers
// run.
func (w *Worker) burstLeftovers(ctx context.Context, watch map[string]time.Time) (time.Duration, int, error) {
	running, err := w.b.List(ctx, ListFilter{States: []State{StateRunning}, Limit: 100000})
	if err != nil {
		return 0, 0, fmt.Errorf("worker %s: list running jobs at the end of the burst: %w", w.o.ID, err)
	}
	now := w.now()
	var earliest time.Time
	live := 0
	for _, j := range running {
		if !w.serves(j) || j.LeaseOwner == w.o.ID {
			continue
		}
		seen, watched := watch[j.ID]
		switch {
		case !watched:
			watch[j.ID] = j.LeaseUntil
		case j.LeaseUntil.After(seen):
			live++ // extended since: its worker is alive
			continue
		}
		if earliest.IsZero() || j.LeaseUntil.Before(earliest) {
			earliest = j.LeaseUntil
		}
	}
	if earliest.IsZero() {
		return 0, live, nil
	}
	w.log.Info("burst: waiting for the leases of stopped workers to expire, to run their jobs", "worker", w.o.ID, "until", earliest)
	// Recovery takes leases that ended strictly before now.
	return max(earliest.Sub(now)+time.Millisecond, time.Millisecond), live, nil
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
	w.claimMu.Lock()
	defer w.claimMu.Unlock()
	now := w.now()
	var jobs []*Job
	if w.strict {
		for _, q := range w.queues {
			js, err := w.b.Claim(bctx, backend.ClaimRequest{Queues: []string{q}, Tasks: w.tasks, Limit: limit - len(jobs), Worker: w.o.ID, Now: now, LeaseFor: w.o.LeaseFor})
			if err != nil {
				if len(jobs) > 0 {
					// Run what earlier queues gave; the next claim retries this one.
					w.log.Error("claim from queue", "worker", w.o.ID, "queue", q, "err", err)
					break
				}
				return 0, fmt.Errorf("claim from queue %s: %w", q, err)
			}
			jobs = append(jobs, js...)
			if len(jobs) >= limit {
				break
			}
		}
	} else {
		js, err := w.b.Claim(bctx, backend.ClaimRequest{Queues: w.queues, Tasks: w.tasks, Limit: limit, Worker: w.o.ID, Now: now, LeaseFor: w.o.LeaseFor})
		if err != nil {
			return 0, fmt.Errorf("claim jobs: %w", err)
		}
		jobs = js
	}
	w.mu.Lock()
	runs := make([]*run, len(jobs))
	for i, j := range jobs {
		r := &run{job: j, base: jobBase}
		r.leaseUntil.Store(j.LeaseUntil.UnixNano())
		w.runs[j.ID] = r
		runs[i] = r
	}
	w.mu.Unlock()
	w.inflight.Add(int64(len(runs)))
	for _, r := range runs {
		w.jobs <- r // never blocks: the channel holds Concurrency+BatchSize runs and inflight <= Concurrency+BatchSize
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
		if r.lost.Load() {
			// Its lease ended (cancelled, or recovered after a stall) while it
			// waited for a runner: it is another worker's now, or nobody's.
			w.finish(r, runStarted, nil)
			continue
		}
		w.running.Add(1)
		var abandoned bool
		if w.ahead {
			t0 := time.Now()
			abandoned = w.execute(r)
			w.runNanos.Add(int64(time.Since(t0)))
			w.runCount.Add(1)
		} else {
			abandoned = w.execute(r)
		}
		w.running.Add(-1)
		if abandoned {
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
	if (o == nil || r.lost.Load()) && w.runs[r.job.ID] == r { // not a newer claim of the same job (a lost attempt can end after it)
		delete(w.runs, r.job.ID)
	} // else r stays held, finished, until its outcome is stored: the heartbeat keeps its lease (forget lets go)
	w.mu.Unlock()
	r.cancel(errAttemptOver)
	if o != nil {
		if r.lost.Load() {
			if !r.cancelled.Load() {
				w.log.Warn("job lease lost while running; its outcome is discarded", "worker", w.o.ID, "task", r.job.Task, "job", r.job.ID, "attempt", r.job.Attempt)
			}
		} else {
			r.out = *o // only the party that finished r gets here
			r.out.Queue, r.out.Task = r.job.Queue, r.job.Task
			w.outcomes <- r
		}
	}
	w.inflight.Add(-1)
	select {
	case w.slotFreed <- struct{}{}:
	default:
	}
}

// context returns the attempt's cancellable context, making it on first use:
// most tasks never look at their context's Done, Err or values, so most
// attempts never make one (two allocations per job saved).
func (r *run) context() context.Context {
	r.ctxMu.Lock()
	defer r.ctxMu.Unlock()
	if r.ctx == nil {
		r.ctx, r.cancelFn = context.WithCancelCause(r.base)
		if r.cause != nil {
			r.cancelFn(r.cause)
		}
	}
	return r.ctx
}

// cancel cancels the attempt's context with cause (the first cause stays),
// or records cause for when the context is made.
func (r *run) cancel(cause error) {
	r.ctxMu.Lock()
	if r.ctx == nil {
		if r.cause == nil {
			r.cause = cause
		}
		r.ctxMu.Unlock()
		return
	}
	cancel := r.cancelFn
	r.ctxMu.Unlock()
	cancel(cause)
}

// err is the attempt context's Err, without making the context.
func (r *run) err() error {
	r.ctxMu.Lock()
	ctx, cause := r.ctx, r.cause
	r.ctxMu.Unlock()
	switch {
	case ctx != nil:
		return ctx.Err()
	case cause != nil:
		return context.Canceled
	}
	return nil
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
		w.extendHeld(ctx, true)
	}
}

// extendHeld extends every held lease once and cancels the runs whose lease is
// gone: cancelled by a user, or taken over after this worker stalled. It
// reports whether the store took the extension, and logs a failure when
// logErr is set (the heartbeat's calls; a recovery pass's would repeat them).
func (w *Worker) extendHeld(ctx context.Context, logErr bool) bool {
	w.mu.Lock()
	leases := make([]Lease, 0, len(w.runs))
	held := make([]*run, 0, len(w.runs))
	for _, r := range w.runs { // running, and finished with their outcome not yet stored
		leases = append(leases, r.job.Lease())
		held = append(held, r)
	}
	w.mu.Unlock()
	if len(leases) == 0 {
		return true
	}
	until := w.now().Add(w.o.LeaseFor)
	lost, err := w.b.Extend(ctx, leases, until)
	if err != nil {
		if logErr && ctx.Err() == nil {
			w.log.Error("extend leases", "worker", w.o.ID, "jobs", len(leases), "err", err)
		}
		return false
	}
	sent := make(map[string]Lease, len(leases))
	for _, l := range leases {
		sent[l.JobID] = l
	}
	gone := make(map[string]bool, len(lost))
	for _, id := range lost {
		gone[id] = true
	}
	for _, r := range held {
		if gone[r.job.ID] {
			r.leaseUntil.Store(math.MaxInt64) // no longer this worker's: nothing to renew
		} else {
			r.leaseUntil.Store(backend.ClampTime(until).UnixNano()) // as stored: a time past 2262 has no UnixNano
		}
	}
	for _, id := range lost {
		w.mu.Lock()
		r := w.runs[id]
		w.mu.Unlock()
		if r == nil || r.job.Lease() != sent[id] || r.state.Load() >= runFinished {
			continue // finished (its outcome's Complete will find the lease gone), or a newer claim of the job that this call did not extend
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
	return true
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

// trimEvery is how often a worker with WorkerOptions.KeepFinished looks at
// how many ended jobs each queue holds.
const trimEvery = time.Minute

// trimSlack is how many ended jobs beyond WorkerOptions.KeepFinished a
// queue may hold before a periodic pass trims it back to KeepFinished: a
// trim reads the queue's jobs (on SQLite a scan of the table), so it
// happens once per so many jobs ended, not at every pass.
func trimSlack(keep int) int { return max(keep/10, 1000) }

// retention applies KeepFinishedFor every quarter of it (at most an hour
// apart) and KeepFinished every trimEvery, each first at once, until ctx
// ends. The first pass of KeepFinished trims every queue over it; later
// ones only the queues over it by more than trimSlack. It does nothing for a
// burst worker, which makes its one pass when its jobs are done (Run):
// bound to the burst, a pass in flight would be cut off when it ends.
func (w *Worker) retention(ctx context.Context) {
	if w.o.Burst {
		return
	}
	var wg sync.WaitGroup
	if keep := w.o.KeepFinishedFor; keep > 0 {
		wg.Go(func() { w.repeat(ctx, min(keep/4, time.Hour), func(int) { _ = w.purgeOld(ctx) }) })
	}
	if keep := w.o.KeepFinished; keep > 0 {
		wg.Go(func() {
			w.repeat(ctx, trimEvery, func(pass int) {
				slack := 0
				if pass > 0 {
					slack = trimSlack(keep)
				}
				_ = w.trimOld(ctx, slack)
			})
		})
	}
	wg.Wait()
}

// repeat runs pass(0), pass(1), ... every interval until ctx ends. A pass
// logs its own failure; the next one tries again.
func (w *Worker) repeat(ctx context.Context, every time.Duration, pass func(n int)) {
	for n := 0; ; n++ {
		pass(n)
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// pruneOnce is a burst worker's retention pass: purgeOld, then trimOld with
// no slack. It returns the errors of passes that failed while ctx was live.
func (w *Worker) pruneOnce(ctx context.Context) error {
	return errors.Join(w.purgeOld(ctx), w.trimOld(ctx, 0))
}

// purgeOld deletes the jobs that ended more than KeepFinishedFor ago, if it
// is set, and logs what it did.
func (w *Worker) purgeOld(ctx context.Context) error {
	keep := w.o.KeepFinishedFor
	if keep <= 0 {
		return nil
	}
	n, err := w.b.PurgeEnded(ctx, w.now().Add(-keep), PurgeFilter{})
	return w.logPrune(ctx, "keep_finished_for", keep.String(), n, err)
}

// trimOld trims each queue holding more than KeepFinished plus slack ended
// jobs (by the store's counts) to its newest KeepFinished, if it is set,
// and logs what it did.
func (w *Worker) trimOld(ctx context.Context, slack int) error {
	keep := w.o.KeepFinished
	if keep <= 0 {
		return nil
	}
	stats, err := w.b.Stats(ctx, w.now())
	if err != nil {
		return w.logPrune(ctx, "keep_finished", strconv.Itoa(keep), 0, fmt.Errorf("count ended jobs: %w", err))
	}
	ended := map[string]int{}
	for _, st := range stats {
		if st.State.Final() && st.Queue != "" { // "": damaged rows, which no queue filter matches
			ended[st.Queue] += st.Count
		}
	}
	total := 0
	var errs []error
	for _, q := range slices.Sorted(maps.Keys(ended)) {
		if ended[q]-keep <= slack || ctx.Err() != nil { // not keep+slack: keep may be near MaxInt
			continue
		}
		n, err := w.b.TrimEnded(ctx, keep, PurgeFilter{Queue: q})
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("queue %s: %w", q, err))
		}
	}
	return w.logPrune(ctx, "keep_finished", strconv.Itoa(keep), total, errors.Join(errs...))
}

// logPrune logs a retention pass by the option named by attr (set to keep)
// that deleted n jobs, and returns its error, unless ctx ended.
func (w *Worker) logPrune(ctx context.Context, attr, keep string, n int, err error) error {
	switch {
	case err != nil && ctx.Err() == nil:
		w.log.Error("delete ended jobs beyond the retention", "worker", w.o.ID, attr, keep, "deleted", n, "err", err)
		return fmt.Errorf("worker %s: retention %s=%s: %w", w.o.ID, attr, keep, err)
	case n > 0:
		w.log.Info("deleted ended jobs beyond the retention", "worker", w.o.ID, attr, keep, "jobs", n)
	}
	return nil
}

func (w *Worker) recoverOnce(ctx context.Context) {
	w.claimMu.Lock()
	defer w.claimMu.Unlock()
	// A recovery while a lease of this worker's own has ended would take its
	// live jobs, and the outcomes it still has to store, from it. An
	// extension that waited for the store past a lease ends at once, hence
	// the few tries.
	for tries := 0; w.ownLeaseLapsed(); tries++ {
		if tries == 3 || !w.extendHeld(ctx, false) {
			return
		}
	}
	n, err := w.b.RecoverExpired(ctx, w.now(), max(w.o.MaxLost, 0))
	switch {
	case err != nil && ctx.Err() == nil:
		w.log.Error("recover expired leases", "worker", w.o.ID, "err", err)
	case n > 0:
		w.log.Warn("recovered jobs whose lease expired", "worker", w.o.ID, "jobs", n)
	}
}

// ownLeaseLapsed reports whether a lease this worker holds has ended in the
// store: the store took no extension for a lease's length (locked, full,
// out of reach). Its jobs are still running here, or their outcomes wait to
// be stored, so the worker renews those leases before it recovers expired
// ones: whichever write gets through first once the store works again, the
// recovery must not find them expired.
func (w *Worker) ownLeaseLapsed() bool {
	now := w.now().UnixNano()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.runs {
		if r.leaseUntil.Load() <= now && !r.lost.Load() {
			return true
		}
	}
	return false
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
	batch := make([]*run, 0, w.maxBatch)
	outs := make([]Outcome, 0, w.maxBatch) // reused by every store
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	// giveUp closes on StopNow, or once the shutdown has begun and the grace
	// period (at least a few seconds) has passed: a store that keeps failing
	// is retried until then.
	giveUp := make(chan struct{})
	quit := make(chan struct{}) // closed when the completer returns
	defer close(quit)
	go func() {
		defer close(giveUp)
		select {
		case <-w.stopNow:
			return
		case <-quit:
			return
		case <-w.shutdownBegun:
		}
		t := time.NewTimer(max(w.o.Grace, 5*time.Second))
		defer t.Stop()
		select {
		case <-w.stopNow:
		case <-quit:
		case <-t.C:
		}
	}()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		timer.Stop()
		w.store(ctx, batch, outs, giveUp)
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
				for drain(); len(batch) > 0; drain() {
					flush()
				}
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
			for drain(); len(batch) > 0; drain() {
				flush()
			}
			close(req)
		case <-stop:
			drain()
			flush()
		}
	}
}

// flushNow asks the completer to store every outcome it holds and waits.
func (w *Worker) flushNow(ctx context.Context) {
	req := make(chan struct{})
	select {
	case w.flushReq <- req:
	case <-ctx.Done():
		return
	case <-w.stopNow:
		return
	}
	select {
	case <-req:
	case <-ctx.Done():
	case <-w.stopNow:
	}
}

// store writes one batch of outcomes, then reports the stored ones to
// OnStored. A failing write is retried, with backoff, while the heartbeat
// keeps the batch's leases, until it succeeds or abort closes (then the
// outcomes are dropped: their jobs run again once their leases expire).
func (w *Worker) store(ctx context.Context, batch []*run, buf []Outcome, abort <-chan struct{}) {
	outs := buf[:0]
	for _, r := range batch {
		outs = append(outs, r.out)
	}
	defer clear(outs) // let go of results and errors until the next batch
	delay := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		errs, err := w.b.Complete(ctx, outs)
		if err == nil {
			if w.storeFailing.Swap(false) {
				w.log.Info("job outcomes stored again", "worker", w.o.ID, "jobs", len(batch), "attempts", attempt)
			}
			w.forget(batch)
			for i, r := range batch {
				if i < len(errs) && errs[i] != nil {
					w.log.Warn("job outcome not stored", "worker", w.o.ID, "job", r.out.Lease.JobID, "err", errs[i])
					continue
				}
				if w.o.OnStored != nil {
					w.reportStored(r)
				}
			}
			return
		}
		w.storeFailing.Store(true)
		if attempt == 1 || attempt%20 == 0 {
			w.log.Error("store job outcomes; retrying while their leases are held, and claiming nothing meanwhile",
				"worker", w.o.ID, "jobs", len(batch), "attempt", attempt, "err", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-abort:
			t.Stop()
			w.dropped.Add(int64(len(batch)))
			w.forget(batch)
			w.log.Error("gave up storing job outcomes; their jobs will run again once their leases expire",
				"worker", w.o.ID, "jobs", len(batch), "attempts", attempt, "err", err)
			return
		case <-t.C:
		}
		delay = min(delay*2, time.Second)
	}
}

// forget stops keeping the leases of a stored (or abandoned) batch.
func (w *Worker) forget(batch []*run) {
	w.mu.Lock()
	for _, r := range batch {
		if w.runs[r.job.ID] == r { // not a newer claim of the same job
			delete(w.runs, r.job.ID)
		}
	}
	w.mu.Unlock()
}

// Abandoned returns how many abandoned tasks (timed out and ignoring their
// context) are still running in this worker's process.
func (w *Worker) Abandoned() int { return int(w.abandoned.Load()) }
