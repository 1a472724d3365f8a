package redis

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// BenchmarkTrimEnded stores finished jobs on one queue (NUVOM_BENCH_TRIM_JOBS,
// default 20,000) through Enqueue, Claim and Complete in batches of 1,000
// (every record and index as the scripts write them), half failed and half
// succeeded, one microsecond apart; then times, in turn, TrimEnded keeping
// them all (one script call: ZCARD), TrimEnded keeping every failed one
// with a state filter (a walk of the whole done index: the cut is the
// oldest failed job, nothing is below it),
// and TrimEnded keeping the newest 10% (deleting 90%). longest-call-ms is
// the longest single script call of the deleting trim: how long it blocks
// Redis at a time.
//
//	NUVOM_BENCH_TRIM_JOBS=1000000 go test ./runtime/redis -run '^$' -bench TrimEnded -benchtime 1x
func BenchmarkTrimEnded(b *testing.B) {
	n := 20_000
	if v := os.Getenv("NUVOM_BENCH_TRIM_JOBS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("NUVOM_BENCH_TRIM_JOBS=%q: want a whole number of at least 1000", v)
		}
	}
	ctx := context.Background()
	t0 := backendtest.Epoch()
	end := func(i int) (backend.State, time.Time) {
		st := backend.StateSucceeded
		if i%2 == 0 {
			st = backend.StateFailed
		}
		return st, t0.Add(time.Duration(i) * time.Microsecond)
	}
	for range b.N {
		b.StopTimer()
		be, _ := openBench(b, WithPrefix("trim"))
		finishJobs(b, be, n, end)
		var mu sync.Mutex
		var longest time.Duration
		be.c.AddHook(hookFunc(func(ctx context.Context, cmd goredis.Cmder, next goredis.ProcessHook) error {
			start := time.Now()
			err := next(ctx, cmd)
			mu.Lock()
			longest = max(longest, time.Since(start))
			mu.Unlock()
			return err
		}))
		trim := func(keep int, f backend.PurgeFilter, want int) time.Duration {
			start := time.Now()
			got, err := be.TrimEnded(ctx, keep, f)
			if err != nil || got != want {
				b.Fatalf("TrimEnded(%d, %+v) = %d, %v; want %d", keep, f, got, err, want)
			}
			return time.Since(start)
		}
		b.StartTimer()
		all := trim(n, backend.PurgeFilter{}, 0)
		walk := trim(n/2, backend.PurgeFilter{States: []backend.State{backend.StateFailed}}, 0)
		mu.Lock()
		longest = 0
		mu.Unlock()
		del := trim(n/10, backend.PurgeFilter{}, n-n/10)
		b.StopTimer()
		b.ReportMetric(float64(all.Microseconds()), "keep-all-us")
		b.ReportMetric(float64(walk.Milliseconds()), "filtered-walk-all-ms")
		b.ReportMetric(float64(del.Milliseconds()), "delete-90pct-ms")
		b.ReportMetric(float64(longest.Microseconds())/1000, "longest-call-ms")
	}
}
