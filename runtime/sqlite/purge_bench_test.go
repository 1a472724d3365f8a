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
	benchFinished(b, func(be *Backend, now time.Time, n int) []timedStep {
		return []timedStep{
			{"find-nothing-ms", time.Millisecond, 0, func(ctx context.Context) (int, error) {
				return be.PurgeEnded(ctx, now.Add(-time.Hour), backend.PurgeFilter{})
			}},
			{"delete-all-ms", time.Millisecond, n, func(ctx context.Context) (int, error) {
				return be.PurgeEnded(ctx, now.Add(time.Hour), backend.PurgeFilter{States: []backend.State{backend.StateSucceeded}})
			}},
		}
	})
}

// BenchmarkTrimEnded stores finished jobs as BenchmarkPurgeEnded does, then
// times a TrimEnded that keeps them all (the counters answer: it reads no
// job) and one that keeps the newest tenth, with the same writer alongside.
//
//	NUVOM_BENCH_PURGE_JOBS=1000000 go test ./runtime/sqlite -run '^$' -bench TrimEnded -benchtime 1x
func BenchmarkTrimEnded(b *testing.B) {
	benchFinished(b, func(be *Backend, _ time.Time, n int) []timedStep {
		return []timedStep{
			{"keep-all-us", time.Microsecond, 0, func(ctx context.Context) (int, error) {
				return be.TrimEnded(ctx, n, backend.PurgeFilter{})
			}},
			{"keep-tenth-ms", time.Millisecond, n - n/10, func(ctx context.Context) (int, error) {
				return be.TrimEnded(ctx, n/10, backend.PurgeFilter{})
			}},
		}
	})
}

// timedStep is one timed deletion of benchFinished: metric is reported in
// unit, and want is how many jobs it must delete.
type timedStep struct {
	metric string
	unit   time.Duration
	want   int
	run    func(ctx context.Context) (int, error)
}

// benchFinished opens, for each of b's rounds, a store holding
// NUVOM_BENCH_PURGE_JOBS finished jobs (openFinished) and times the steps
// in order, while a writer enqueues one job at a time alongside: its
// longest wait (worst-write-wait-ms) is what a worker's write waits for
// them.
func benchFinished(b *testing.B, steps func(be *Backend, now time.Time, n int) []timedStep) {
	n := purgeBenchJobs(b)
	for range b.N {
		be, now, worst := openFinished(b, n)
		ss := steps(be, now, n)
		took := make([]time.Duration, len(ss))
		for i, s := range ss {
			start := time.Now()
			if got, err := s.run(context.Background()); err != nil || got != s.want {
				b.Fatalf("%s: deleted %d, %v; want %d", s.metric, got, err, s.want)
			}
			took[i] = time.Since(start)
		}
		longest := worst()
		for i, s := range ss {
			b.ReportMetric(float64(took[i])/float64(s.unit), s.metric)
		}
		b.ReportMetric(float64(longest.Microseconds())/1000, "worst-write-wait-ms")
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
