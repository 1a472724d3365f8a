package redis_test

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/bench"
	nredis "github.com/nuvom/nuvom/runtime/redis"
)

// BenchmarkEngine runs the worker engine's bench (single and batched
// enqueue, burn-down of 100,000 no-op jobs with results, pickup latency) on
// the Redis backend, without asynq. Besides the rates it reports how the
// engine drives the backend during the run (jobs per Claim and Complete
// call, and their latency) and the CPU time per job of Redis (INFO cpu) and
// of this process (Unix only): on a loaded machine, CPU per job is steadier
// than a rate. With NUVOM_BENCH_REDIS_STATS=1 it logs Redis's INFO
// commandstats and SLOWLOG afterwards (what each command and script cost
// the server).
func BenchmarkEngine(b *testing.B) {
	const jobs = 100000
	for b.Loop() {
		b.StopTimer()
		srv := redistest.Start(b, "appendonly no")
		ctx := context.Background()
		be, err := nredis.Open(srv.URL(0))
		if err != nil {
			b.Fatal(err)
		}
		be.Client().ConfigResetStat(ctx)
		c := &counting{Backend: be}
		b.StartTimer()
		cpu0, self0 := srv.CPU(b), bench.ProcessCPU()
		rep, err := bench.Run(ctx, bench.Config{Backend: c, Jobs: jobs, Concurrency: 64})
		cpu1, self1 := srv.CPU(b), bench.ProcessCPU()
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rep.SingleEnqueueRate(), "single-jobs/s")
		b.ReportMetric(rep.BatchEnqueueRate(), "batch-jobs/s")
		b.ReportMetric(rep.BurnDownRate(), "burn-jobs/s")
		b.ReportMetric(float64(rep.PickupP50.Microseconds())/1000, "pickup-p50-ms")
		b.ReportMetric(float64(rep.PickupP99.Microseconds())/1000, "pickup-p99-ms")
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/jobs, "redis-cpu-us/job")
		if self1 > 0 {
			b.ReportMetric(float64((self1-self0).Microseconds())/jobs, "client-cpu-us/job")
		}
		b.ReportMetric(float64(c.claimed.Load())/float64(c.claims.Load()), "jobs/claim")
		b.ReportMetric(float64(c.claimNs.Load())/float64(c.claims.Load())/1e3, "us/claim")
		b.ReportMetric(float64(c.completed.Load())/float64(c.completes.Load()), "jobs/complete")
		b.ReportMetric(float64(c.completeNs.Load())/float64(c.completes.Load())/1e3, "us/complete")
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

// counting counts the Claim and Complete calls the engine makes, their jobs
// and their time.
type counting struct {
	*nredis.Backend
	claims, claimed, claimNs, completes, completed, completeNs atomic.Int64
}

func (c *counting) Claim(ctx context.Context, req backend.ClaimRequest) ([]*backend.Job, error) {
	t := time.Now()
	js, err := c.Backend.Claim(ctx, req)
	c.claimNs.Add(int64(time.Since(t)))
	c.claims.Add(1)
	c.claimed.Add(int64(len(js)))
	return js, err
}

func (c *counting) Complete(ctx context.Context, o []backend.Outcome) ([]error, error) {
	t := time.Now()
	errs, err := c.Backend.Complete(ctx, o)
	c.completeNs.Add(int64(time.Since(t)))
	c.completes.Add(1)
	c.completed.Add(int64(len(o)))
	return errs, err
}
