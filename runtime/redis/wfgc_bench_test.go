package redis

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// BenchmarkBurnDownRetention is BenchmarkBurnDown with at-completion
// retention on (WithRetention(1000, 0)): every Complete of a batch of 64
// plain jobs also deletes the 64 oldest finished ones, so that the
// completion script's retention (del_job) is on the measured path. It
// drains 20,000 jobs per op with 4 claimers and reports, besides the rate,
// Redis's own CPU time per job (INFO cpu), steadier than a rate on a
// loaded machine.
//
//	go test ./runtime/redis -run '^$' -bench BurnDownRetention -benchtime 5x
func BenchmarkBurnDownRetention(b *testing.B) {
	const perOp = 20000
	be, srv := openBench(b, WithRetention(1000, 0))
	ctx := context.Background()
	now := time.Now()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		for range perOp / 1000 {
			if _, err := be.Enqueue(ctx, benchJobs(1000, now)); err != nil {
				b.Fatal(err)
			}
		}
		cpu0 := srv.CPU(b)
		b.StartTimer()
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
		b.StopTimer()
		cpu += srv.CPU(b) - cpu0
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(cpu.Seconds()*1e6/float64(b.N*perOp), "redis-cpu-us/job")
}
