package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// flowStep is a step of flowOf: its job's id and its parents' ids.
type flowStep struct {
	id      string
	parents []string
}

// flowOf builds a workflow of id with steps, in that order: jobs of queue
// q, pending when they have parents.
func flowOf(id string, steps ...flowStep) *backend.Workflow {
	wf := &backend.Workflow{ID: id, Name: "gc", CreatedAt: t0}
	for _, s := range steps {
		j := backendtest.NewJob(s.id, "t", t0)
		j.Queue = "q"
		st := backend.Step{Job: j}
		if len(s.parents) > 0 {
			j.State = backend.StatePending
		}
		for _, p := range s.parents {
			st.Parents = append(st.Parents, backend.Edge{Parent: p})
		}
		wf.Steps = append(wf.Steps, st)
	}
	return wf
}

// workflowRows returns the job ids of the stored workflow_steps rows, the
// stored edges as "parent>child" and the stored workflows, each sorted.
func workflowRows(t *testing.T, b *Backend) (steps, edges, wfs []string) {
	t.Helper()
	var err error
	if steps, err = queryColumn[string](t.Context(), b.read, "steps", `SELECT job_id FROM workflow_steps ORDER BY 1`, nil); err != nil {
		t.Fatal(err)
	}
	if edges, err = queryColumn[string](t.Context(), b.read, "edges", `SELECT parent || '>' || child FROM workflow_edges ORDER BY 1`, nil); err != nil {
		t.Fatal(err)
	}
	if wfs, err = queryColumn[string](t.Context(), b.read, "workflows", `SELECT id FROM workflows ORDER BY 1`, nil); err != nil {
		t.Fatal(err)
	}
	return steps, edges, wfs
}

// wantWorkflowRows fails t unless the workflow tables hold exactly these rows.
func wantWorkflowRows(t *testing.T, b *Backend, why string, steps, edges, wfs []string) {
	t.Helper()
	s, e, w := workflowRows(t, b)
	for _, c := range []struct {
		what      string
		got, want []string
	}{{"workflow_steps", s, steps}, {"workflow_edges", e, edges}, {"workflows", w, wfs}} {
		slices.Sort(c.want)
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: %s holds %v, want %v", why, c.what, c.got, c.want)
		}
	}
}

// stepIDs returns the job ids of a workflow's steps as GetWorkflow reads
// them, or nil with the error.
func stepIDs(b *Backend, id string) ([]string, error) {
	info, err := b.GetWorkflow(context.Background(), id)
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, s := range info.Steps {
		ids = append(ids, s.Job.ID)
	}
	return ids, nil
}

