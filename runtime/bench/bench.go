// Package bench measures a Nuvom backend and the worker engine on it, in the
// manner of River's `river bench`: enqueue rate (one job per call and in
// batches), burn-down rate of pre-inserted no-op jobs to all succeeded (results
// and attempt history stored), and pickup latency on an idle queue. The CLI's
// `nuvom bench` calls Run.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nuvom/nuvom"
)

// Config says what to measure.
type Config struct {
	// Backend is measured; Run does not close it.
	Backend nuvom.Backend
	// Jobs is the number of no-op jobs pre-inserted and burned down; 0 skips the burn-down.
	Jobs int
	// BatchSize is the enqueue batch and the worker's claim batch; default 1000.
	BatchSize int
	// Concurrency is the worker's concurrency; default 256 (no-op jobs are cheap).
	Concurrency int
	// ClaimAhead is the burn-down worker's WorkerOptions.ClaimAhead.
	ClaimAhead bool
	// LatencySamples is the number of pickup-latency samples; 0 means 200, negative skips it.
	LatencySamples int
	// Progress, when set, is called with the number of jobs burned down so far,
	// about five times a second and once at the end.
	Progress func(done int)
	// Logger receives the worker's logs; default none.
	Logger *slog.Logger
	// Middleware and OnStored are passed to the burn-down worker (to measure
	// the overhead of plugins).
	Middleware []nuvom.Middleware
	OnStored   func(nuvom.JobInfo, nuvom.Outcome)
}

// Report holds the figures of one Run.
type Report struct {
	Jobs int
	// SingleEnqueued jobs were enqueued one per call (one transaction each), in SingleEnqueue.
	SingleEnqueued int
	SingleEnqueue  time.Duration
	// BatchEnqueued jobs were enqueued BatchSize per call, in BatchEnqueue.
	BatchEnqueued int
	BatchEnqueue  time.Duration
	// BurnDown is the time from starting a burst worker to all Jobs succeeded.
	BurnDown time.Duration
	// BurnDownCPU is the CPU time (user + system) the whole process used
	// during the burn-down, 0 where it cannot be read. On a shared machine it
	// moves far less with other load than BurnDown does.
	BurnDownCPU time.Duration
	// Pickup latency (enqueue call to task start) on an idle queue.
	PickupSamples          int
	PickupP50, PickupP95   time.Duration
	PickupP99, PickupMax   time.Duration
	Concurrency, BatchSize int
}

// BurnDownCPUPerJob is the process's CPU time per job burned down, 0 when unknown.
func (r Report) BurnDownCPUPerJob() time.Duration {
	if r.Jobs == 0 {
		return 0
	}
	return r.BurnDownCPU / time.Duration(r.Jobs)
}

// SingleEnqueueRate is jobs/s enqueued one per call.
func (r Report) SingleEnqueueRate() float64 { return rate(r.SingleEnqueued, r.SingleEnqueue) }

// BatchEnqueueRate is jobs/s enqueued in batches.
func (r Report) BatchEnqueueRate() float64 { return rate(r.BatchEnqueued, r.BatchEnqueue) }

// BurnDownRate is jobs/s burned down.
func (r Report) BurnDownRate() float64 { return rate(r.Jobs, r.BurnDown) }

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// String formats the report for people, one figure per line.
func (r Report) String() string {
	var b strings.Builder
	if r.Jobs > 0 {
		fmt.Fprintf(&b, "jobs:            %d (concurrency %d, batch %d)\n", r.Jobs, r.Concurrency, r.BatchSize)
		fmt.Fprintf(&b, "enqueue single:  %.0f jobs/s (%d jobs in %s)\n", r.SingleEnqueueRate(), r.SingleEnqueued, r.SingleEnqueue.Round(time.Millisecond))
		fmt.Fprintf(&b, "enqueue batch:   %.0f jobs/s (%d jobs in %s)\n", r.BatchEnqueueRate(), r.BatchEnqueued, r.BatchEnqueue.Round(time.Millisecond))
		fmt.Fprintf(&b, "burn-down:       %.0f jobs/s (%d jobs in %s)\n", r.BurnDownRate(), r.Jobs, r.BurnDown.Round(time.Millisecond))
		if r.BurnDownCPU > 0 {
			fmt.Fprintf(&b, "burn-down CPU:   %s per job (process CPU, all cores)\n", r.BurnDownCPUPerJob().Round(10*time.Nanosecond))
		}
	}
	if r.PickupSamples > 0 {
		fmt.Fprintf(&b, "pickup latency:  p50 %s  p95 %s  p99 %s  max %s (%d samples)\n",
			r.PickupP50.Round(time.Microsecond), r.PickupP95.Round(time.Microsecond),
			r.PickupP99.Round(time.Microsecond), r.PickupMax.Round(time.Microsecond), r.PickupSamples)
	}
	return b.String()
}

// Task names used by the benchmark; their jobs go to queues unique to one Run.
const (
	NoopTask = "nuvom.bench.noop"
	PingTask = "nuvom.bench.ping"
)

