package nuvom_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/memory"
)

// slowClaim makes every claim take 50 ms, as a store far across the network
// might, so that the claim-ahead estimate of a worker running no-op jobs
// grows (no timing is asserted: tests wait on what the store holds).
type slowClaim struct {
	*memory.Backend
	beats chan int
}

func (s slowClaim) Heartbeat(ctx context.Context, w backend.WorkerInfo) error {
	select {
	case s.beats <- w.Running:
	default:
	}
	return s.Backend.Heartbeat(ctx, w)
}

func (s slowClaim) Claim(ctx context.Context, req backend.ClaimRequest) ([]*nuvom.Job, error) {
	time.Sleep(50 * time.Millisecond)
	return s.Backend.Claim(ctx, req)
}

// fakeClock is a clock the test moves.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().Add(time.Hour).UnixNano())
	return c
}

// demo is a worker, its store and what its tasks recorded.
type demo struct {
	t       *testing.T
	mb      *memory.Backend
	clk     *fakeClock
	cl      *nuvom.Client
	fast    nuvom.TaskSpec
	block   nuvom.TaskSpec
	lim     nuvom.TaskSpec
	hi      nuvom.TaskSpec
	release chan struct{}
	started chan struct{}
	mu      sync.Mutex
	order   []string
	limAt   []time.Time
	ran     map[string]bool
	logs    *lockedBuf
	beats   chan int
}