// TestWorkflowGCAcrossBatches deletes, by each of the calls that delete jobs
// (PurgeEnded, TrimEnded, Purge), more jobs than one transaction deletes
// (purgeBatch), among them: a workflow within the first batch (gone with
// it), a workflow whose steps span the first two batches (kept after the
// first, with the steps of the second and the edges into them, an edge
// from a deleted parent included; gone with the second), and a workflow
// one of whose steps is not deleted (kept, with that step and its edge
// from its deleted parent). The counters match a scan.
func TestWorkflowGCAcrossBatches(t *testing.T) {
	id := func(n int) string { return backendtest.ID(uint64(n)) }
	const plain = purgeBatch - 4 // rowids 3..purgeBatch-2 (the first flow takes 1 and 2)
	for _, c := range []struct {
		name string
		del  func(ctx context.Context, b *Backend) (int, error)
	}{
		{"PurgeEnded", func(ctx context.Context, b *Backend) (int, error) {
			return b.PurgeEnded(ctx, t0.AddDate(1, 0, 0), backend.PurgeFilter{})
		}},
		{"TrimEnded", func(ctx context.Context, b *Backend) (int, error) {
			return b.TrimEnded(ctx, 0, backend.PurgeFilter{})
		}},
		{"Purge", func(ctx context.Context, b *Backend) (int, error) {
			// Every job not running: the kept flow's last step is running.
			return b.Purge(ctx, backend.PurgeFilter{})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := openTest(t)
			ctx := context.Background()
			first := flowOf(id(1_000_001), flowStep{id: id(1)}, flowStep{id: id(2), parents: []string{id(1)}})
			// Rowids purgeBatch-1 .. purgeBatch+2: a and b in the first
			// batch, c and d in the second.
			span := flowOf(id(1_000_002), flowStep{id: id(100_001)}, flowStep{id: id(100_002), parents: []string{id(100_001)}},
				flowStep{id: id(100_003), parents: []string{id(100_002)}},
				flowStep{id: id(100_004), parents: []string{id(100_001), id(100_003)}})
			kept := flowOf(id(1_000_003), flowStep{id: id(200_001)}, flowStep{id: id(200_002), parents: []string{id(200_001)}})
			if err := b.EnqueueWorkflow(ctx, first); err != nil {
				t.Fatal(err)
			}
			jobs := newJobs(3, plain, "q")
			mustEnqueue(t, b, jobs)
			for _, wf := range []*backend.Workflow{span, kept} {
				if err := b.EnqueueWorkflow(ctx, wf); err != nil {
					t.Fatal(err)
				}
			}
			mustEnqueue(t, b, newJobs(300_001, 10, "q")) // after them
			// Every job ended but the kept flow's second step, which runs;
			// every edge counted, as the releases would have left them.
			if _, err := b.write.Exec(`UPDATE workflow_edges SET done = 1`); err != nil {
				t.Fatal(err)
			}
			finishAll(t, b, `CASE id WHEN '`+id(200_002)+`' THEN 'running' ELSE 'succeeded' END`, `rowid * 1000`)
			var rowid int64
			if err := b.read.QueryRow(`SELECT rowid FROM jobs WHERE id = ?`, id(100_003)).Scan(&rowid); err != nil || rowid != purgeBatch+1 {
				t.Fatalf("step c has rowid %d, %v; want %d (the second batch)", rowid, err, purgeBatch+1)
			}

			batches := 0
			b.beforeDelete = func() {
				if batches++; batches != 2 {
					return
				}
				// The first batch is deleted: the first flow is gone, the
				// spanning one keeps c and d, with c's edge from b.
				if ids, err := stepIDs(b, first.ID); !errors.Is(err, backend.ErrWorkflowNotFound) {
					t.Errorf("after the first batch: GetWorkflow of the flow within it = %v, %v; want ErrWorkflowNotFound", ids, err)
				}
				if ids, err := stepIDs(b, span.ID); err != nil || !slices.Equal(ids, []string{id(100_003), id(100_004)}) {
					t.Errorf("after the first batch: GetWorkflow of the spanning flow = %v, %v; want steps c and d", ids, err)
				}
				wantWorkflowRows(t, b, "after the first batch",
					[]string{id(100_003), id(100_004), id(200_001), id(200_002)},
					[]string{id(100_002) + ">" + id(100_003), id(100_001) + ">" + id(100_004), id(100_003) + ">" + id(100_004),
						id(200_001) + ">" + id(200_002)},
					[]string{span.ID, kept.ID})
			}
			n, err := c.del(ctx, b)
			if want := 2 + plain + 4 + 1 + 10; err != nil || n != want {
				t.Fatalf("deleted %d, %v; want %d", n, err, want)
			}
			if batches != 2 {
				t.Fatalf("deleted in %d batches, want 2", batches)
			}
			if ids, err := stepIDs(b, span.ID); !errors.Is(err, backend.ErrWorkflowNotFound) {
				t.Errorf("GetWorkflow of the spanning flow = %v, %v; want ErrWorkflowNotFound", ids, err)
			}
			info, err := b.GetWorkflow(ctx, kept.ID)
			if err != nil || len(info.Steps) != 1 || info.Steps[0].Job.ID != id(200_002) ||
				!slices.Equal(info.Steps[0].Parents, []backend.Edge{{Parent: id(200_001)}}) {
				t.Errorf("GetWorkflow of the kept flow = %+v, %v; want its running step with its deleted parent", info, err)
			}
			wantWorkflowRows(t, b, "after the delete", []string{id(200_002)}, []string{id(200_001) + ">" + id(200_002)}, []string{kept.ID})
			list, err := b.ListWorkflows(ctx, 1)
			if err != nil || len(list) != 1 || list[0].ID != kept.ID || list[0].Steps != 1 {
				t.Errorf("ListWorkflows(1) = %+v, %v; want the kept flow with 1 step", list, err)
			}
			checkCounts(t, b, c.name)
		})
	}
}

