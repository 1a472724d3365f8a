package redis

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// TestConformanceCluster runs the conformance suite on a 3-node Redis
// Cluster when NUVOM_REDIS_CLUSTER=1. Every case passes but one, by design:
// EnqueueAllOrNothing expects a unique key to match a job of another queue,
// and on a Cluster unique keys are matched per queue (README, "Cluster notes").
func TestConformanceCluster(t *testing.T) {
	if os.Getenv("NUVOM_REDIS_CLUSTER") != "1" {
		t.Skip("set NUVOM_REDIS_CLUSTER=1 (EnqueueAllOrNothing fails there by design: unique keys are per queue on a Cluster)")
	}
	cl := redistest.StartCluster(t)
	backendtest.Run(t, func(t *testing.T) backend.Backend { return openClusterTest(t, cl) })
}

func openClusterTest(t testing.TB, cl *redistest.Cluster) *Backend {
	t.Helper()
	b, err := Open(cl.URL(), WithCluster(true), WithPrefix(fmt.Sprint("c", prefixes.Add(1))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestClusterEveryOperation drives every operation over several queues (so
// several slots) of a 3-node Redis Cluster: a script touching keys of two
// slots would fail with CROSSSLOT.
func TestClusterEveryOperation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node Redis Cluster")
	}
	cl := redistest.StartCluster(t)
	b := openClusterTest(t, cl)
	ctx := t.Context()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var jobs []*backend.Job
	for i := range 50 {
		q := fmt.Sprint("queue-", i%5)
		j := &backend.Job{ID: fmt.Sprintf("01J000000000000000000000%02d", i), Task: fmt.Sprint("task-", i%3), Queue: q,
			State: backend.StateQueued, MaxAttempts: 2, Priority: i % 4, RunAt: t0, CreatedAt: t0}
		if i%10 == 0 {
			j.UniqueKey, j.UniqueUntil = "k", t0.Add(time.Hour)
		}
		jobs = append(jobs, j)
	}
	res, err := b.Enqueue(ctx, jobs)
	if err != nil {
		t.Fatal(err)
	}
	dups := 0
	for _, r := range res {
		if r.Duplicate {
			dups++
		}
	}
	// Key k is on jobs 0, 10, 20, 30, 40: all of queue-0, tasks 0, 1, 2, 0, 1.
	if dups != 2 {
		t.Fatalf("%d duplicates, want 2 (jobs 30 and 40)", dups)
	}
	claimed, err := b.Claim(ctx, backend.ClaimRequest{Limit: 20, Worker: "w", Now: t0, LeaseFor: time.Minute})
	if err != nil || len(claimed) != 20 {
		t.Fatalf("claim over every queue: %d, %v", len(claimed), err)
	}
	for _, j := range claimed {
		if j.Priority != 3 && j.Priority != 2 {
			t.Fatalf("claim across queues took priority %d before the higher ones", j.Priority)
		}
	}
	if lost, err := b.Extend(ctx, []backend.Lease{claimed[0].Lease(), claimed[1].Lease()}, t0.Add(2*time.Minute)); err != nil || len(lost) != 0 {
		t.Fatalf("extend: %v %v", lost, err)
	}
	if err := b.Release(ctx, []backend.Lease{claimed[2].Lease()}); err != nil {
		t.Fatal(err)
	}
	var outs []backend.Outcome
	for _, j := range claimed[3:10] {
		outs = append(outs, backend.Outcome{Lease: j.Lease(), State: backend.StateFailed, FinishedAt: t0})
	}
	if errs, err := b.Complete(ctx, outs); err != nil || errs[0] != nil {
		t.Fatalf("complete: %v %v", errs, err)
	}
	if err := b.Retry(ctx, claimed[3].ID, t0); err != nil {
		t.Fatal(err)
	}
	if err := b.Cancel(ctx, claimed[10].ID, t0); err != nil {
		t.Fatal(err)
	}
	if n, err := b.RecoverExpired(ctx, t0.Add(5*time.Minute), 5); err != nil || n != 11 {
		t.Fatalf("recover: %d, %v; want the 11 leases left", n, err)
	}
	if got, err := b.List(ctx, backend.ListFilter{Limit: 1000}); err != nil || len(got) != 48 {
		t.Fatalf("list: %d, %v", len(got), err)
	}
	// Search merges the state indexes of every queue (several slots) in
	// transactions; page by page it must return each job once, newest first.
	var seen []string
	for after := ""; ; {
		page, err := b.Search(ctx, backend.JobQuery{Limit: 7, After: after})
		if err != nil {
			t.Fatalf("search: %v", err)
		}
		for _, j := range page.Jobs {
			seen = append(seen, j.ID)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if len(seen) != 48 || !slices.IsSortedFunc(seen, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Fatalf("search pages gave %d ids (sorted newest first: %v), want the 48 jobs", len(seen), slices.IsSortedFunc(seen, func(a, b string) int { return strings.Compare(b, a) }))
	}
	stats, err := b.Stats(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, s := range stats {
		total += s.Count
	}
	if total != 48 {
		t.Fatalf("stats count %d jobs, want 48: %+v", total, stats)
	}
	if n, err := b.Purge(ctx, backend.PurgeFilter{States: []backend.State{backend.StateFailed, backend.StateCancelled}}); err != nil || n != 7 {
		t.Fatalf("purge: %d, %v; want 6 failed and 1 cancelled", n, err)
	}
	if _, err := b.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := b.List(ctx, backend.ListFilter{}); err != nil || len(got) != 0 {
		t.Fatalf("after DeleteAll: %d jobs, %v", len(got), err)
	}
}