// lockedBuf is a bytes.Buffer shared by the logger and the test.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// newDemo makes a worker with one runner and ClaimAhead over a memory
// backend whose claims are slow; lim is rate-limited (3/s) when limited.
func newDemo(t *testing.T, queues []string, limited bool) (*demo, *nuvom.Worker) {
	d := &demo{t: t, mb: newBackend(t), clk: newFakeClock(), release: make(chan struct{}), started: make(chan struct{}, 1), ran: map[string]bool{}, logs: &lockedBuf{}, beats: make(chan int, 1)}
	d.cl = nuvom.NewClient(d.mb, nuvom.WithClock(d.clk.now))
	d.fast = spec("fast", nuvom.TaskOptions{Queue: "lo"})
	d.block = spec("block", nuvom.TaskOptions{Queue: "lo"})
	d.lim = spec("lim", nuvom.TaskOptions{Queue: "lo"})
	if limited {
		d.lim = spec("lim", nuvom.TaskOptions{Queue: "lo", Rate: nuvom.Rate{N: 3, Per: time.Second}})
	}
	d.hi = spec("hi", nuvom.TaskOptions{Queue: "hi"})
	rec := func(name string) nuvom.InvokeFunc {
		return func(ctx context.Context, _ []byte) ([]byte, error) {
			d.mu.Lock()
			d.order = append(d.order, name)
			if info, ok := nuvom.JobInfoFromContext(ctx); ok {
				d.ran[info.ID] = true
			}
			if name == "lim" {
				d.limAt = append(d.limAt, d.clk.now())
			}
			d.mu.Unlock()
			return nil, nil
		}
	}
	reg := registry(t,
		def(d.fast, rec("fast")), def(d.lim, rec("lim")), def(d.hi, rec("hi")),
		def(d.block, func(ctx context.Context, _ []byte) ([]byte, error) {
			d.started <- struct{}{}
			<-d.release
			return nil, nil
		}))
	w, err := nuvom.NewWorker(slowClaim{d.mb, d.beats}, reg, nuvom.WorkerOptions{ID: "A", Concurrency: 1, BatchSize: 10, Queues: queues, ClaimAhead: true,
		PollInterval: 5 * time.Millisecond, HeartbeatEvery: 20 * time.Millisecond, LeaseFor: time.Minute,
		Now: d.clk.now, Logger: slog.New(slog.NewTextHandler(d.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return d, w
}

func (d *demo) enq(s nuvom.TaskSpec) string {
	res, err := d.cl.Enqueue(context.Background(), s, []byte{0x90})
	if err != nil {
		d.t.Fatal(err)
	}
	return res.ID
}

// warm runs short jobs, so that the claim-ahead estimate grows.
func (d *demo) warm() {
	var ids []string
	for range 40 {
		ids = append(ids, d.enq(d.fast))
	}
	for _, id := range ids {
		waitFinal(d.t, d.mb, id)
	}
}

func (d *demo) heldBy(owner string) int {
	js, err := d.mb.List(context.Background(), nuvom.ListFilter{States: []nuvom.State{nuvom.StateRunning}, Limit: 1000})
	if err != nil {
		d.t.Fatal(err)
	}
	n := 0
	for _, j := range js {
		if j.LeaseOwner == owner {
			n++
		}
	}
	return n
}

func (d *demo) waitHeld(n int) {
	deadline := time.Now().Add(60 * time.Second) // hang guard only
	for d.heldBy("A") != n {
		if time.Now().After(deadline) {
			d.t.Fatalf("worker A holds %d jobs, want %d", d.heldBy("A"), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClaimAheadSkipsACancelledWaitingJob: a job claimed ahead, cancelled
// while it waits for the busy runner (the heartbeat notices), is not run.
func TestClaimAheadSkipsACancelledWaitingJob(t *testing.T) {
	d, w := newDemo(t, nil, false)
	start(t, w)
	d.warm()
	d.enq(d.block)
	<-d.started
	x := d.enq(d.fast)
	d.waitHeld(2) // x is claimed ahead of the busy runner
	if err := d.cl.Cancel(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second) // hang guard only
	for !strings.Contains(d.logs.String(), "job cancelled while running") {
		if time.Now().After(deadline) {
			t.Fatal("the heartbeat never noticed the cancel")
		}
		time.Sleep(time.Millisecond)
	}
	close(d.release)
	y := d.enq(d.fast)
	waitFinal(t, d.mb, y)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ran[x] {
		t.Fatalf("job %s was cancelled (and the worker knew it) before it started, yet its task ran", x)
	}
}

// TestClaimAheadOffWithStrictQueues: with queues hi,lo a job of hi enqueued
// while the only runner is busy runs before the lo jobs enqueued before it
// (nothing of lo was claimed ahead).
func TestClaimAheadOffWithStrictQueues(t *testing.T) {
	d, w := newDemo(t, []string{"hi", "lo"}, false)
	start(t, w)
	d.warm()
	d.enq(d.block)
	<-d.started
	for range 5 {
		d.enq(d.fast)
	}
	h := d.enq(d.hi)
	if n := d.heldBy("A"); n != 1 {
		t.Fatalf("worker A holds %d jobs with its only runner busy, want 1", n)
	}
	d.mu.Lock()
	d.order = nil
	d.mu.Unlock()
	close(d.release)
	waitFinal(t, d.mb, h)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.order) == 0 || d.order[0] != "hi" {
		t.Fatalf("strict queues hi,lo: run order after the busy runner freed: %v", d.order)
	}
}

// TestRegistryCountsRunningAttempts: during the grace period of a shutdown
// the worker registry reports the one attempt still running (not the jobs
// claimed ahead, handed back, nor 0).
func TestRegistryCountsRunningAttempts(t *testing.T) {
	d, w := newDemo(t, nil, false)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	d.warm()
	d.enq(d.block)
	<-d.started
	for range 5 {
		d.enq(d.fast)
	}
	deadline := time.Now().Add(60 * time.Second) // hang guard only
	for d.heldBy("A") < 2 {                      // at least one claimed ahead
		if time.Now().After(deadline) {
			t.Fatal("nothing was claimed ahead of the busy runner")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	for !strings.Contains(d.logs.String(), "waiting for running jobs") {
		if time.Now().After(deadline) {
			t.Fatal("the shutdown never waited for the running job")
		}
		time.Sleep(time.Millisecond)
	}
	<-d.beats // a beat that may predate the hand-back
	running := <-d.beats
	close(d.release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if running != 1 {
		t.Fatalf("registry reported %d running during the grace period while one job ran", running)
	}
}
