package redis

import (
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// TestEndedWithoutFinishTime: a job cancelled at the zero time has no
// finish time, the oldest of ended jobs (backend.NewerEnded); retention
// finds it through the done index like any ended job: a trim by count
// deletes it first, and a purge by age deletes it (it counts as ended
// before any cutoff).
func TestEndedWithoutFinishTime(t *testing.T) {
	srv := redistest.Start(t)
	b := openTest(t, srv)
	ctx := t.Context()
	t0 := backendtest.Epoch()
	var ids []string
	for i := range 3 {
		j := backendtest.NewJob(backendtest.ID(uint64(i+1)), "t", t0)
		ids = append(ids, j.ID)
		if _, err := b.Enqueue(ctx, []*backend.Job{j}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Cancel(ctx, ids[0], t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := b.Cancel(ctx, ids[1], time.Time{}); err != nil { // no finish time
		t.Fatal(err)
	}
	if err := b.Cancel(ctx, ids[2], t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := b.TrimEnded(ctx, 2, backend.PurgeFilter{}); err != nil || n != 1 {
		t.Fatalf("TrimEnded(2) = %d, %v; want the job without a finish time deleted", n, err)
	}
	if _, err := b.Get(ctx, ids[1]); err == nil {
		t.Fatalf("TrimEnded(2) kept the job without a finish time, the oldest")
	}
	// And by age, with the trim's choice out of the way.
	j := backendtest.NewJob(backendtest.ID(9), "t", t0)
	if _, err := b.Enqueue(ctx, []*backend.Job{j}); err != nil {
		t.Fatal(err)
	}
	if err := b.Cancel(ctx, j.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.PurgeEnded(ctx, t0, backend.PurgeFilter{}); err != nil || n != 1 {
		t.Fatalf("PurgeEnded(t0) = %d, %v; want the job without a finish time deleted", n, err)
	}
	if left, err := b.c.ZCard(ctx, b.qp(j.Queue)+"done").Result(); err != nil || left != 2 {
		t.Fatalf("done index after the deletions = %d members, %v; want the 2 jobs left", left, err)
	}
}
