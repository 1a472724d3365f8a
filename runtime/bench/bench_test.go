package bench

import (
	"context"
	"database/sql"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/memory"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// benchJobs is the burn-down size of the benchmarks: small by default, so
// that CI runs them cheaply; -jobs or NUVOM_BENCH_JOBS asks for more.
var benchJobs = flag.Int("jobs", envInt("NUVOM_BENCH_JOBS", 20_000), "jobs per burn-down benchmark (default $NUVOM_BENCH_JOBS or 20000)")

// engineConcurrency is the engine's worker concurrency in BenchmarkVsFloor
// (0: Run's default, 256). The engine claims at most as many jobs as it has
// free runners, so its claims stay under it; the floor claims up to 500 jobs
// whatever its 16 handlers hold. -concurrency 500 compares claims of the same size.
var engineConcurrency = flag.Int("concurrency", 0, "the engine's worker concurrency in BenchmarkVsFloor (0: Run's default)")

// claimAhead sets the engine's WorkerOptions.ClaimAhead in BenchmarkVsFloor
// and the burn-down benchmarks.
var claimAhead = flag.Bool("claim-ahead", false, "the engine's worker claims ahead of free runners (WorkerOptions.ClaimAhead)")

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestRunMemory(t *testing.T) {
	b := memory.New()
	defer b.Close()
	var progress atomic.Int64
	rep, err := Run(context.Background(), Config{Backend: b, Jobs: 3000, BatchSize: 100, Concurrency: 8, LatencySamples: 20,
		Progress: func(done int) { progress.Store(int64(done)) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.SingleEnqueued != 300 || rep.BatchEnqueued != 2700 || rep.BurnDownRate() <= 0 || rep.PickupSamples != 20 || rep.PickupP50 <= 0 {
		t.Fatalf("report %+v", rep)
	}
	if progress.Load() != 3000 {
		t.Fatalf("last progress %d, want 3000", progress.Load())
	}
	for _, want := range []string{"enqueue single:", "enqueue batch:", "burn-down:", "pickup latency:"} {
		if !strings.Contains(rep.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
}

func TestRunSQLite(t *testing.T) {
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "bench.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rep, err := Run(context.Background(), Config{Backend: b, Jobs: 5000, LatencySamples: 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)
}

func TestRunRefusesBadConfig(t *testing.T) {
	if _, err := Run(context.Background(), Config{}); err == nil {
		t.Error("no backend accepted")
	}
	b := memory.New()
	defer b.Close()
	if _, err := Run(context.Background(), Config{Backend: b, Jobs: -1}); err == nil {
		t.Error("negative jobs accepted")
	}
}

func reportBurnDown(b *testing.B, cfg Config) {
	b.Helper()
	var burn, single, batch, cpu float64
	for i := 0; i < b.N; i++ {
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		burn += rep.BurnDownRate()
		cpu += float64(rep.BurnDownCPUPerJob()) / float64(time.Microsecond)
		single += rep.SingleEnqueueRate()
		batch += rep.BatchEnqueueRate()
		b.Logf("\n%s", rep)
	}
	b.ReportMetric(burn/float64(b.N), "burn-jobs/s")
	b.ReportMetric(cpu/float64(b.N), "burn-cpu-µs/job")
	b.ReportMetric(single/float64(b.N), "enqueue1-jobs/s")
	b.ReportMetric(batch/float64(b.N), "enqueueN-jobs/s")
}

// BenchmarkBurnDownMemory is the ceiling of the engine itself.
func BenchmarkBurnDownMemory(b *testing.B) {
	be := memory.New()
	defer be.Close()
	reportBurnDown(b, Config{Backend: be, Jobs: *benchJobs, LatencySamples: -1})
}

// BenchmarkBurnDownSQLite burns down -jobs no-op jobs on a fresh database,
// per synchronous mode, and reports the jobs per Claim and per Complete call
// the engine reached (each is one transaction).
func BenchmarkBurnDownSQLite(b *testing.B) {
	for _, mode := range []string{"NORMAL", "FULL"} {
		b.Run(mode, func(b *testing.B) {
			be, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"), sqlite.WithSynchronous(mode))
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			cb := &countingBackend{Backend: be}
			reportBurnDown(b, Config{Backend: cb, Jobs: *benchJobs, LatencySamples: -1, ClaimAhead: *claimAhead})
			cb.report(b)
		})
	}
}

// BenchmarkPickupLatency measures enqueue-to-start on an idle queue in the same process.
func BenchmarkPickupLatency(b *testing.B) {
	run := func(b *testing.B, cfg Config) {
		for i := 0; i < b.N; i++ {
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(rep.PickupP50)/float64(time.Microsecond), "p50-µs")
			b.ReportMetric(float64(rep.PickupP95)/float64(time.Microsecond), "p95-µs")
			b.ReportMetric(float64(rep.PickupP99)/float64(time.Microsecond), "p99-µs")
		}
	}
	b.Run("memory", func(b *testing.B) {
		be := memory.New()
		defer be.Close()
		run(b, Config{Backend: be, LatencySamples: 200})
	})
	b.Run("sqlite", func(b *testing.B) {
		be, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer be.Close()
		run(b, Config{Backend: be, LatencySamples: 200})
	})
}

// BenchmarkVsFloor runs the floor (RunFloor: a bare SQLite queue loop on the
// same driver and settings) and the engine on the SQLite backend alternately,
// each iteration one of each on fresh databases (A B A B ...), and reports the
// medians of both and the engine's ratio to the floor: burn-down, single and
// batched enqueue (ratios of rates; higher is better), the burn-down's CPU
// time per job (process CPU, all cores; floor over engine, so higher is better
// too: it moves far less than rates with other load on a shared machine) and
// pickup p50 (floor latency over engine latency).
//
//	go test ./runtime/bench -run '^$' -bench VsFloor -benchtime 3x -jobs 100000
func BenchmarkVsFloor(b *testing.B) {
	for _, mode := range []string{"NORMAL", "FULL"} {
		b.Run(mode, func(b *testing.B) {
			var floor, engine []Report
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				fr, err := RunFloor(context.Background(), FloorConfig{Path: filepath.Join(dir, "floor.db"),
					Synchronous: mode, Jobs: *benchJobs, LatencySamples: 100})
				if err != nil {
					b.Fatal(err)
				}
				floor = append(floor, fr)
				be, err := sqlite.Open(filepath.Join(dir, "engine.db"), sqlite.WithSynchronous(mode))
				if err != nil {
					b.Fatal(err)
				}
				er, err := Run(context.Background(), Config{Backend: be, Jobs: *benchJobs, LatencySamples: 100, Concurrency: *engineConcurrency, ClaimAhead: *claimAhead})
				be.Close()
				if err != nil {
					b.Fatal(err)
				}
				engine = append(engine, er)
				b.Logf("round %d: floor / engine\n%s\n%s", i+1, fr, er)
			}
			reportVsFloor(b, floor, engine)
		})
	}
}

// reportVsFloor reports the medians of floor and engine runs and their ratios.
func reportVsFloor(b *testing.B, floor, engine []Report) {
	b.Helper()
	for _, m := range []struct {
		name    string
		of      func(Report) float64
		inverse bool // a cost (latency, CPU per job): the ratio is floor over engine
	}{
		{"burn", Report.BurnDownRate, false},
		{"burn-cpu", func(r Report) float64 { return float64(r.BurnDownCPUPerJob()) / float64(time.Microsecond) }, true},
		{"enqueueN", Report.BatchEnqueueRate, false},
		{"enqueue1", Report.SingleEnqueueRate, false},
		{"pickup-p50", func(r Report) float64 { return float64(r.PickupP50) / float64(time.Millisecond) }, true},
	} {
		f, e := median(floor, m.of), median(engine, m.of)
		unit := "jobs/s"
		switch {
		case m.name == "burn-cpu":
			unit = "µs/job"
		case m.inverse:
			unit = "ms"
		}
		b.ReportMetric(f, "floor-"+m.name+"-"+unit)
		b.ReportMetric(e, m.name+"-"+unit)
		ratio := 0.0
		switch {
		case m.inverse && e > 0:
			ratio = f / e
		case !m.inverse && f > 0:
			ratio = e / f
		}
		b.ReportMetric(ratio, m.name+"-ratio")
	}
}

func median(rs []Report, of func(Report) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = of(r)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 0 {
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}

// BenchmarkBurnDownStored measures whether a database full of finished jobs
// (results and attempt history kept) slows the burn-down: each iteration
// burns down -jobs jobs with the engine on an empty database and on one
// holding NUVOM_BENCH_STORED (default 50,000) succeeded jobs, alternately, and
// reports both medians and their ratio (of rates, and of CPU time per job:
// empty over stored), the peak RSS of the process and the database's size
// per million stored jobs. The stored jobs are enqueued in
// batches and then marked succeeded, with a result and an attempt record, by
// one UPDATE on the database file, and the WAL is checkpointed.
//
//	NUVOM_BENCH_STORED=1000000 go test ./runtime/bench -run '^$' -bench BurnDownStored -benchtime 3x -jobs 100000
func BenchmarkBurnDownStored(b *testing.B) {
	stored := envInt("NUVOM_BENCH_STORED", 50_000)
	ctx := context.Background()
	var empty, full []Report
	var dbBytes int64
	for i := 0; i < b.N; i++ {
		for _, m := range []int{0, stored} {
			path := filepath.Join(b.TempDir(), "stored.db")
			be, err := sqlite.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			if m > 0 {
				if err := storeFinished(ctx, be, path, m); err != nil {
					be.Close()
					b.Fatal(err)
				}
			}
			rep, err := Run(ctx, Config{Backend: be, Jobs: *benchJobs, LatencySamples: -1})
			if err != nil {
				be.Close()
				b.Fatal(err)
			}
			be.Close()
			if m == 0 {
				empty = append(empty, rep)
				continue
			}
			full = append(full, rep)
			size := int64(0)
			for _, f := range []string{path, path + "-wal"} {
				if st, err := os.Stat(f); err == nil {
					size += st.Size()
				}
			}
			dbBytes = size
		}
	}
	e, f := median(empty, Report.BurnDownRate), median(full, Report.BurnDownRate)
	b.ReportMetric(e, "empty-burn-jobs/s")
	b.ReportMetric(f, "stored-burn-jobs/s")
	b.ReportMetric(f/e, "stored-ratio")
	// CPU per job moves far less than rates with other load on the machine.
	cpu := func(r Report) float64 { return float64(r.BurnDownCPUPerJob()) / float64(time.Microsecond) }
	if ec, fc := median(empty, cpu), median(full, cpu); ec > 0 && fc > 0 {
		b.ReportMetric(ec, "empty-burn-cpu-µs/job")
		b.ReportMetric(fc, "stored-burn-cpu-µs/job")
		b.ReportMetric(ec/fc, "stored-cpu-ratio")
	}
	total := float64(stored + *benchJobs) // the stored jobs plus this run's
	b.ReportMetric(float64(dbBytes)/(1<<20)/(total/1e6), "db-MB/Mjobs")
	if rss, err := peakRSS(); err == nil {
		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MB")
	}
}

// storeFinished adds n succeeded jobs with a result and an attempt record.
func storeFinished(ctx context.Context, be *sqlite.Backend, path string, n int) error {
	client := nuvom.NewClient(be)
	spec := nuvom.TaskSpec{Name: "nuvom.bench.stored", Options: nuvom.TaskOptions{Queue: "stored", StoreResult: true}}
	reqs := make([]nuvom.Request, 0, 1000)
	for left := n; left > 0; {
		k := min(left, 1000)
		reqs = reqs[:0]
		for range k {
			reqs = append(reqs, nuvom.Request{Spec: spec, Args: []byte{0x90}})
		}
		if _, err := client.EnqueueBatch(ctx, reqs); err != nil {
			return fmt.Errorf("store finished jobs: %w", err)
		}
		left -= k
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return fmt.Errorf("store finished jobs: %w", err)
	}
	defer db.Close()
	// An attempt record as Complete appends it: length, number 1, started and
	// finished (zigzag varints), worker "w", outcome "succeeded", no error.
	now := time.Now().UnixNano()
	rec := binary.AppendUvarint(nil, 1)
	rec = binary.AppendVarint(rec, now)
	rec = binary.AppendVarint(rec, now)
	rec = append(rec, 1, 'w', 9, 's', 'u', 'c', 'c', 'e', 'e', 'd', 'e', 'd', 0)
	attempt := append(binary.AppendUvarint(nil, uint64(len(rec))), rec...)
	if _, err := db.ExecContext(ctx, `PRAGMA busy_timeout = 10000`); err != nil {
		return fmt.Errorf("store finished jobs: %w", err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE jobs SET state = 'succeeded', attempt = 1, started_at = ?1,
			finished_at = ?1, result = x'c0', attempts = ?2 WHERE queue = 'stored' AND state = 'queued'`, now, attempt); err != nil {
		return fmt.Errorf("store finished jobs: mark succeeded: %w", err)
	}
	// The UPDATE changed states behind the backend: rebuild its counters.
	if err := be.Recount(ctx); err != nil {
		return fmt.Errorf("store finished jobs: %w", err)
	}
	// A store that filled up over time has had its WAL checkpointed as it
	// went; the one UPDATE above left all of it in the WAL, which the
	// burn-down's first checkpoint would otherwise copy, and every read look up.
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("store finished jobs: checkpoint: %w", err)
	}
	return nil
}

// countingBackend counts the calls and jobs of Claim and Complete, to report
// the batch sizes the engine reaches (each call is a transaction).
type countingBackend struct {
	nuvom.Backend
	claims, claimed, completes, completed atomic.Int64
}

func (c *countingBackend) Claim(ctx context.Context, req backend.ClaimRequest) ([]*backend.Job, error) {
	jobs, err := c.Backend.Claim(ctx, req)
	c.claims.Add(1)
	c.claimed.Add(int64(len(jobs)))
	return jobs, err
}

func (c *countingBackend) Complete(ctx context.Context, outs []backend.Outcome) ([]error, error) {
	c.completes.Add(1)
	c.completed.Add(int64(len(outs)))
	return c.Backend.Complete(ctx, outs)
}

func (c *countingBackend) report(b *testing.B) {
	if n := c.claims.Load(); n > 0 {
		b.ReportMetric(float64(c.claimed.Load())/float64(n), "jobs/claim")
	}
	if n := c.completes.Load(); n > 0 {
		b.ReportMetric(float64(c.completed.Load())/float64(n), "jobs/complete")
	}
}