// Run measures cfg.Backend. Its jobs use queues unique to this run, so an
// existing queue is not disturbed (nor measured).
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Backend == nil {
		return Report{}, errors.New("bench: no backend")
	}
	if cfg.Jobs < 0 {
		return Report{}, fmt.Errorf("bench: jobs %d is negative", cfg.Jobs)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 256
	}
	if cfg.LatencySamples == 0 {
		cfg.LatencySamples = 200
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rep := Report{Jobs: cfg.Jobs, Concurrency: cfg.Concurrency, BatchSize: cfg.BatchSize}
	suffix := randomSuffix()
	if cfg.Jobs > 0 {
		if err := burnDown(ctx, cfg, "bench-"+suffix, &rep); err != nil {
			return rep, err
		}
	}
	if cfg.LatencySamples > 0 {
		if err := pickup(ctx, cfg, "bench-ping-"+suffix, &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func burnDown(ctx context.Context, cfg Config, queue string, rep *Report) error {
	spec := nuvom.TaskSpec{Name: NoopTask, Options: nuvom.TaskOptions{Queue: queue, StoreResult: true}}
	client := nuvom.NewClient(cfg.Backend)
	args := []byte{0x90} // msgpack empty array: no arguments

	single := min(cfg.Jobs/10, 1000)
	start := time.Now()
	for i := 0; i < single; i++ {
		if _, err := client.Enqueue(ctx, spec, args); err != nil {
			return fmt.Errorf("bench: enqueue job %d: %w", i, err)
		}
	}
	rep.SingleEnqueued, rep.SingleEnqueue = single, time.Since(start)

	reqs := make([]nuvom.Request, 0, cfg.BatchSize)
	start = time.Now()
	for left := cfg.Jobs - single; left > 0; {
		n := min(left, cfg.BatchSize)
		reqs = reqs[:0]
		for range n {
			reqs = append(reqs, nuvom.Request{Spec: spec, Args: args})
		}
		if _, err := client.EnqueueBatch(ctx, reqs); err != nil {
			return fmt.Errorf("bench: enqueue a batch of %d: %w", n, err)
		}
		left -= n
	}
	rep.BatchEnqueued, rep.BatchEnqueue = cfg.Jobs-single, time.Since(start)

	reg, err := nuvom.NewRegistry(nuvom.TaskDef{TaskSpec: spec,
		Invoke: func(context.Context, []byte) ([]byte, error) { return []byte{0xc0}, nil }}) // msgpack nil: a result is stored
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var done atomic.Int64
	w, err := nuvom.NewWorker(cfg.Backend, reg, nuvom.WorkerOptions{
		Concurrency: cfg.Concurrency, BatchSize: cfg.BatchSize, ClaimAhead: cfg.ClaimAhead, Queues: []string{queue}, Burst: true,
		PollInterval: 10 * time.Millisecond, Logger: cfg.Logger,
		OnOutcome:  func(nuvom.JobInfo, nuvom.Outcome) { done.Add(1) },
		Middleware: cfg.Middleware, OnStored: cfg.OnStored,
	})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if cfg.Progress == nil {
			return
		}
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				cfg.Progress(int(done.Load()))
				return
			case <-t.C:
				cfg.Progress(int(done.Load()))
			}
		}
	}()
	start = time.Now()
	cpu0 := ProcessCPU()
	err = w.Run(ctx)
	rep.BurnDown = time.Since(start)
	if cpu0 > 0 {
		rep.BurnDownCPU = ProcessCPU() - cpu0
	}
	close(stopProgress)
	<-progressDone
	if err != nil {
		return fmt.Errorf("bench: burn-down: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bench: burn-down: %w", err)
	}
	stats, err := cfg.Backend.Stats(ctx, time.Now())
	if err != nil {
		return fmt.Errorf("bench: count jobs: %w", err)
	}
	succeeded := 0
	for _, s := range stats {
		if s.Queue == queue && s.State == nuvom.StateSucceeded {
			succeeded = s.Count
		}
	}
	if succeeded != cfg.Jobs {
		return fmt.Errorf("bench: burn-down ended with %d of %d jobs succeeded", succeeded, cfg.Jobs)
	}
	return nil
}

func pickup(ctx context.Context, cfg Config, queue string, rep *Report) error {
	spec := nuvom.TaskSpec{Name: PingTask, Options: nuvom.TaskOptions{Queue: queue}}
	started := make(chan time.Time, 1)
	reg, err := nuvom.NewRegistry(nuvom.TaskDef{TaskSpec: spec,
		Invoke: func(context.Context, []byte) ([]byte, error) {
			started <- time.Now()
			return nil, nil
		}})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	w, err := nuvom.NewWorker(cfg.Backend, reg, nuvom.WorkerOptions{
		Concurrency: 1, Queues: []string{queue}, Logger: cfg.Logger, PollInterval: time.Second,
	})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(wctx) }()

	client := nuvom.NewClient(cfg.Backend)
	args := []byte{0x90}
	samples := make([]time.Duration, 0, cfg.LatencySamples)
	for i := 0; i < cfg.LatencySamples; i++ {
		t0 := time.Now()
		res, err := client.Enqueue(ctx, spec, args)
		if err != nil {
			stop()
			<-runErr
			return fmt.Errorf("bench: enqueue ping %d: %w", i, err)
		}
		select {
		case t := <-started:
			samples = append(samples, t.Sub(t0))
		case <-time.After(30 * time.Second):
			stop()
			<-runErr
			return fmt.Errorf("bench: ping %d was not picked up within 30s", i)
		case <-ctx.Done():
			stop()
			<-runErr
			return fmt.Errorf("bench: pickup latency: %w", ctx.Err())
		}
		// Let the job finish so that every sample starts on an idle queue.
		if _, err := client.Wait(ctx, res.ID); err != nil {
			stop()
			<-runErr
			return fmt.Errorf("bench: wait for ping %d: %w", i, err)
		}
	}
	stop()
	if err := <-runErr; err != nil {
		return fmt.Errorf("bench: pickup worker: %w", err)
	}
	slices.Sort(samples)
	pct := func(p int) time.Duration { return samples[min(len(samples)-1, len(samples)*p/100)] }
	rep.PickupSamples = len(samples)
	rep.PickupP50, rep.PickupP95, rep.PickupP99, rep.PickupMax = pct(50), pct(95), pct(99), samples[len(samples)-1]
	return nil
}