// TestWorkflowGCPartial purges some steps of workflows by id: each keeps
// its record with the steps left, can be listed and cancelled, and goes
// with its last step; the purge of a root cancels its pending child.
func TestWorkflowGCPartial(t *testing.T) {
	b := openTest(t)
	ctx := context.Background()
	id := func(n int) string { return backendtest.ID(uint64(n)) }
	wf := flowOf(id(1000), flowStep{id: id(1)}, flowStep{id: id(2), parents: []string{id(1)}}, flowStep{id: id(3)})
	if err := b.EnqueueWorkflow(ctx, wf); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Purge(ctx, backend.PurgeFilter{IDs: []string{id(1)}}); err != nil || n != 1 {
		t.Fatalf("Purge of a queued root = %d, %v; want 1", n, err)
	}
	if ids, err := stepIDs(b, wf.ID); err != nil || !slices.Equal(ids, []string{id(2), id(3)}) {
		t.Errorf("GetWorkflow after its root was purged = %v, %v; want the two other steps", ids, err)
	}
	wantWorkflowRows(t, b, "after the root's purge", []string{id(2), id(3)}, []string{id(1) + ">" + id(2)}, []string{wf.ID})
	if j, err := b.Get(ctx, id(2)); err != nil || j.State != backend.StateCancelled || j.Error != backend.ParentDeleted(id(1)) {
		t.Errorf("the child after its root was purged = %+v, %v; want cancelled, its parent deleted", j, err)
	}
	if n, err := b.CancelWorkflow(ctx, wf.ID, t0); err != nil || n != 1 {
		t.Errorf("CancelWorkflow after its root was purged = %d, %v; want the other root cancelled", n, err)
	}
	if n, err := b.Purge(ctx, backend.PurgeFilter{IDs: []string{id(2)}}); err != nil || n != 1 {
		t.Fatalf("Purge of the child = %d, %v; want 1", n, err)
	}
	wantWorkflowRows(t, b, "after the child's purge", []string{id(3)}, nil, []string{wf.ID})
	if list, err := b.ListWorkflows(ctx, 0); err != nil || len(list) != 1 || list[0].Steps != 1 {
		t.Errorf("ListWorkflows = %+v, %v; want the workflow with 1 step", list, err)
	}
	if n, err := b.PurgeEnded(ctx, t0.AddDate(1, 0, 0), backend.PurgeFilter{}); err != nil || n != 1 {
		t.Fatalf("PurgeEnded of the last step = %d, %v; want 1", n, err)
	}
	wantWorkflowRows(t, b, "after the last step's purge", nil, nil, nil)
	if _, err := b.CancelWorkflow(ctx, wf.ID, t0); !errors.Is(err, backend.ErrWorkflowNotFound) {
		t.Errorf("CancelWorkflow after its last step went = %v; want ErrWorkflowNotFound", err)
	}
	checkCounts(t, b, "the purges")
}

