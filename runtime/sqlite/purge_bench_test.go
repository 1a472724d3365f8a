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
	n := 20_000
	if v := os.Getenv("NUVOM_BENCH_PURGE_JOBS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("NUVOM_BENCH_PURGE_JOBS=%q: want a whole number of at least 1000", v)
		}
	}
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		be, err := Open(filepath.Join(b.TempDir(), "purge.db"))
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		for k := 0; k < n; k += 1000 {
			if _, err := be.Enqueue(ctx, benchJobs(min(1000, n-k), now)); err != nil {
				b.Fatal(err)
			}
		}
		// Finished as a store filled over time holds them: one UPDATE, the
		// counters rebuilt and the WAL checkpointed.
		if _, err := be.write.Exec(`UPDATE jobs SET state = 'succeeded', finished_at = ?, result = x'c0'`, now.UnixNano()); err != nil {
			b.Fatal(err)
		}
		if err := be.Recount(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := be.write.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
		stop, worst := make(chan struct{}), make(chan time.Duration)
		go func() {
			var w time.Duration
			for {
				select {
				case <-stop:
					worst <- w
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
		close(stop)
		b.ReportMetric(float64(scan.Milliseconds()), "find-nothing-ms")
		b.ReportMetric(float64(del.Milliseconds()), "delete-all-ms")
		b.ReportMetric(float64((<-worst).Microseconds())/1000, "worst-write-wait-ms")
		be.Close()
	}
}
