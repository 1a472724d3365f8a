package file

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// TestWorkflowLeftoversAreSwept: a step whose job was deleted without its
// step file (a crash between the two, or a build before the deletion rule)
// is found by the next retention pass, which deletes the step file and,
// with the last step, the workflow's graph; a workflow with a step left
// keeps its graph.
func TestWorkflowLeftoversAreSwept(t *testing.T) {
	b := openTest(t)
	ctx := t.Context()
	now := backendtest.Epoch()
	flow := func(n uint64) *backend.Workflow {
		a := backendtest.NewJob(backendtest.ID(n), "a", now)
		c := backendtest.NewJob(backendtest.ID(n+1), "c", now)
		c.State = backend.StatePending
		wf := &backend.Workflow{ID: backendtest.ID(n + 2), CreatedAt: now, Steps: []backend.Step{
			{Job: a}, {Job: c, Parents: []backend.Edge{{Parent: a.ID}}},
		}}
		if err := b.EnqueueWorkflow(ctx, wf); err != nil {
			t.Fatal(err)
		}
		return wf
	}
	gone, kept := flow(1), flow(10)
	// What a crash leaves: the jobs and their id markers deleted, the step
	// files and the graph not.
	crash := func(id string) {
		t.Helper()
		p, _, err := b.locate(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := remove(p); err != nil {
			t.Fatal(err)
		}
		if err := remove(b.path(idsDir, id)); err != nil {
			t.Fatal(err)
		}
	}
	crash(gone.Steps[0].Job.ID)
	crash(gone.Steps[1].Job.ID)
	crash(kept.Steps[1].Job.ID)
	if _, err := b.GetWorkflow(ctx, gone.ID); !errors.Is(err, backend.ErrWorkflowNotFound) {
		t.Errorf("GetWorkflow of a workflow with no step left, before the sweep = %v; want ErrWorkflowNotFound", err)
	}
	if _, err := b.CancelWorkflow(ctx, gone.ID, now); !errors.Is(err, backend.ErrWorkflowNotFound) {
		t.Errorf("CancelWorkflow of a workflow with no step left, before the sweep = %v; want ErrWorkflowNotFound", err)
	}
	if n, err := b.PurgeEnded(ctx, now, backend.PurgeFilter{}); err != nil || n != 0 {
		t.Fatalf("PurgeEnded = %d, %v; want nothing deleted", n, err)
	}
	for _, p := range []string{b.path(flowsDir, gone.ID), b.path(stepsDir, gone.Steps[0].Job.ID),
		b.path(stepsDir, gone.Steps[1].Job.ID), b.path(stepsDir, kept.Steps[1].Job.ID)} {
		if exists(p) {
			t.Errorf("%s is left after the sweep", p)
		}
	}
	for _, p := range []string{b.path(flowsDir, kept.ID), b.path(stepsDir, kept.Steps[0].Job.ID)} {
		if !exists(p) {
			t.Errorf("%s of a workflow with a step left was deleted", p)
		}
	}
	if info, err := b.GetWorkflow(ctx, kept.ID); err != nil || len(info.Steps) != 1 {
		t.Errorf("GetWorkflow of the workflow with a step left = %+v, %v; want its one step", info, err)
	}
}

// TestWorkflowCrashBeforeMarkerRemoval: deleteStored removes a job's file,
// then its id marker. A crash between the two leaves the marker of a job
// that no longer exists: CancelWorkflow, like GetWorkflow, does not find the
// workflow, and a retention pass deletes its graph and step file once the
// workflow is older than markerGrace (younger, it may be being enqueued).
func TestWorkflowCrashBeforeMarkerRemoval(t *testing.T) {
	b := openTest(t)
	ctx := t.Context()
	now := backendtest.Epoch()
	a := backendtest.NewJob(backendtest.ID(1), "a", now)
	wf := &backend.Workflow{ID: backendtest.ID(2), CreatedAt: now, Steps: []backend.Step{{Job: a}}}
	if err := b.EnqueueWorkflow(ctx, wf); err != nil {
		t.Fatal(err)
	}
	// The crash inside deleteStored: the job file is gone, its marker not.
	p, _, err := b.locate(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetWorkflow(ctx, wf.ID); !errors.Is(err, backend.ErrWorkflowNotFound) {
		t.Fatalf("GetWorkflow = %v; want ErrWorkflowNotFound", err)
	}
	if n, err := b.CancelWorkflow(ctx, wf.ID, now); !errors.Is(err, backend.ErrWorkflowNotFound) {
		t.Errorf("CancelWorkflow of a workflow GetWorkflow does not find = %d, %v; want ErrWorkflowNotFound", n, err)
	}
	if _, err := b.TrimEnded(ctx, 0, backend.PurgeFilter{}); err != nil {
		t.Fatal(err)
	}
	if !exists(b.path(flowsDir, wf.ID)) || !exists(b.path(idsDir, a.ID)) {
		t.Fatal("a retention pass took the marker of a workflow younger than markerGrace, which may be being enqueued")
	}
	old := time.Now().Add(-markerGrace - time.Minute)
	if err := os.Chtimes(b.path(flowsDir, wf.ID), old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PurgeEnded(ctx, now.AddDate(1, 0, 0), backend.PurgeFilter{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{b.path(flowsDir, wf.ID), b.path(stepsDir, a.ID), b.path(idsDir, a.ID)} {
		if exists(p) {
			t.Errorf("%s is left after a retention pass, though no job of the workflow exists", p)
		}
	}
}

// TestGetWithStaleListing: get with a listing of ready/ and scheduled/
// made before jobs moved (GetWorkflow lists them once for all its steps)
// still finds each job: one listed at a path it left, and one that moved
// into ready/ after the listing.
func TestGetWithStaleListing(t *testing.T) {
	b := openTest(t)
	ctx := t.Context()
	now := backendtest.Epoch()
	a := backendtest.NewJob(backendtest.ID(1), "a", now)
	c := backendtest.NewJob(backendtest.ID(2), "c", now)
	if _, err := b.Enqueue(ctx, []*backend.Job{a, c}); err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{
		a.ID: b.path(readyDir, "gone", "0000000000000000-0000000000000000-"+a.ID), // stale
		// c is missing, as if it moved into ready/ after the listing
	}
	for _, id := range []string{a.ID, c.ID} {
		j, err := b.get(ctx, id, &listed)
		if err != nil || j.ID != id || j.State != backend.StateQueued {
			t.Errorf("get(%s) with a stale listing = %+v, %v; want the queued job", id, j, err)
		}
	}
	if _, err := b.get(ctx, backendtest.ID(3), &listed); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("get of an unknown id with a listing = %v; want ErrNotFound", err)
	}
}