// TestWorkflowGCMigration opens a file written at the previous schema
// version by a build that deleted jobs without their workflow rows: steps
// whose job is gone, edges whose child is gone (one whose parent alone is
// gone stays) and workflows without a step left are deleted by the
// migration, the rest is kept, and ListWorkflows' limit counts only the
// workflows left.
func TestWorkflowGCMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	raw := schemaBefore(t, path, sqlWorkflowGCMigration, "workflow deletion rule")
	// w1 is whole (a1 > b1); w2's root's job is gone (a2 > b2: the step
	// a2 goes, the edge into b2 stays); every job of w3 (a3 > b3) and of
	// w4, the newest, is gone: they go.
	for _, w := range []string{"w1", "w2", "w3", "w4"} {
		if _, err := raw.Exec(`INSERT INTO workflows (id, created_at) VALUES (?, 1)`, w); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range []struct{ job, wf string }{{"a1", "w1"}, {"b1", "w1"}, {"a2", "w2"}, {"b2", "w2"}, {"a3", "w3"}, {"b3", "w3"}, {"a4", "w4"}} {
		if _, err := raw.Exec(`INSERT INTO workflow_steps (job_id, workflow_id, seq, input, waiting) VALUES (?, ?, ?, 0, 0)`, s.job, s.wf, i); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range [][2]string{{"a1", "b1"}, {"a2", "b2"}, {"a3", "b3"}} {
		if _, err := raw.Exec(`INSERT INTO workflow_edges (parent, child, pos, ignore_failure, order_only, done) VALUES (?, ?, 0, 0, 0, 1)`, e[0], e[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, j := range []string{"a1", "b1", "b2"} {
		if _, err := raw.Exec(`INSERT INTO jobs (id, task, queue, state, run_at, created_at) VALUES (?, 't', 'q', 'succeeded', 1, 1)`, j); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	wantWorkflowRows(t, b, "after the migration", []string{"a1", "b1", "b2"}, []string{"a1>b1", "a2>b2"}, []string{"w1", "w2"})
	list, err := b.ListWorkflows(context.Background(), 1)
	if err != nil || len(list) != 1 || list[0].ID != "w2" || list[0].Steps != 1 {
		t.Errorf("ListWorkflows(1) = %+v, %v; want w2 with its one step left", list, err)
	}
}

// TestListWorkflowsSkipsEmpty: workflows rows without a stored step (written
// behind the store's back, newer than the whole workflow) are not listed
// and do not take ListWorkflows' limit; GetWorkflow and CancelWorkflow do
// not find them.
func TestListWorkflowsSkipsEmpty(t *testing.T) {
	b := openTest(t)
	ctx := context.Background()
	wf := flowOf(backendtest.ID(1000), flowStep{id: backendtest.ID(1)})
	if err := b.EnqueueWorkflow(ctx, wf); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`INSERT INTO workflows (id, created_at) VALUES ('zz-no-step', 1), ('zz-no-job', 1)`,
		`INSERT INTO workflow_steps (job_id, workflow_id, seq, input, waiting) VALUES ('gone', 'zz-no-job', 0, 0, 0)`} {
		if _, err := b.write.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	list, err := b.ListWorkflows(ctx, 1)
	if err != nil || len(list) != 1 || list[0].ID != wf.ID {
		t.Errorf("ListWorkflows(1) = %+v, %v; want %s", list, err, wf.ID)
	}
	for _, id := range []string{"zz-no-step", "zz-no-job"} {
		if _, err := b.GetWorkflow(ctx, id); !errors.Is(err, backend.ErrWorkflowNotFound) {
			t.Errorf("GetWorkflow(%s) = %v; want ErrWorkflowNotFound", id, err)
		}
		if _, err := b.CancelWorkflow(ctx, id, t0); !errors.Is(err, backend.ErrWorkflowNotFound) {
			t.Errorf("CancelWorkflow(%s) = %v; want ErrWorkflowNotFound", id, err)
		}
	}
}

// BenchmarkPurgeEndedBesideWorkflow is BenchmarkPurgeEnded in a store that
// also holds a live workflow step: each batch's delete then looks up every
// deleted job in workflow_steps (sqlStepReturning), what a store mixing
// workflows and plain jobs pays for the deletion rule.
//
//	NUVOM_BENCH_PURGE_JOBS=300000 go test ./runtime/sqlite -run '^$' -bench PurgeEndedBesideWorkflow -benchtime 1x
func BenchmarkPurgeEndedBesideWorkflow(b *testing.B) {
	benchFinished(b, func(be *Backend, now time.Time, n int) []timedStep {
		wf := flowOf(backendtest.ID(1<<40), flowStep{id: backendtest.ID(1<<40 + 1)})
		if err := be.EnqueueWorkflow(context.Background(), wf); err != nil {
			b.Fatal(err)
		}
		return []timedStep{
			{"find-nothing-ms", time.Millisecond, 0, func(ctx context.Context) (int, error) {
				return be.PurgeEnded(ctx, now.Add(-time.Hour), backend.PurgeFilter{})
			}},
			{"delete-all-ms", time.Millisecond, n, func(ctx context.Context) (int, error) {
				return be.PurgeEnded(ctx, now.Add(time.Hour), backend.PurgeFilter{States: []backend.State{backend.StateSucceeded}})
			}},
		}
	})
}
