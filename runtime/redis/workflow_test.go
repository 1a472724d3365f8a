package redis

import (
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// TestWorkflowRepairAfterCrash: a process that died after storing a parent's
// success and before releasing its child (the child still pending) leaves
// nothing lost: the next RecoverExpired releases the child, once.
func TestWorkflowRepairAfterCrash(t *testing.T) {
	srv := redistest.Start(t)
	b := openTest(t, srv)
	ctx := t.Context()
	now := backendtest.Epoch()
	a := backendtest.NewJob(backendtest.ID(1), "a", now)
	c := backendtest.NewJob(backendtest.ID(2), "c", now)
	c.State = backend.StatePending
	c.Queue = "other" // another queue: on a Cluster another slot
	wf := &backend.Workflow{ID: backendtest.ID(3), CreatedAt: now, Steps: []backend.Step{
		{Job: a}, {Job: c, Parents: []backend.Edge{{Parent: a.ID}}},
	}}
	if err := b.EnqueueWorkflow(ctx, wf); err != nil {
		t.Fatal(err)
	}
	// The crash: the parent's success is stored by the completion script
	// alone, as if the process died before settling its children.
	jobs, err := b.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Now: now, LeaseFor: time.Minute})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %d jobs, %v", len(jobs), err)
	}
	// ARGV as completeScript documents it: the header, then one outcome
	// without an attempt record or aggregates.
	if _, err := b.run(ctx, completeScript, b.meta(a.Queue), b.qp(a.Queue), b.ch, 0, "", 1, 3600, 1,
		a.ID, jobs[0].LeaseToken, string(backend.StateSucceeded), timeKey(now), timeKey(now), "", "", 0, "", "", 0); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, c.ID); err != nil || got.State != backend.StatePending {
		t.Fatalf("child after the simulated crash: %v, %v; want pending", got, err)
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
