package redis

import (
	"errors"
	"testing"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// TestUndoEnqueue checks that undoEnqueue, the rollback of an Enqueue that
// failed part-way (on a Cluster, one queue's script), deletes the jobs it
// is given: their records, indexes and locations.
func TestUndoEnqueue(t *testing.T) {
	b := openTest(t, redistest.Start(t))
	ctx := t.Context()
	t0 := backendtest.Epoch()
	jobs := []*backend.Job{backendtest.NewJob(backendtest.ID(1), "t", t0), backendtest.NewJob(backendtest.ID(2), "t", t0)}
	jobs[1].Queue = "other"
	if _, err := b.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	b.undoEnqueue(jobs, map[string][]int{"default": {0}, "other": {1}}, []string{"default", "other"})
	for _, j := range jobs {
		if _, err := b.Get(ctx, j.ID); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("after undoEnqueue, Get(%s) = %v, want ErrNotFound", j.ID, err)
		}
	}
	stats, err := b.Stats(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 0 {
		t.Errorf("after undoEnqueue, stats = %+v, want none", stats)
	}
}
