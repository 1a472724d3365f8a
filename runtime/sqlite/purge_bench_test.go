package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// BenchmarkPurgeEnded stores finished jobs (NUVOM_BENCH_PURGE_JOBS, default
// 20,000; the figures in the README are of 1,000,000), then times a
// PurgeEnded that finds nothing to delete and one that deletes them all,
// while a writer enqueues one job at a time alongside: its longest wait
// is what a worker's write waits for a purge.
//
//	NUVOM_BENCH_PURGE_JOBS=1000000 go test ./runtime/sqlite -run '^$' -bench PurgeEnded -benchtime 1x
func BenchmarkPurgeEnded(b *testing.B) {
	n := purgeBenchJobs(b)
	ctx := context.Background()
	for range b.N {
		be, now, worst := openFinished(b, n)
		start := time.Now()
		got, err := be.PurgeEnded(ctx, now.Add(-time.Hour), backend.PurgeFilter{})
		if err != nil || got != 0 {
			b.Fatalf("purge of nothing: %d, %v", got, err)
		}
		scan := time.Since(start)
		start = time.Now()
		got, err = be.PurgeEnded(ctx, now.Add(time.Hour), backend.PurgeFilter{States: []backend.State{backend.StateSucceeded}})
		if err != nil || got != n {
			b.Fatalf("purge of all: %d, %v; want %d", got, err, n)
		}
		del := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(scan.Milliseconds()), "find-nothing-ms")
		b.ReportMetric(float64(del.Milliseconds()), "delete-all-ms")
		b.ReportMetric(float64(worst().Microseconds())/1000, "worst-write-wait-ms")
		be.Close()
	}
}

// BenchmarkTrimEnded stores finished jobs as BenchmarkPurgeEnded does, then
// times a TrimEnded that keeps them all (the counters answer: it reads no
// job) and one that keeps the newest tenth, with the same writer alongside.
//
//	NUVOM_BENCH_PURGE_JOBS=1000000 go test ./runtime/sqlite -run '^$' -bench TrimEnded -benchtime 1x
func BenchmarkTrimEnded(b *testing.B) {
	n := purgeBenchJobs(b)
	ctx := context.Background()
	for range b.N {
		be, _, worst := openFinished(b, n)
		start := time.Now()
		got, err := be.TrimEnded(ctx, n, backend.PurgeFilter{})
		if err != nil || got != 0 {
			b.Fatalf("trim of nothing: %d, %v", got, err)
		}
		none := time.Since(start)
		start = time.Now()
		got, err = be.TrimEnded(ctx, n/10, backend.PurgeFilter{})
		if err != nil || got != n-n/10 {
			b.Fatalf("trim to a tenth: %d, %v; want %d", got, err, n-n/10)
		}
		del := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(none.Microseconds()), "keep-all-us")
		b.ReportMetric(float64(del.Milliseconds()), "keep-tenth-ms")
		b.ReportMetric(float64(worst().Microseconds())/1000, "worst-write-wait-ms")
		be.Close()
	}
}

// purgeBenchJobs returns NUVOM_BENCH_PURGE_JOBS, 20,000 when unset.
func purgeBenchJobs(b *testing.B) int {
	n := 20_000
	if v := os.Getenv("NUVOM_BENCH_PURGE_JOBS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("NUVOM_BENCH_PURGE_JOBS=%q: want a whole number of at least 1000", v)
		}
	}
	return n
}

// openFinished opens a store holding n succeeded jobs of one queue, finished
// a microsecond apart from now on, starts a writer enqueueing one job at a
// time, and starts b's timer. worst stops the timer and the writer and
// returns the writer's longest wait.
func openFinished(b *testing.B, n int) (be *Backend, now time.Time, worst func() time.Duration) {
	b.StopTimer()
	ctx := context.Background()
	be, err := Open(filepath.Join(b.TempDir(), "purge.db"))
	if err != nil {
		b.Fatal(err)
	}
	now = time.Now()
	for k := 0; k < n; k += 1000 {
		if _, err := be.Enqueue(ctx, benchJobs(min(1000, n-k), now)); err != nil {
			b.Fatal(err)
		}
	}
	// Finished as a store filled over time holds them: one UPDATE, the
	// counters rebuilt and the WAL checkpointed.
	if _, err := be.write.Exec(`UPDATE jobs SET state = 'succeeded', finished_at = ? + rowid * 1000, result = x'c0'`, now.UnixNano()); err != nil {
		b.Fatal(err)
	}
	if err := be.Recount(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := be.write.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	stop, longest := make(chan struct{}), make(chan time.Duration)
	go func() {
		var w time.Duration
		for {
			select {
			case <-stop:
				longest <- w
				return
			default:
			}
			start := time.Now()
			if _, err := be.Enqueue(ctx, benchJobs(1, now)); err != nil {
				b.Error(err)
			}
			w = max(w, time.Since(start))
			time.Sleep(time.Millisecond)
		}
	}()
	b.StartTimer()
	return be, now, func() time.Duration {
		b.StopTimer()
		close(stop)
		return <-longest
	}
}
