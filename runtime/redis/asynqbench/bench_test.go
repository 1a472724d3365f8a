package asynqbench

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/bench"
	nredis "github.com/nuvom/nuvom/runtime/redis"
)

// jobs is the burn-down size of both engines.
const jobs = 100000

// BenchmarkSideBySide runs, on one private redis-server: single enqueue of
// both engines, interleaved (singleRounds rounds of Nuvom's calls then
// asynq's, so that both see the same load; one call after the other, each a
// round trip), then Nuvom's bench (the real worker engine on the Redis
// backend: batched enqueue, burn-down of no-op jobs with results stored,
// pickup latency; then the burn-down again with WorkerOptions.ClaimAhead),
// then asynq's burn-down of the same number of no-op tasks
// with results stored (Retention, ResultWriter) by a server of the same
// concurrency (asynq has no batch enqueue).
func BenchmarkSideBySide(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		srv := redistest.Start(b, "appendonly no")
		ctx := context.Background()

		be, err := nredis.Open(srv.URL(0))
		if err != nil {
			b.Fatal(err)
		}
		single := singleSideBySide(b, be, srv)
		b.ReportMetric(single.nuvomRate, "nuvom-single-jobs/s")
		b.ReportMetric(single.asynqRate, "asynq-single-jobs/s")
		b.ReportMetric(single.nuvomCPU, "nuvom-single-redis-cpu-us/job")
		b.ReportMetric(single.asynqCPU, "asynq-single-redis-cpu-us/job")
		b.ReportMetric(single.nuvomClientCPU, "nuvom-single-client-cpu-us/job")
		b.ReportMetric(single.asynqClientCPU, "asynq-single-client-cpu-us/job")
		cpu0 := srv.CPU(b)
		rep, err := bench.Run(ctx, bench.Config{Backend: be, Jobs: jobs, Concurrency: 64})
		nuvomCPU := srv.CPU(b) - cpu0
		be.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rep.BatchEnqueueRate(), "nuvom-batch-jobs/s")
		b.ReportMetric(rep.BurnDownRate(), "nuvom-burn-jobs/s")
		b.ReportMetric(float64(rep.PickupP50.Microseconds())/1000, "nuvom-pickup-p50-ms")
		b.ReportMetric(float64(rep.PickupP99.Microseconds())/1000, "nuvom-pickup-p99-ms")

		// The same burn-down with WorkerOptions.ClaimAhead (off by default).
		ahead, err := nredis.Open(srv.URL(0), nredis.WithPrefix("ahead"))
		if err != nil {
			b.Fatal(err)
		}
		repAhead, err := bench.Run(ctx, bench.Config{Backend: ahead, Jobs: jobs, Concurrency: 64, ClaimAhead: true, LatencySamples: -1})
		ahead.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(repAhead.BurnDownRate(), "nuvom-burn-claim-ahead-jobs/s")

		cpu0 = srv.CPU(b)
		burn := asynqRun(b, srv.Addr)
		asynqCPU := srv.CPU(b) - cpu0
		b.ReportMetric(burn, "asynq-burn-jobs/s")
		// Redis's own CPU time per job over each engine's whole run (enqueue,
		// burn-down; Nuvom's also its 200 pickup samples).
		b.ReportMetric(nuvomCPU.Seconds()*1e6/jobs, "nuvom-redis-cpu-us/job")
		b.ReportMetric(asynqCPU.Seconds()*1e6/jobs, "asynq-redis-cpu-us/job")
		srv.Stop()
		b.StartTimer()
	}
}

// singleRounds and singlePerRound size the interleaved single-enqueue
// measurement: each round makes singlePerRound calls of Nuvom, then as many
// of asynq.
const singleRounds, singlePerRound = 10, 200

// singleFigures are both engines' single-enqueue rates (jobs/s), and Redis's
// and the client process's CPU time per job (µs).
type singleFigures struct {
	nuvomRate, asynqRate, nuvomCPU, asynqCPU, nuvomClientCPU, asynqClientCPU float64
}

// singleSideBySide measures single enqueue, one call after the other, of
// Nuvom (on be, queue "single") and asynq (database 1, queue "single", which
// its burn-down server does not serve), interleaved round by round.
func singleSideBySide(b *testing.B, be *nredis.Backend, srv *redistest.Server) singleFigures {
	ctx := context.Background()
	client := nuvom.NewClient(be)
	spec := nuvom.TaskSpec{Name: bench.NoopTask, Options: nuvom.TaskOptions{Queue: "single", StoreResult: true}}
	aclient := asynq.NewClient(asynq.RedisClientOpt{Addr: srv.Addr, DB: 1})
	defer aclient.Close()
	task := asynq.NewTask("noop", nil)
	// One call of each first, untimed: connections made, scripts loaded,
	// the queue registered.
	if _, err := client.Enqueue(ctx, spec, []byte{0x90}); err != nil {
		b.Fatal(err)
	}
	if _, err := aclient.Enqueue(task, asynq.Queue("single"), asynq.Retention(time.Hour)); err != nil {
		b.Fatal(err)
	}
	var nuvomTime, asynqTime, nuvomCPU, asynqCPU, nuvomClient, asynqClient time.Duration
	for range singleRounds {
		cpu0 := srv.CPU(b)
		self := bench.ProcessCPU()
		start := time.Now()
		for range singlePerRound {
			if _, err := client.Enqueue(ctx, spec, []byte{0x90}); err != nil {
				b.Fatal(err)
			}
		}
		nuvomTime += time.Since(start)
		nuvomClient += bench.ProcessCPU() - self
		cpu1 := srv.CPU(b)
		self = bench.ProcessCPU()
		nuvomCPU += cpu1 - cpu0
		start = time.Now()
		for range singlePerRound {
			if _, err := aclient.Enqueue(task, asynq.Queue("single"), asynq.Retention(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
		asynqTime += time.Since(start)
		asynqClient += bench.ProcessCPU() - self
		asynqCPU += srv.CPU(b) - cpu1
	}
	n := float64(singleRounds * singlePerRound)
	return singleFigures{nuvomRate: n / nuvomTime.Seconds(), asynqRate: n / asynqTime.Seconds(),
		nuvomCPU: nuvomCPU.Seconds() * 1e6 / n, asynqCPU: asynqCPU.Seconds() * 1e6 / n,
		nuvomClientCPU: nuvomClient.Seconds() * 1e6 / n, asynqClientCPU: asynqClient.Seconds() * 1e6 / n}
}

// asynqRun measures asynq's burn-down on the Redis at addr (database 1).
func asynqRun(b *testing.B, addr string) (burnRate float64) {
	opt := asynq.RedisClientOpt{Addr: addr, DB: 1}
	client := asynq.NewClient(opt)
	defer client.Close()
	task := asynq.NewTask("noop", nil)

	// Insert the tasks (untimed: asynq has no batch enqueue), then burn down.
	for range jobs {
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
	start := time.Now()
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
	return burnRate
}
