package redis

import (
	"context"
	"testing"
	"time"
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
		drainBench(b, be, now)
		b.StopTimer()
		cpu += srv.CPU(b) - cpu0
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(cpu.Seconds()*1e6/float64(b.N*perOp), "redis-cpu-us/job")
}
