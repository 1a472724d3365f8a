//go:build unix

package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// cpuNow is the CPU time this process has used.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCPUPerJob reports the process's CPU time (user + system) per job
// of single enqueue, batched enqueue (1,000 per call) and burn-down (claims
// of 250, each batch completed as succeeded with a result and an attempt
// record), on the backend alone. On a shared, loaded machine CPU time per job
// moves far less than wall-clock rates do, so it compares two builds of the
// backend where BenchmarkVsFloor's ratios drown in noise:
//
//	go test ./runtime/sqlite -run '^$' -bench CPUPerJob -benchtime 2x
func BenchmarkCPUPerJob(b *testing.B) {
	for _, sync := range []string{"NORMAL"} {
		b.Run(sync, func(b *testing.B) {
			ctx := context.Background()
			var enqN, enq1, claim, complete time.Duration
			const n = 100_000
			for i := 0; i < b.N; i++ {
				be, err := Open(filepath.Join(b.TempDir(), "cpu.db"), WithSynchronous(sync))
				if err != nil {
					b.Fatal(err)
				}
				now := time.Now()
				jobs := benchJobs(n+1000, now)
				c := cpuNow()
				for k := 0; k < 1000; k++ {
					if _, err := be.Enqueue(ctx, jobs[k:k+1]); err != nil {
						b.Fatal(err)
					}
				}
				enq1 += cpuNow() - c
				c = cpuNow()
				for k := 1000; k < n+1000; k += 1000 {
					if _, err := be.Enqueue(ctx, jobs[k:k+1000]); err != nil {
						b.Fatal(err)
					}
				}
				enqN += cpuNow() - c
				outs := make([]backend.Outcome, 0, 250)
				for {
					c = cpuNow()
					claimed, err := be.Claim(ctx, backend.ClaimRequest{Limit: 250, Worker: "bench-worker-1234", Now: now, LeaseFor: time.Minute})
					if err != nil {
						b.Fatal(err)
					}
					claim += cpuNow() - c
					if len(claimed) == 0 {
						break
					}
					fin := time.Now()
					outs = outs[:0]
					for _, j := range claimed {
						outs = append(outs, backend.Outcome{Lease: j.Lease(), Queue: j.Queue, Task: j.Task, State: backend.StateSucceeded, FinishedAt: fin,
							Result: []byte{0xc0}, Attempt: backend.Attempt{Number: j.Attempt, StartedAt: j.StartedAt,
								FinishedAt: fin, Worker: "bench-worker-1234", Outcome: backend.OutcomeSucceeded}})
					}
					c = cpuNow()
					errs, err := be.Complete(ctx, outs)
					complete += cpuNow() - c
					if err == nil {
						err = errors.Join(errs...)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				be.Close()
			}
			b.ReportMetric(float64(enq1.Nanoseconds())/float64(b.N*1000), "cpu-ns/enq1")
			b.ReportMetric(float64(enqN.Nanoseconds())/float64(b.N*n), "cpu-ns/enqN")
			b.ReportMetric(float64((claim+complete).Nanoseconds())/float64(b.N*(n+1000)), "cpu-ns/burn")
			b.ReportMetric(float64(claim.Nanoseconds())/float64(b.N*(n+1000)), "cpu-ns/claim")
			b.ReportMetric(float64(complete.Nanoseconds())/float64(b.N*(n+1000)), "cpu-ns/complete")
		})
	}
}
