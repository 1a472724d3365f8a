package redis

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/bench"
)

// TestMain lets the test binary run as a pickup child (see pickupChild).
func TestMain(m *testing.M) {
	if url := os.Getenv("NUVOM_TEST_PICKUP_URL"); url != "" {
		os.Exit(pickupChild(url, os.Getenv("NUVOM_TEST_PICKUP_PREFIX")))
	}
	os.Exit(m.Run())
}

// benchJobs returns n fresh queued no-op jobs created at now.
func benchJobs(n int, now time.Time) []*backend.Job {
	out := make([]*backend.Job, n)
	for i := range out {
		out[i] = &backend.Job{ID: ulid.Make().String(), Task: "bench.Noop", Signature: "sha256:0011223344556677",
			Args: []byte{0x90}, Queue: "default", State: backend.StateQueued, MaxAttempts: 3, RunAt: now,
			TimeoutPolicy: backend.TimeoutFail, StoreResult: true, CreatedAt: now}
	}
	return out
}

func openBench(b *testing.B, opts ...Option) (*Backend, *redistest.Server) {
	srv := redistest.Start(b, "appendonly no")
	be, err := Open(srv.URL(0), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return be, srv
}

// BenchmarkEnqueueBatch enqueues batches of 1,000 jobs, one script each.
func BenchmarkEnqueueBatch(b *testing.B) {
	const batch = 1000
	be, srv := openBench(b)
	ctx := context.Background()
	now := time.Now()
	if _, err := be.Enqueue(ctx, benchJobs(batch, now)); err != nil { // registers the queue and task
		b.Fatal(err)
	}
	if err := be.c.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	var total, serverCPU, selfCPU time.Duration
	for b.Loop() {
		b.StopTimer()
		jobs := benchJobs(batch, now)
		b.StartTimer()
		cpu0, self0 := srv.CPU(b), bench.ProcessCPU()
		start := time.Now()
		if _, err := be.Enqueue(ctx, jobs); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		self1 := bench.ProcessCPU()
		serverCPU += srv.CPU(b) - cpu0
		selfCPU += self1 - self0
	}
	n := float64(b.N * batch)
	b.ReportMetric(n/total.Seconds(), "jobs/s")
	b.ReportMetric(serverCPU.Seconds()*1e6/n, "redis-cpu-us/job")
	b.ReportMetric(selfCPU.Seconds()*1e6/n, "client-cpu-us/job")
	// Redis time per job by command (INFO commandstats; the script's total,
	// then the commands it ran).
	stats := be.c.Info(ctx, "commandstats").Val()
	var per []string
	for line := range strings.Lines(stats) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name = strings.TrimPrefix(name, "cmdstat_")
		if !ok || !slices.Contains([]string{"evalsha", "hset", "zadd", "hmget"}, name) {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "usec="); ok {
				us, _ := strconv.ParseFloat(v, 64)
				per = append(per, fmt.Sprintf("%s %.2f", name, us/n))
			}
		}
	}
	b.Logf("Redis µs per job by command: %s", strings.Join(per, ", "))
}

// BenchmarkEnqueueSingle enqueues one job per call from 8 goroutines.
func BenchmarkEnqueueSingle(b *testing.B) {
	be, srv := openBench(b)
	ctx := context.Background()
	now := time.Now()
	if _, err := be.Enqueue(ctx, benchJobs(1, now)); err != nil { // registers the queue and task
		b.Fatal(err)
	}
	b.SetParallelism(8)
	b.ResetTimer()
	start, cpu0 := time.Now(), srv.CPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := be.Enqueue(ctx, benchJobs(1, now)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
	b.ReportMetric((srv.CPU(b)-cpu0).Seconds()*1e6/float64(b.N), "redis-cpu-us/job")
}

// BenchmarkBurnDown stores b.N*10,000 no-op jobs, then 4 claimers drain them
// in batches of 64, completing each batch as succeeded with a result.
func BenchmarkBurnDown(b *testing.B) {
	const perOp = 10000
	be, _ := openBench(b)
	ctx := context.Background()
	now := time.Now()
	for b.Loop() {
		b.StopTimer()
		for range perOp / 1000 {
			if _, err := be.Enqueue(ctx, benchJobs(1000, now)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		drainBench(b, be, now)
	}
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "jobs/s")
}

// pickupChild is a worker process: it waits for a wake-up, claims one job,
// prints the claim time in Unix nanoseconds and completes it, until stdin closes.
func pickupChild(url, prefix string) int {
	be, err := Open(url, WithPrefix(prefix))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer be.Close()
	ch, cancel := be.Subscribe()
	defer cancel()
	ctx, stop := context.WithCancel(context.Background())
	go func() { bufio.NewReader(os.Stdin).ReadString('\n'); stop() }()
	fmt.Println("ready")
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-ch:
		}
		for {
			jobs, err := be.Claim(ctx, backend.ClaimRequest{Limit: 1, Worker: "child", Now: time.Now(), LeaseFor: time.Minute})
			if err != nil || len(jobs) == 0 {
				break
			}
			fmt.Println(time.Now().UnixNano())
			be.Complete(ctx, []backend.Outcome{{Lease: jobs[0].Lease(), State: backend.StateSucceeded, FinishedAt: time.Now()}})
		}
	}
}

