package asynqbench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/bench"
	nredis "github.com/nuvom/nuvom/runtime/redis"
)

// jobs is the burn-down size of both engines.
const jobs = 100000

// BenchmarkSideBySide runs, on one private redis-server: Nuvom's bench
// (the real worker engine on the Redis backend: single and batched enqueue,
// burn-down of no-op jobs with results stored, pickup latency), then asynq's
// single enqueue (it has no batch enqueue) and burn-down of the same number
// of no-op tasks with results stored (Retention, ResultWriter) by a server of
// the same concurrency.
func BenchmarkSideBySide(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		srv := redistest.Start(b, "appendonly no")
		ctx := context.Background()

		be, err := nredis.Open(srv.URL(0))
		if err != nil {
			b.Fatal(err)
		}
		cpu0 := serverCPU(b, srv.Addr)
		rep, err := bench.Run(ctx, bench.Config{Backend: be, Jobs: jobs, Concurrency: 64})
		nuvomCPU := serverCPU(b, srv.Addr) - cpu0
		be.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rep.SingleEnqueueRate(), "nuvom-single-jobs/s")
		b.ReportMetric(rep.BatchEnqueueRate(), "nuvom-batch-jobs/s")
		b.ReportMetric(rep.BurnDownRate(), "nuvom-burn-jobs/s")
		b.ReportMetric(float64(rep.PickupP50.Microseconds())/1000, "nuvom-pickup-p50-ms")
		b.ReportMetric(float64(rep.PickupP99.Microseconds())/1000, "nuvom-pickup-p99-ms")

		cpu0 = serverCPU(b, srv.Addr)
		single, burn := asynqRun(b, srv.Addr)
		asynqCPU := serverCPU(b, srv.Addr) - cpu0
		b.ReportMetric(single, "asynq-single-jobs/s")
		b.ReportMetric(burn, "asynq-burn-jobs/s")
		// Redis's own CPU time per job over each engine's whole run (enqueue,
		// burn-down; Nuvom's also its 200 pickup samples).
		b.ReportMetric(nuvomCPU.Seconds()*1e6/jobs, "nuvom-redis-cpu-us/job")
		b.ReportMetric(asynqCPU.Seconds()*1e6/jobs, "asynq-redis-cpu-us/job")
		srv.Stop()
		b.StartTimer()
	}
}

// serverCPU returns the CPU time the Redis at addr has used (user and
// system, from INFO cpu).
func serverCPU(b *testing.B, addr string) time.Duration {
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(context.Background(), "cpu").Result()
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

// asynqRun measures asynq on the Redis at addr (database 1).
func asynqRun(b *testing.B, addr string) (singleRate, burnRate float64) {
	opt := asynq.RedisClientOpt{Addr: addr, DB: 1}
	client := asynq.NewClient(opt)
	defer client.Close()
	task := asynq.NewTask("noop", nil)

	// Single enqueue, one call after the other, as Nuvom's bench does.
	const single = 1000
	start := time.Now()
	for range single {
		if _, err := client.Enqueue(task, asynq.Retention(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	singleRate = single / time.Since(start).Seconds()

	// Pre-insert the rest (pipelined, untimed), then burn down.
	for range jobs - single {
		if _, err := client.Enqueue(task, asynq.Retention(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	var done atomic.Int64
	all := make(chan struct{})
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: 64, LogLevel: asynq.ErrorLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc("noop", func(ctx context.Context, t *asynq.Task) error {
		if _, err := t.ResultWriter().Write([]byte{0xc0}); err != nil {
			return err
		}
		if done.Add(1) == jobs {
			close(all)
		}
		return nil
	})
	start = time.Now()
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	select {
	case <-all:
	case <-time.After(30 * time.Minute): // hang guard
		b.Fatal(fmt.Sprintf("asynq burned down %d of %d tasks in 30 min", done.Load(), jobs))
	}
	burnRate = jobs / time.Since(start).Seconds()
	srv.Shutdown()
	return singleRate, burnRate
}
