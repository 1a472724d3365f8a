package file

import (
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// TestWorkflowRepairAfterCrash: a process that died after storing a parent's
// success and before releasing its child (the child's file still pending)
// leaves nothing lost: the next RecoverExpired releases the child, once.
func TestWorkflowRepairAfterCrash(t *testing.T) {
	b := openTest(t)
	ctx := t.Context()
	now := backendtest.Epoch()
	a := backendtest.NewJob(backendtest.ID(1), "a", now)
	c := backendtest.NewJob(backendtest.ID(2), "c", now)
	c.State = backend.StatePending
	wf := &backend.Workflow{ID: backendtest.ID(3), CreatedAt: now, Steps: []backend.Step{
		{Job: a}, {Job: c, Parents: []backend.Edge{{Parent: a.ID}}},
	}}
	if err := b.EnqueueWorkflow(ctx, wf); err != nil {
		t.Fatal(err)
	}
	pending, err := readFile(b.path(pendingDir, c.ID))
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := b.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Now: now, LeaseFor: time.Minute})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %d jobs, %v", len(jobs), err)
	}
	errs, err := b.Complete(ctx, []backend.Outcome{{Lease: jobs[0].Lease(), State: backend.StateSucceeded, FinishedAt: now}})
	if err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	// The crash: the child's release never happened.
	got, err := b.Get(ctx, c.ID)
	if err != nil || got.State != backend.StateQueued {
		t.Fatalf("child after its parent succeeded: %v, %v", got, err)
	}
	ready, _, err := b.locate(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := remove(ready); err != nil {
		t.Fatal(err)
	}
	if err := b.writeAtomic(b.path(pendingDir, c.ID), pending); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Get(ctx, c.ID); got.State != backend.StatePending {
		t.Fatalf("simulated crash: child is %s, want pending", got.State)
	}
	for range 2 { // twice: the second finds nothing to do
		if _, err := b.RecoverExpired(ctx, now.Add(time.Second), 5); err != nil {
			t.Fatal(err)
		}
	}
	jobs, err = b.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Now: now.Add(time.Hour), LeaseFor: time.Minute})
	if err != nil || len(jobs) != 1 || jobs[0].ID != c.ID {
		t.Fatalf("claim after the repair = %v, %v; want the child once", jobs, err)
	}
}
