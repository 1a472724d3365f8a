package nuvom_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/faulty"
)

var errLocked = errors.New("database is locked (SQLITE_BUSY)")

// waitUntil polls cond; the deadline is a hang guard only.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// runCounter counts the runs of each job.
type runCounter struct {
	mu   sync.Mutex
	runs map[string]int
}

func (c *runCounter) invoke(ctx context.Context, _ []byte) ([]byte, error) {
	info, _ := nuvom.JobInfoFromContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runs == nil {
		c.runs = map[string]int{}
	}
	c.runs[info.ID]++
	return nil, nil
}

func (c *runCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.runs {
		n += r
	}
	return n
}

// When storing outcomes fails (SQLITE_BUSY past the busy timeout, say), the
// worker keeps the outcomes and their leases, claims nothing more, and stores
// them once the store works again: every job ran exactly once and succeeded.
func TestFailingCompletesAreRetriedAndStopClaims(t *testing.T) {
	f := faulty.Wrap(newBackend(t))
	s := spec("busy", nuvom.TaskOptions{})
	var c runCounter
	reg := registry(t, def(s, c.invoke))
	var ids []string
	for range 20 {
		ids = append(ids, enqueue(t, f, s))
	}
	f.Fail(faulty.Complete, errLocked, faulty.Always)
	w := newWorker(t, f, reg, nuvom.WorkerOptions{Concurrency: 2, BatchSize: 1, PollInterval: time.Millisecond})
	stop := start(t, w)
	defer stop()

	waitUntil(t, "4 failed stores", func() bool { return f.Failures(faulty.Complete) >= 4 })
	claims := f.Calls(faulty.Claim)
	ran := c.total()
	waitUntil(t, "8 failed stores", func() bool { return f.Failures(faulty.Complete) >= 8 })
	if more := f.Calls(faulty.Claim) - claims; more > 1 {
		t.Errorf("the worker made %d claims while it could not store outcomes", more)
	}
	if c.total() != ran || ran > 20 {
		t.Errorf("jobs ran while outcomes could not be stored: %d, then %d", ran, c.total())
	}

	f.Heal(faulty.Complete)
	for _, id := range ids {
		if j := waitFinal(t, f, id); j.State != nuvom.StateSucceeded {
			t.Errorf("job %s: %s, want succeeded", id, j.State)
		}
	}
	stop()
	for _, id := range ids {
		if n := c.runs[id]; n != 1 {
			t.Errorf("job %s ran %d times, want once", id, n)
		}
	}
}

