package memory_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/memory"
)

// benchJobs returns n queued jobs with ids prefix-0..n-1 (zero-padded so they sort).
func benchJobs(prefix string, n int, now time.Time) []*backend.Job {
	jobs := make([]*backend.Job, n)
	for i := range jobs {
		jobs[i] = &backend.Job{
			ID:            prefix + strconv.FormatInt(int64(1e9+i), 10),
			Task:          "bench.Noop",
			Signature:     "sig",
			Args:          []byte{0x90},
			Queue:         "default",
			State:         backend.StateQueued,
			MaxAttempts:   1,
			RunAt:         now,
			TimeoutPolicy: backend.TimeoutFail,
			CreatedAt:     now,
		}
	}
	return jobs
}

// BenchmarkEnqueueBatch enqueues batches of 1,000 jobs into a backend holding
// up to 100,000 (a fresh one after that, untimed, so the figure is not the GC
// cost of millions of live jobs).
func BenchmarkEnqueueBatch(b *testing.B) {
	const batch, fresh = 1000, 100
	ctx := context.Background()
	be := memory.New()
	defer func() { be.Close() }()
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i%fresh == fresh-1 {
			be.Close()
			be = memory.New()
		}
		jobs := benchJobs(strconv.Itoa(i)+"-", batch, now)
		b.StartTimer()
		if _, err := be.Enqueue(ctx, jobs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkClaimComplete claims 100 jobs and completes them (succeeded, one
// batched Complete) per op, from a queue refilled to 10,000 jobs.
func BenchmarkClaimComplete(b *testing.B) {
	const per, refill = 100, 10_000
	ctx := context.Background()
	be := memory.New()
	defer be.Close()
	now := time.Now()
	left, round := 0, 0
	outs := make([]backend.Outcome, per)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if left < per {
			b.StopTimer()
			if _, err := be.Purge(ctx, backend.PurgeFilter{States: []backend.State{backend.StateSucceeded}}); err != nil {
				b.Fatal(err)
			}
			if _, err := be.Enqueue(ctx, benchJobs(strconv.Itoa(round)+"-", refill, now)); err != nil {
				b.Fatal(err)
			}
			round++
			left += refill
			b.StartTimer()
		}
		jobs, err := be.Claim(ctx, backend.ClaimRequest{Limit: per, Worker: "w", Now: now, LeaseFor: time.Minute})
		if err != nil || len(jobs) != per {
			b.Fatalf("claim: %d jobs, %v", len(jobs), err)
		}
		for k, j := range jobs {
			outs[k] = backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: now,
				Attempt: backend.Attempt{Number: j.Attempt, StartedAt: now, FinishedAt: now, Worker: "w", Outcome: backend.OutcomeSucceeded}}
		}
		errs, err := be.Complete(ctx, outs)
		if err != nil || errs[0] != nil {
			b.Fatalf("complete: %v %v", err, errs[0])
		}
		left -= per
	}
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "jobs/s")
}
