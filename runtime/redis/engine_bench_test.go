package redis_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/bench"
	nredis "github.com/nuvom/nuvom/runtime/redis"
)

// BenchmarkEngine runs the worker engine's bench (single and batched
// enqueue, burn-down of 100,000 no-op jobs with results, pickup latency) on
// the Redis backend, without asynq. With NUVOM_BENCH_REDIS_STATS=1 it logs
// Redis's INFO commandstats and SLOWLOG afterwards (what each command and
// script cost the server).
func BenchmarkEngine(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		srv := redistest.Start(b, "appendonly no")
		ctx := context.Background()
		be, err := nredis.Open(srv.URL(0))
		if err != nil {
			b.Fatal(err)
		}
		be.Client().ConfigResetStat(ctx)
		b.StartTimer()
		cpu0 := serverCPU(b, be)
		rep, err := bench.Run(ctx, bench.Config{Backend: be, Jobs: 100000, Concurrency: 64})
		cpu1 := serverCPU(b, be)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rep.SingleEnqueueRate(), "single-jobs/s")
		b.ReportMetric(rep.BatchEnqueueRate(), "batch-jobs/s")
		b.ReportMetric(rep.BurnDownRate(), "burn-jobs/s")
		b.ReportMetric(float64(rep.PickupP50.Microseconds())/1000, "pickup-p50-ms")
		b.ReportMetric(float64(rep.PickupP99.Microseconds())/1000, "pickup-p99-ms")
		b.ReportMetric((cpu1 - cpu0).Seconds(), "redis-cpu-s")
		if os.Getenv("NUVOM_BENCH_REDIS_STATS") != "" {
			info, _ := be.Client().Info(ctx, "commandstats").Result()
			b.Log("INFO commandstats:\n" + strings.ReplaceAll(info, "\r", ""))
			slow, _ := be.Client().Do(ctx, "SLOWLOG", "GET", 10).Result()
			b.Logf("SLOWLOG GET 10: %v", slow)
		}
		be.Close()
		srv.Stop()
		b.StartTimer()
	}
}

// serverCPU returns the CPU time the Redis server has used (user and
// system, from INFO cpu).
func serverCPU(b *testing.B, be *nredis.Backend) time.Duration {
	info, err := be.Client().Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var s float64
	for _, line := range strings.Split(info, "\r\n") {
		for _, k := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				f, _ := strconv.ParseFloat(v, 64)
				s += f
			}
		}
	}
	return time.Duration(s * float64(time.Second))
}
