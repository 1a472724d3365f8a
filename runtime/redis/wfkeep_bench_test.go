package redis

import (
	"context"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// roundTrips is a go-redis hook counting round trips: each command sent
// alone and each pipeline (one round trip per node it reaches on a
// Cluster; one here). With match, it counts instead the commands sent
// alone whose arguments match.
type roundTrips struct {
	n     atomic.Int64
	match func(args []any) bool
}

func (h *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if h.match == nil || h.match(cmd.Args()) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if h.match == nil {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// parkFanIns enqueues n workflows (ids from 1000 up, four a workflow):
// roots a (task "a") and b (task "b") and a pending fan-in m waiting for
// both; then it completes every a, so that n parents are parked on queue
// default.
func parkFanIns(tb testing.TB, b *Backend, n int) {
	tb.Helper()
	ctx := context.Background()
	t0 := backendtest.Epoch()
	for i := range n {
		a := backendtest.NewJob(backendtest.ID(uint64(1000+4*i)), "a", t0)
		p := backendtest.NewJob(backendtest.ID(uint64(1001+4*i)), "b", t0)
		m := backendtest.NewJob(backendtest.ID(uint64(1002+4*i)), "m", t0)
		m.State = backend.StatePending
		wf := &backend.Workflow{ID: backendtest.ID(uint64(1003 + 4*i)), CreatedAt: t0, Steps: []backend.Step{
			{Job: a}, {Job: p}, {Job: m, Parents: []backend.Edge{{Parent: a.ID}, {Parent: p.ID}}},
		}}
		if err := b.EnqueueWorkflow(ctx, wf); err != nil {
			tb.Fatal(err)
		}
	}
	for {
		jobs, err := b.Claim(ctx, backend.ClaimRequest{Tasks: []string{"a"}, Limit: 500, Worker: "w", Now: t0, LeaseFor: time.Hour})
		if err != nil {
			tb.Fatal(err)
		}
		if len(jobs) == 0 {
			break
		}
		os := make([]backend.Outcome, len(jobs))
		for i, j := range jobs {
			os[i] = backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: t0}
		}
		if _, err := b.Complete(ctx, os); err != nil {
			tb.Fatal(err)
		}
	}
	if got := b.c.ZCard(ctx, b.qp("default")+"donewf").Val(); got != int64(n) {
		tb.Fatalf("parked %d, want %d", got, n)
	}
}

// BenchmarkSweepParked times TrimEnded on a queue whose donewf holds
// NUVOM_BENCH_PARKED parked parents (default 200), one per workflow: each
// workflow's roots a and b, a ended, b still queued, and a pending fan-in,
// so the sweep reads every parked parent's workflow and keeps them all
// parked. roundtrips/op counts commands sent alone plus pipelines.
//
//	NUVOM_BENCH_PARKED=5000 go test ./runtime/redis -run '^$' -bench SweepParked -benchtime 20x
func BenchmarkSweepParked(bt *testing.B) {
	n := 200
	if v := os.Getenv("NUVOM_BENCH_PARKED"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			bt.Fatalf("NUVOM_BENCH_PARKED=%q: want a whole number of at least 1", v)
		}
	}
	b, _ := openBench(bt, WithPrefix("sweep"))
	ctx := context.Background()
	parkFanIns(bt, b, n)
	rt := &roundTrips{}
	b.c.AddHook(rt)
	bt.ResetTimer()
	for range bt.N {
		if _, err := b.TrimEnded(ctx, 100, backend.PurgeFilter{}); err != nil {
			bt.Fatal(err)
		}
	}
	bt.StopTimer()
	bt.ReportMetric(float64(rt.n.Load())/float64(bt.N), "roundtrips/op")
	if got := b.c.ZCard(ctx, b.qp("default")+"donewf").Val(); got != int64(n) {
		bt.Fatalf("parked %d after the sweeps, want %d (every fan-in waits)", got, n)
	}
}