// A store that never recovers: StopNow gives up, and Run says how many
// outcomes were not stored instead of returning nil.
func TestRunReportsOutcomesItCouldNotStore(t *testing.T) {
	f := faulty.Wrap(newBackend(t))
	s := spec("lost", nuvom.TaskOptions{})
	var c runCounter
	reg := registry(t, def(s, c.invoke))
	enqueue(t, f, s)
	f.Fail(faulty.Complete, errLocked, faulty.Always)
	w := newWorker(t, f, reg, nuvom.WorkerOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	waitUntil(t, "a failed store", func() bool { return f.Failures(faulty.Complete) >= 1 })
	cancel()
	w.StopNow()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "1 job outcomes could not be stored") {
			t.Fatalf("Run = %v, want an error counting the outcome not stored", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return")
	}
}

// A burst worker whose claims keep failing exits with an error instead of
// spinning for ever; one whose claims fail a few times recovers and finishes.
func TestBurstWorkerAndFailingClaims(t *testing.T) {
	f := faulty.Wrap(newBackend(t))
	s := spec("claim", nuvom.TaskOptions{})
	var c runCounter
	reg := registry(t, def(s, c.invoke))
	id := enqueue(t, f, s)

	f.Fail(faulty.Claim, errLocked, faulty.Always)
	w := newWorker(t, f, reg, nuvom.WorkerOptions{Burst: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()
	if err := w.Run(ctx); err == nil || !errors.Is(err, errLocked) {
		t.Fatalf("burst Run with failing claims = %v, want an error wrapping the claim's", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run did not give up")
	}

	f.Fail(faulty.Claim, errLocked, 3)
	burst(t, f, reg, nuvom.WorkerOptions{})
	if j := getJob(t, f, id); j.State != nuvom.StateSucceeded {
		t.Fatalf("after 3 failed claims: %s, want succeeded", j.State)
	}
}

// Failing heartbeats and recoveries are logged and retried; jobs still finish once.
func TestFailingExtendAndRecover(t *testing.T) {
	f := faulty.Wrap(newBackend(t))
	s := spec("beat", nuvom.TaskOptions{})
	release := make(chan struct{})
	var c runCounter
	reg := registry(t, def(s, func(ctx context.Context, args []byte) ([]byte, error) {
		<-release
		return c.invoke(ctx, args)
	}))
	id := enqueue(t, f, s)
	f.Fail(faulty.Extend, errLocked, 3)
	f.Fail(faulty.RecoverExpired, errLocked, 3)
	w := newWorker(t, f, reg, nuvom.WorkerOptions{LeaseFor: time.Hour, HeartbeatEvery: time.Millisecond, RecoverEvery: time.Millisecond})
	stop := start(t, w)
	defer stop()
	waitUntil(t, "the failures to pass", func() bool {
		return f.Failures(faulty.Extend) == 3 && f.Calls(faulty.Extend) > 3 &&
			f.Failures(faulty.RecoverExpired) == 3 && f.Calls(faulty.RecoverExpired) > 3
	})
	close(release)
	if j := waitFinal(t, f, id); j.State != nuvom.StateSucceeded || len(j.Attempts) != 1 {
		t.Fatalf("job: %s after %d attempts, want succeeded after 1", j.State, len(j.Attempts))
	}
}

// A burst worker does not exit while a dead worker's lease on one of its jobs
// is about to expire: it waits, recovers the job and runs it. A job whose
// lease keeps being extended (a live worker) is not waited for.
func TestBurstRunsTheJobsOfDeadWorkers(t *testing.T) {
	b := newBackend(t)
	s := spec("orphan", nuvom.TaskOptions{})
	var c runCounter
	reg := registry(t, def(s, c.invoke))
	orphan := enqueue(t, b, s)
	live := enqueue(t, b, s)
	ctx := context.Background()
	now := time.Now()
	claimed, err := b.Claim(ctx, backendClaim("dead-worker", now, 300*time.Millisecond, 1))
	if err != nil || len(claimed) != 1 || claimed[0].ID != orphan {
		t.Fatalf("setup: claim = %v, %v", claimed, err)
	}
	held, err := b.Claim(ctx, backendClaim("live-worker", now, time.Hour, 1))
	if err != nil || len(held) != 1 || held[0].ID != live {
		t.Fatalf("setup: claim = %v, %v", held, err)
	}
	// The live worker extends its lease whenever it is looked at.
	stopBeat := make(chan struct{})
	beatDone := make(chan struct{})
	go func() {
		defer close(beatDone)
		for {
			select {
			case <-stopBeat:
				return
			case <-time.After(time.Millisecond):
				_, _ = b.Extend(ctx, []nuvom.Lease{held[0].Lease()}, time.Now().Add(time.Hour))
			}
		}
	}()
	burst(t, b, reg, nuvom.WorkerOptions{})
	close(stopBeat)
	<-beatDone
	if j := getJob(t, b, orphan); j.State != nuvom.StateSucceeded {
		t.Errorf("the dead worker's job: %s (attempts %v), want succeeded by the burst", j.State, outcomes(j))
	}
	if j := getJob(t, b, live); j.State != nuvom.StateRunning {
		t.Errorf("the live worker's job: %s, want still running", j.State)
	}
}

func backendClaim(worker string, now time.Time, lease time.Duration, limit int) backend.ClaimRequest {
	return backend.ClaimRequest{Worker: worker, Now: now, LeaseFor: lease, Limit: limit}
}

// A graceful stop while the store keeps failing retries for the grace period
// (at least a few seconds), then gives up and says so: it never hangs.
func TestGracefulStopGivesUpOnAFailingStore(t *testing.T) {
	f := faulty.Wrap(newBackend(t))
	s := spec("stuck", nuvom.TaskOptions{})
	var c runCounter
	reg := registry(t, def(s, c.invoke))
	for range 3 {
		enqueue(t, f, s)
	}
	f.Fail(faulty.Complete, errLocked, faulty.Always)
	w := newWorker(t, f, reg, nuvom.WorkerOptions{Grace: -1, Concurrency: 1, BatchSize: 1})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	waitUntil(t, "a failed store", func() bool { return f.Failures(faulty.Complete) >= 1 })
	cancel() // no StopNow
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "could not be stored") {
			t.Fatalf("Run = %v, want an error counting the outcomes not stored", err)
		}
	case <-time.After(5 * time.Minute): // hang guard
		t.Fatal("a graceful stop hung on a failing store")
	}
}

// A worker needs tasks: with none it would claim every job of its queues.
func TestNewWorkerRefusesAnEmptyRegistry(t *testing.T) {
	if _, err := nuvom.NewWorker(newBackend(t), registry(t), nuvom.WorkerOptions{Queues: []string{"default"}}); err == nil {
		t.Fatal("a worker without tasks was accepted")
	}
}

// While outcomes cannot be stored, the heartbeat keeps extending their
// leases: the clock (a fake one, moved on only after a heartbeat has run)
// passes three lease periods while every store fails, and yet no lease is
// recovered: once the store works again each job has run exactly once and
// succeeded.
func TestHeartbeatKeepsTheLeasesOfUnstoredOutcomes(t *testing.T) {
	f := faulty.Wrap(newBackend(t))
	s := spec("unstored", nuvom.TaskOptions{})
	var c runCounter
	reg := registry(t, def(s, c.invoke))
	var ids []string
	for range 6 {
		ids = append(ids, enqueue(t, f, s))
	}
	base := time.Now()
	var offset atomic.Int64
	now := func() time.Time { return base.Add(time.Duration(offset.Load())) }
	const lease = time.Minute // of the fake clock; the heartbeat ticks in real time
	f.Fail(faulty.Complete, errLocked, faulty.Always)
	w := newWorker(t, f, reg, nuvom.WorkerOptions{Concurrency: 6, LeaseFor: lease, HeartbeatEvery: 5 * time.Millisecond,
		RecoverEvery: time.Millisecond, PollInterval: time.Millisecond, Now: now})
	stop := start(t, w)
	defer stop()

	waitUntil(t, "every job ran and a store failed", func() bool { return c.total() == len(ids) && f.Failures(faulty.Complete) >= 1 })
	for range 5 { // 5 × 0.6 leases
		offset.Add(int64(lease * 6 / 10))
		n := f.Calls(faulty.Extend)
		waitUntil(t, "two heartbeats", func() bool { return f.Calls(faulty.Extend) >= n+2 })
	}
	f.Heal(faulty.Complete)
	for _, id := range ids {
		if j := waitFinal(t, f, id); j.State != nuvom.StateSucceeded {
			t.Errorf("job %s: %s, want succeeded", id, j.State)
		}
	}
	stop()
	for _, id := range ids {
		if n := c.runs[id]; n != 1 {
			t.Errorf("job %s ran %d times, want once", id, n)
		}
	}
}

// A worker whose store takes no write for longer than a lease (a SQLite file
// another process holds locked, say) still holds its jobs: the recovery it
// runs itself renews its own lapsed leases first, and does not recover while
// it cannot. Before, the first recovery that got through once the store
// worked again took the worker's own running jobs and unstored outcomes from
// it: they were recorded as lost and ran a second time.
func TestRecoveryKeepsTheWorkersOwnLapsedLeases(t *testing.T) {
	f := faulty.Wrap(newBackend(t))
	quick := spec("quick", nuvom.TaskOptions{})
	slow := spec("slow", nuvom.TaskOptions{})
	release := make(chan struct{})
	var c runCounter
	reg := registry(t, def(quick, c.invoke), def(slow, func(ctx context.Context, args []byte) ([]byte, error) {
		if _, err := c.invoke(ctx, args); err != nil {
			return nil, err
		}
		<-release
		return nil, nil
	}))
	ids := []string{enqueue(t, f, quick), enqueue(t, f, quick), enqueue(t, f, quick), enqueue(t, f, slow)}
	base := time.Now()
	var offset atomic.Int64
	now := func() time.Time { return base.Add(time.Duration(offset.Load())) }
	const lease = time.Minute // of the fake clock; the heartbeat and recoverer tick in real time
	f.Fail(faulty.Complete, errLocked, faulty.Always)
	f.Fail(faulty.Extend, errLocked, faulty.Always)
	w := newWorker(t, f, reg, nuvom.WorkerOptions{Concurrency: 4, LeaseFor: lease, HeartbeatEvery: 5 * time.Millisecond,
		RecoverEvery: time.Millisecond, PollInterval: time.Millisecond, Now: now})
	stop := start(t, w)
	defer stop()

	waitUntil(t, "every job to start and a store to fail", func() bool {
		return c.total() == len(ids) && f.Failures(faulty.Complete) >= 1
	})
	offset.Add(int64(2 * lease)) // every lease the worker holds has ended in the store
	n := f.Calls(faulty.RecoverExpired)
	e := f.Calls(faulty.Extend)
	// Recovery passes tick every millisecond, heartbeats every 5: by 20
	// failed extends (from either), many passes ran. Before the fix they
	// called RecoverExpired; now they try to renew the leases first.
	waitUntil(t, "recovery passes after the leases ended", func() bool {
		return f.Calls(faulty.RecoverExpired) >= n+3 || f.Calls(faulty.Extend) >= e+20
	})
	f.Heal(faulty.Extend)
	f.Heal(faulty.Complete)
	close(release)
	for _, id := range ids {
		j := waitFinal(t, f, id)
		if j.State != nuvom.StateSucceeded || len(j.Attempts) != 1 {
			t.Errorf("job %s: %s after attempts %+v, want succeeded at its first attempt", id, j.State, j.Attempts)
		}
	}
	stop()
	for _, id := range ids {
		if n := c.runs[id]; n != 1 {
			t.Errorf("job %s ran %d times, want once", id, n)
		}
	}
}

// stallingStore applies its next Extend, once armed, only after the fake
// clock moved past the extension's end: an Extend that waited for a locked
// store longer than a lease.
type stallingStore struct {
	*faulty.Backend
	stall   atomic.Bool
	advance func()
}

func (s *stallingStore) Extend(ctx context.Context, leases []backend.Lease, until time.Time) ([]string, error) {
	if s.stall.CompareAndSwap(true, false) {
		s.advance()
	}
	return s.Backend.Extend(ctx, leases, until)
}

// A renewal that reached the store only after the lease it renewed had ended
// (it waited for a lock) renews nothing: the recovery pass renews again
// before it recovers, rather than take the worker's own running job.
func TestRecoveryKeepsLeasesRenewedTooLate(t *testing.T) {
	var base time.Time // set once the job is enqueued, so that it is due
	var offset atomic.Int64
	now := func() time.Time { return base.Add(time.Duration(offset.Load())) }
	const lease = time.Minute // of the fake clock
	s := &stallingStore{Backend: faulty.Wrap(newBackend(t)), advance: func() { offset.Add(int64(2 * lease)) }}
	slow := spec("slow", nuvom.TaskOptions{})
	release := make(chan struct{})
	var c runCounter
	reg := registry(t, def(slow, func(ctx context.Context, args []byte) ([]byte, error) {
		if _, err := c.invoke(ctx, args); err != nil {
			return nil, err
		}
		<-release
		return nil, nil
	}))
	id := enqueue(t, s, slow)
	base = time.Now()
	// The heartbeat (every 50 s of real time) leaves the renewals to the
	// recovery passes, every millisecond.
	w := newWorker(t, s, reg, nuvom.WorkerOptions{Concurrency: 1, LeaseFor: lease, HeartbeatEvery: 50 * time.Second,
		RecoverEvery: time.Millisecond, PollInterval: time.Millisecond, Now: now})
	stop := start(t, w)
	defer stop()
	waitUntil(t, "the job to start", func() bool { return c.total() == 1 })

	s.stall.Store(true)
	offset.Add(int64(2 * lease)) // the lease has ended: the next recovery pass renews it, too late
	waitUntil(t, "the late renewal", func() bool { return !s.stall.Load() })
	n := s.Calls(faulty.RecoverExpired)
	waitUntil(t, "recovery passes after it", func() bool { return s.Calls(faulty.RecoverExpired) >= n+3 })
	close(release)
	j := waitFinal(t, s, id)
	stop()
	if j.State != nuvom.StateSucceeded || len(j.Attempts) != 1 || c.runs[id] != 1 {
		t.Fatalf("job: %s, ran %d times, attempts %+v; want succeeded at its first attempt, run once", j.State, c.runs[id], j.Attempts)
	}
}

// A lease so long that its end, renewed from now, lies past the latest time a
// backend stores (about 2262) is held like any other: the worker's own
// record of when it ends must not wrap around to the past, which made every
// recovery pass renew the leases three times and then skip its recovery.
func TestRecoveryRunsWithALeasePastTheLatestStoredTime(t *testing.T) {
	f := faulty.Wrap(newBackend(t))
	release := make(chan struct{})
	started := make(chan struct{})
	slow := spec("slow", nuvom.TaskOptions{})
	reg := registry(t, def(slow, func(ctx context.Context, args []byte) ([]byte, error) {
		close(started)
		<-release
		return nil, nil
	}))
	id := enqueue(t, f, slow)
	w := newWorker(t, f, reg, nuvom.WorkerOptions{Concurrency: 1, LeaseFor: 290 * 365 * 24 * time.Hour,
		HeartbeatEvery: 20 * time.Millisecond, RecoverEvery: time.Millisecond, PollInterval: time.Millisecond})
	stop := start(t, w)
	defer stop()
	<-started
	e := f.Calls(faulty.Extend)
	waitUntil(t, "a heartbeat to renew the running job's lease", func() bool { return f.Calls(faulty.Extend) > e })
	n := f.Calls(faulty.RecoverExpired)
	// Before the fix each recovery pass renewed the lease three times
	// instead of recovering, for as long as the job ran: no pass reached
	// the store again (the wait's two minutes are a hang guard only).
	waitUntil(t, "recovery passes to reach the store while the job runs", func() bool {
		return f.Calls(faulty.RecoverExpired) >= n+3
	})
	close(release)
	if j := waitFinal(t, f, id); j.State != nuvom.StateSucceeded {
		t.Errorf("job %s: %s, want succeeded", id, j.State)
	}
}

// signalHandler is a slog.Handler that closes a channel the first time a
// record with a given message is logged.
type signalHandler struct {
	mu   *sync.Mutex
	seen map[string]chan struct{}
}

func newSignalHandler(msgs ...string) signalHandler {
	h := signalHandler{mu: &sync.Mutex{}, seen: map[string]chan struct{}{}}
	for _, m := range msgs {
		h.seen[m] = make(chan struct{})
	}
	return h
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h signalHandler) WithGroup(string) slog.Handler            { return h }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch, ok := h.seen[r.Message]; ok {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
	return nil
}

func (h signalHandler) wait(t *testing.T, msg string) {
	t.Helper()
	select {
	case <-h.seen[msg]:
	case <-time.After(2 * time.Minute): // hang guard
		t.Fatalf("gave up waiting for the log line %q", msg)
	}
}

// An attempt whose lease was lost, and which returns only after the worker
// claimed the same job again, lets go of itself alone: it took the new
// claim out of the held runs, so the heartbeat stopped renewing the new
// lease and a recovery ran the job a third time while the second attempt ran.
func TestLostAttemptEndingLeavesTheNewClaimOfItsJobHeld(t *testing.T) {
	ctx := context.Background()
	f := faulty.Wrap(newBackend(t))
	var calls atomic.Int32
	started := []chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{})}
	release := []chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{})}
	task := spec("stubborn", nuvom.TaskOptions{Retries: 3})
	reg := registry(t, def(task, func(ctx context.Context, args []byte) ([]byte, error) {
		n := calls.Add(1) - 1
		if int(n) >= len(started) {
			return nil, nil
		}
		close(started[n])
		<-release[n] // ignores its context
		return nil, nil
	}))
	id := enqueue(t, f, task)
	base := time.Now()
	var offset atomic.Int64
	now := func() time.Time { return base.Add(time.Duration(offset.Load())) }
	const lease = time.Minute // of the fake clock; the heartbeat and recoverer tick in real time
	const lostMsg, discardedMsg = "job lease lost; cancelling it", "job lease lost while running; its outcome is discarded"
	logs := newSignalHandler(lostMsg, discardedMsg)
	w := newWorker(t, f, reg, nuvom.WorkerOptions{Concurrency: 2, LeaseFor: lease, HeartbeatEvery: 5 * time.Millisecond,
		RecoverEvery: time.Millisecond, PollInterval: time.Millisecond, Now: now, Logger: slog.New(logs)})
	stop := start(t, w)
	defer func() {
		for _, ch := range release {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
		stop()
	}()

	<-started[0]
	// The worker stalls past its lease and another worker's recovery takes
	// the job back; the worker claims it again once it sees the lease gone.
	f.Fail(faulty.Claim, errLocked, faulty.Always)
	f.Fail(faulty.Extend, errLocked, faulty.Always)
	offset.Add(int64(2 * lease))
	if n, err := f.RecoverExpired(ctx, now(), 0); err != nil || n != 1 {
		t.Fatalf("recover the stalled worker's job: %d, %v", n, err)
	}
	f.Heal(faulty.Extend)
	logs.wait(t, lostMsg)
	f.Heal(faulty.Claim)
	<-started[1]
	second, err := f.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	close(release[0]) // the lost attempt returns at last
	logs.wait(t, discardedMsg)

	// A lease's length later the second attempt still runs: its lease must
	// have been renewed, not recovered.
	offset.Add(int64(2 * lease))
	n := f.Calls(faulty.RecoverExpired)
	waitUntil(t, "recovery passes after the clock moved", func() bool {
		return f.Calls(faulty.RecoverExpired) >= n+3 || calls.Load() > 2
	})
	j, err := f.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.LeaseToken != second.LeaseToken || calls.Load() != 2 {
		t.Errorf("job %s: %s with lease token %d and %d attempts started, want the second attempt's lease (%d) held and 2 attempts",
			id, j.State, j.LeaseToken, calls.Load(), second.LeaseToken)
	}
	close(release[1])
	close(release[2]) // a third attempt, had there been one
	if j := waitFinal(t, f, id); j.State != nuvom.StateSucceeded {
		t.Errorf("job %s: %s, want succeeded", id, j.State)
	}
}
