package bench

import (
	"context"
	"flag"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/memory"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

var benchJobs = flag.Int("jobs", 100_000, "jobs per burn-down benchmark")

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
	var burn, single, batch float64
	for i := 0; i < b.N; i++ {
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		burn += rep.BurnDownRate()
		single += rep.SingleEnqueueRate()
		batch += rep.BatchEnqueueRate()
		b.Logf("\n%s", rep)
	}
	b.ReportMetric(burn/float64(b.N), "burn-jobs/s")
	b.ReportMetric(single/float64(b.N), "enqueue1-jobs/s")
	b.ReportMetric(batch/float64(b.N), "enqueueN-jobs/s")
}

// BenchmarkBurnDownMemory is the ceiling of the engine itself.
func BenchmarkBurnDownMemory(b *testing.B) {
	be := memory.New()
	defer be.Close()
	reportBurnDown(b, Config{Backend: be, Jobs: *benchJobs, LatencySamples: -1})
}

// BenchmarkBurnDownSQLite burns down -jobs no-op jobs on a fresh database, per synchronous mode.
func BenchmarkBurnDownSQLite(b *testing.B) {
	for _, mode := range []string{"NORMAL", "FULL"} {
		b.Run(mode, func(b *testing.B) {
			be, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"), sqlite.WithSynchronous(mode))
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			reportBurnDown(b, Config{Backend: be, Jobs: *benchJobs, LatencySamples: -1})
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
