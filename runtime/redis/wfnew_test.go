package redis

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// TestRepairInterruptedWorkflowEnqueue: what a crash in the middle of
// EnqueueWorkflow leaves (simulated by running only its first parts) is
// found by the sweep once wfNewGrace has passed: a workflow whose steps'
// jobs were stored gets listed, what is left of one whose jobs were not is
// deleted; a workflow begun within the grace period, and one enqueued in
// full, are left as they are.
func TestRepairInterruptedWorkflowEnqueue(t *testing.T) {
	t0 := backendtest.Epoch()
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		var now atomic.Int64
		now.Store(t0.UnixNano())
		b := open(WithClock(func() time.Time { return time.Unix(0, now.Load()) }))
		ctx := t.Context()
		workflow := func(id string, steps ...string) *backend.Workflow {
			wf := &backend.Workflow{ID: id, CreatedAt: t0}
			for _, s := range steps {
				wf.Steps = append(wf.Steps, backend.Step{Job: backendtest.NewJob(s, "r", t0)})
			}
			return wf
		}
		begin := func(wf *backend.Workflow) {
			if _, err := b.beginWorkflow(ctx, wf); err != nil {
				t.Fatal(err)
			}
		}
		noJobs := workflow(backendtest.ID(1), backendtest.ID(2), backendtest.ID(3))
		begin(noJobs)
		stored := workflow(backendtest.ID(4), backendtest.ID(5), backendtest.ID(6))
		begin(stored)
		if _, err := b.enqueue(ctx, []*backend.Job{stored.Steps[0].Job, stored.Steps[1].Job}, true, parentSet(stored), stored.ID); err != nil {
			t.Fatal(err)
		}
		whole := roots(t, b, backendtest.ID(7), t0, backendtest.ID(8))
		if err := b.c.ZScore(ctx, b.wfNewKey(), whole.ID).Err(); !errors.Is(err, goredis.Nil) {
			t.Fatalf("a workflow enqueued in full is still in wfnew (%v)", err)
		}
		now.Store(t0.Add(wfNewGrace / 2).UnixNano())
		recent := workflow(backendtest.ID(9), backendtest.ID(10))
		begin(recent)

		sweep := func() {
			if _, err := b.Prune(ctx); err != nil {
				t.Fatal(err)
			}
		}
		sweep() // within the grace period of all: nothing changes
		for _, wf := range []*backend.Workflow{noJobs, stored, recent} {
			if b.c.Exists(ctx, b.wfKey(wf.ID)).Val() != 1 {
				t.Fatalf("workflow %s's graph went within the grace period", wf.ID)
			}
		}
		if list, err := b.ListWorkflows(ctx, 0); err != nil || len(list) != 1 || list[0].ID != whole.ID {
			t.Fatalf("ListWorkflows within the grace period = %+v, %v; want only %s", list, err, whole.ID)
		}

		now.Store(t0.Add(wfNewGrace + time.Second).UnixNano())
		sweep()
		wantWorkflowGone(t, b, noJobs, "an enqueue interrupted before its jobs, after the grace period")
		wantSteps(t, b, stored, "an enqueue interrupted after its jobs, after the grace period", backendtest.ID(5), backendtest.ID(6))
		if list, err := b.ListWorkflows(ctx, 0); err != nil || len(list) != 2 || list[0].ID != whole.ID || list[1].ID != stored.ID {
			t.Fatalf("ListWorkflows after the repair = %+v, %v; want %s and %s", list, err, whole.ID, stored.ID)
		}
		if b.c.Exists(ctx, b.wfKey(recent.ID)).Val() != 1 {
			t.Fatal("a workflow begun within the grace period was deleted")
		}
		if got := b.c.ZRange(ctx, b.wfNewKey(), 0, -1).Val(); len(got) != 1 || got[0] != recent.ID {
			t.Fatalf("wfnew after the repair = %v, want only %s", got, recent.ID)
		}
	})
}

// TestEnqueueWorkflowIDTaken: a workflow whose id is taken is refused, the
// one holding the id stays as it was, and nothing is left in wfnew.
func TestEnqueueWorkflowIDTaken(t *testing.T) {
	t0 := backendtest.Epoch()
	b := openTest(t, redistest.Start(t))
	ctx := t.Context()
	first := roots(t, b, backendtest.ID(1), t0, backendtest.ID(2))
	second := &backend.Workflow{ID: first.ID, CreatedAt: t0, Steps: []backend.Step{{Job: backendtest.NewJob(backendtest.ID(3), "r", t0)}}}
	if err := b.EnqueueWorkflow(ctx, second); err == nil || !strings.Contains(err.Error(), "a workflow with this id exists") {
		t.Fatalf("EnqueueWorkflow with a taken id = %v, want an error saying so", err)
	}
	wantSteps(t, b, first, "the workflow holding the id", backendtest.ID(2))
	if _, err := b.Get(ctx, backendtest.ID(3)); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("a step of the refused workflow was stored: %v", err)
	}
	if n := b.c.ZCard(ctx, b.wfNewKey()).Val(); n != 0 {
		t.Fatalf("wfnew holds %d members after a refused and a whole enqueue, want 0", n)
	}
}
