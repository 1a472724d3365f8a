package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/nuvom/nuvom/runtime/bench"
	"github.com/nuvom/nuvom/runtime/config"
)

func (a *app) cmdBench(args []string) int {
	fs := a.flags("bench", "",
		"Measures a backend with the real worker engine, in a fresh temporary store (your queue is\n"+
			"never touched): enqueue rate one job per call and in batches, burn-down of --jobs no-op\n"+
			"jobs to all succeeded (results and attempt history stored), and pickup latency on an\n"+
			"idle queue (p50/p95/p99).",
		"nuvom bench --jobs 100000 --backend sqlite --sync FULL")
	jobs := fs.Int("jobs", 100000, "no-op jobs to pre-insert and burn down")
	backend := fs.String("backend", "sqlite", "sqlite, file, memory or redis")
	redisURL := fs.String("redis-url", "redis://127.0.0.1:6379/0", "with --backend redis: the Redis to measure (keys under a fresh prefix, deleted afterwards; default NUVOM_REDIS_URL when set)")
	syncMode := fs.String("sync", "NORMAL", "SQLite synchronous mode: NORMAL or FULL")
	batch := fs.Int("batch", 1000, "enqueue batch size and worker claim batch")
	concurrency := fs.Int("concurrency", 0, "worker concurrency (default the bench's own)")
	claimAhead := fs.Bool("claim-ahead", false, "the burn-down worker claims ahead of its free runners (WorkerOptions.ClaimAhead)")
	samples := fs.Int("latency-samples", 200, "pickup-latency samples (0 skips the latency run)")
	duration := fs.Duration("duration", 0, "stop the whole run after this long (0: no limit)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *jobs < 0 || *batch <= 0 || *samples < 0 || *concurrency < 0 {
		return a.usageErr("bench: --jobs, --batch, --latency-samples and --concurrency must not be negative (--batch positive)")
	}
	dir, err := os.MkdirTemp("", "nuvom-bench-*")
	if err != nil {
		return a.fail(err)
	}
	defer os.RemoveAll(dir)
	cfg, err := config.Load(dir, func(string) string { return "" })
	if err != nil {
		return a.fail(err)
	}
	urlSource := "flag --redis-url"
	if v := a.getenv("NUVOM_REDIS_URL"); v != "" && !fs.Changed("redis-url") && strings.EqualFold(*backend, "redis") {
		*redisURL, urlSource = v, "env NUVOM_REDIS_URL"
	}
	for _, kv := range [][3]string{
		{"NUVOM_BACKEND", *backend, "flag --backend"},
		{"NUVOM_SQLITE_SYNC", *syncMode, "flag --sync"},
		{"NUVOM_DB", filepath.Join(dir, "bench.db"), "bench"},
		{"NUVOM_QUEUE_DIR", filepath.Join(dir, "queue"), "bench"},
		{"NUVOM_REDIS_URL", *redisURL, urlSource}, // checked as given, then under a fresh prefix
		{"NUVOM_REDIS_URL", config.FreshRedisPrefix(*redisURL, filepath.Base(dir)), urlSource},
	} {
		if err := cfg.Set(kv[0], kv[1], kv[2]); err != nil {
			return a.usageErr("bench: %v", err)
		}
	}
	if !config.IsBuiltinBackend(cfg.Backend.Value) {
		return a.usageErr("bench: --backend %q: bench measures the built-in backends (NUVOM_BACKEND %s)", cfg.Backend.Value,
			strings.Join(config.BuiltinBackends().Names(), ", "))
	}
	// Ctrl-C or SIGTERM ends the run through ctx, so that the deferred
	// clean-up (the temporary folder, the Redis keys) still happens.
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	context.AfterFunc(ctx, stopSignals) // a second Ctrl-C stops at once, clean-up or not
	interrupted := ctx
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	b, err := cfg.OpenBackend(ctx)
	if err != nil {
		return a.fail(err)
	}
	defer b.Close()
	if d, ok := b.(interface{ DeleteAll(context.Context) error }); ok { // the redis backend's fresh prefix
		defer d.DeleteAll(context.WithoutCancel(ctx))
	}
	latency := *samples
	if latency == 0 {
		latency = -1
	}
	bc := bench.Config{Backend: b, Jobs: *jobs, BatchSize: *batch, Concurrency: *concurrency, ClaimAhead: *claimAhead, LatencySamples: latency}
	if f, ok := a.stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) && !*asJSON {
		start := time.Now()
		bc.Progress = func(done int) {
			fmt.Fprintf(a.stderr, "\rburn-down %d/%d jobs (%.0f%%) %s   ", done, *jobs,
				100*float64(done)/float64(max(*jobs, 1)), time.Since(start).Round(100*time.Millisecond))
		}
	}
	fmt.Fprintf(a.stderr, "nuvom bench: %s backend (%s), %d jobs\n", *backend, describeSync(*backend, *syncMode), *jobs)
	rep, err := bench.Run(ctx, bc)
	if bc.Progress != nil {
		fmt.Fprintln(a.stderr)
	}
	if err != nil {
		if interrupted.Err() != nil {
			return a.fail(errors.New("bench: interrupted: deleting its temporary store"))
		}
		return a.fail(err)
	}
	if *asJSON {
		return a.printJSON(benchJSON(rep, *backend, *syncMode))
	}
	fmt.Fprintln(a.stdout, rep.String())
	return exitOK
}

func describeSync(backend, mode string) string {
	if backend != "sqlite" {
		return "no sync setting"
	}
	return "synchronous=" + mode
}

func benchJSON(r bench.Report, backend, syncMode string) map[string]any {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return map[string]any{
		"backend": backend, "sync": syncMode, "jobs": r.Jobs, "batch_size": r.BatchSize, "concurrency": r.Concurrency,
		"single_enqueue_jobs_per_s": r.SingleEnqueueRate(), "batch_enqueue_jobs_per_s": r.BatchEnqueueRate(),
		"burn_down_jobs_per_s": r.BurnDownRate(), "pickup_samples": r.PickupSamples,
		"burn_down_cpu_us_per_job": float64(r.BurnDownCPUPerJob()) / float64(time.Microsecond), "pickup_p50_ms": ms(r.PickupP50),
		"pickup_p95_ms": ms(r.PickupP95), "pickup_p99_ms": ms(r.PickupP99),
		"pickup_max_ms": ms(r.PickupMax),
	}
}
