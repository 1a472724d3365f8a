package file

import (
	"fmt"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// benchOptions runs each benchmark with and without fsync.
var benchSync = []bool{true, false}

// BenchmarkEnqueue measures single-job enqueues (one call per job).
func BenchmarkEnqueue(b *testing.B) {
	for _, sync := range benchSync {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			be := openTest(b, WithSync(sync))
			jobs := testJobs(1, b.N)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := be.Enqueue(b.Context(), jobs[i:i+1]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
		})
	}
}

// BenchmarkClaimComplete measures the burn-down of b.N pre-enqueued jobs:
// claim 16 at a time, complete them as succeeded with a result and history.
func BenchmarkClaimComplete(b *testing.B) {
	for _, sync := range benchSync {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			be := openTest(b, WithSync(sync))
			jobs := testJobs(1, b.N)
			for i := 0; i < len(jobs); i += 500 {
				mustEnqueue(b, be, jobs[i:min(i+500, len(jobs))]...)
			}
			b.ResetTimer()
			start := time.Now()
			done := 0
			for done < b.N {
				got, err := be.Claim(b.Context(), claimReq("w", 16))
				if err != nil || len(got) == 0 {
					b.Fatalf("Claim = %d, %v with %d of %d done", len(got), err, done, b.N)
				}
				outs := make([]backend.Outcome, len(got))
				for i, j := range got {
					outs[i] = backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: epoch,
						Result: []byte{0xc0}, Attempt: backend.Attempt{Number: 1, Worker: "w", Outcome: backend.OutcomeSucceeded}}
				}
				if _, err := be.Complete(b.Context(), outs); err != nil {
					b.Fatal(err)
				}
				done += len(got)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
		})
	}
}

// BenchmarkGetWorkflow reads a workflow of 1,000 steps (a fan-out of 999
// queued steps and its fan-in), as `nuvom workflow show` does.
func BenchmarkGetWorkflow(b *testing.B) {
	be := openTest(b)
	ctx := b.Context()
	now := time.Now()
	const n = 1000
	wf := backendtest.FanIn(n, now)
	if err := be.EnqueueWorkflow(ctx, wf); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		info, err := be.GetWorkflow(ctx, wf.ID)
		if err != nil || len(info.Steps) != n {
			b.Fatalf("GetWorkflow = %v", err)
		}
	}
}

// BenchmarkCancelWorkflow cancels a fan-in of 1,000 steps (999 queued
// roots, one pending child): one job file written per step, and the graph
// read once for the settling of all of them.
func BenchmarkCancelWorkflow(b *testing.B) {
	be := openTest(b)
	ctx := b.Context()
	now := time.Now()
	const n = 1000
	for b.Loop() {
		b.StopTimer()
		wf := backendtest.FanIn(n, now)
		if err := be.EnqueueWorkflow(ctx, wf); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if c, err := be.CancelWorkflow(ctx, wf.ID, now); err != nil || c != n {
			b.Fatalf("CancelWorkflow = %d, %v; want %d", c, err, n)
		}
	}
}