// BenchmarkPickupLatency: an idle worker in another process, woken by Redis
// pub/sub, claims a job enqueued here; reports the p50 and p99 from enqueue
// to claim.
func BenchmarkPickupLatency(b *testing.B) {
	srv := redistest.Start(b, "appendonly no")
	be, err := Open(srv.URL(0), WithPrefix("pickup"))
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NUVOM_TEST_PICKUP_URL="+srv.URL(0), "NUVOM_TEST_PICKUP_PREFIX=pickup")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		b.Fatalf("child did not start: %q", sc.Text())
	}
	time.Sleep(100 * time.Millisecond) // let the child's SUBSCRIBE reach Redis (a warm-up, not an assertion)
	ctx := context.Background()
	var lat []time.Duration
	for b.Loop() {
		j := benchJobs(1, time.Now())
		start := time.Now()
		if _, err := be.Enqueue(ctx, j); err != nil {
			b.Fatal(err)
		}
		if !sc.Scan() {
			b.Fatal("child exited")
		}
		ns, _ := strconv.ParseInt(sc.Text(), 10, 64)
		lat = append(lat, time.Unix(0, ns).Sub(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// usedMemory returns the Redis server's used_memory.
func usedMemory(b *testing.B, be *Backend) int64 {
	info, err := be.c.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}

// keyMemory returns MEMORY USAGE of key (the job record alone, without its
// index entries).
func keyMemory(b *testing.B, be *Backend, key string) int64 {
	n, err := be.c.MemoryUsage(context.Background(), key, 0).Result()
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkMemoryPerJob reports Redis memory per queued job and per
// succeeded job with an 8-byte result and one attempt of history (20,000
// jobs of each; every index and the location hash included: INFO memory's
// used_memory before and after, divided by the jobs), and MEMORY USAGE of
// one job's record (its hash alone) when queued and when finished.
func BenchmarkMemoryPerJob(b *testing.B) {
	const n = 20000
	for b.Loop() {
		b.StopTimer()
		be, _ := openBench(b)
		ctx := context.Background()
		now := time.Now()
		before := usedMemory(b, be)
		var sample string
		for range n / 1000 {
			jobs := benchJobs(1000, now)
			sample = jobs[0].ID
			if _, err := be.Enqueue(ctx, jobs); err != nil {
				b.Fatal(err)
			}
		}
		queued := usedMemory(b, be)
		hashQueued := keyMemory(b, be, be.qp("default")+"j:"+sample)
		for {
			jobs, err := be.Claim(ctx, backend.ClaimRequest{Limit: 500, Worker: "w", Now: now, LeaseFor: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			if len(jobs) == 0 {
				break
			}
			outs := make([]backend.Outcome, len(jobs))
			for i, j := range jobs {
				outs[i] = backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: now, Result: []byte("resultXX"),
					Attempt: backend.Attempt{Number: 1, StartedAt: now, FinishedAt: now, Worker: "worker-1", Outcome: backend.OutcomeSucceeded}}
			}
			if _, err := be.Complete(ctx, outs); err != nil {
				b.Fatal(err)
			}
		}
		done := usedMemory(b, be)
		b.ReportMetric(float64(queued-before)/n, "B/queued-job")
		b.ReportMetric(float64(done-before)/n, "B/finished-job")
		b.ReportMetric(float64(hashQueued), "B/queued-record")
		b.ReportMetric(float64(keyMemory(b, be, be.qp("default")+"j:"+sample)), "B/finished-record")
		b.StartTimer()
	}
}

// drainBench claims every ready job of be with 4 claimers, batches of 64,
// and completes each as succeeded with a result.
func drainBench(b *testing.B, be *Backend, now time.Time) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for {
				jobs, err := be.Claim(ctx, backend.ClaimRequest{Limit: 64, Worker: fmt.Sprint("w", w), Now: now, LeaseFor: time.Minute})
				if err != nil {
					b.Error(err)
					return
				}
				if len(jobs) == 0 {
					return
				}
				outs := make([]backend.Outcome, len(jobs))
				for i, j := range jobs {
					outs[i] = backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: now, Result: []byte{0xc0},
						Attempt: backend.Attempt{Number: j.Attempt, StartedAt: now, FinishedAt: now, Worker: j.LeaseOwner, Outcome: backend.OutcomeSucceeded}}
				}
				if _, err := be.Complete(ctx, outs); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
