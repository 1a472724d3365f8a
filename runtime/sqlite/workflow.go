package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Workflows are stored in three tables (migration "workflows"): the workflow,
// its steps (the job, its input and how many parents it still waits for) and
// its edges (parent, child, position among the child's parents, whether a
// failure is ignored, and whether the parent's end was counted). A step
// waiting for its parents is a row of jobs in state 'pending', which no claim
// index holds: claims never see it. Releasing children happens in the
// transaction that ends the parent (Complete, RecoverExpired, Cancel).

var _ backend.Workflows = (*Backend)(nil)

// Workflow statements, prepared on the writer at Open.
const (
	// sqlAnyOpenEdge probes workflow_edges_open: whether any workflow step
	// still waits on a parent. Without one, settle has nothing to do, and a
	// completion skips listing its jobs for sqlSettleEdges.
	sqlAnyOpenEdge = `SELECT EXISTS (SELECT 1 FROM workflow_edges WHERE done = 0)`
	// sqlSettleEdges marks the open edges from the parents named in ?1 (a
	// JSON array of ids) counted and returns them. workflow_edges_open holds
	// only open edges, so without workflows this is one empty index probe.
	sqlSettleEdges = `UPDATE workflow_edges SET done = 1
		WHERE done = 0 AND parent IN (SELECT value FROM json_each(?1))
		RETURNING parent, child, ignore_failure`
	sqlCancelPending = `UPDATE jobs SET state = 'cancelled', finished_at = ?1, error = ?2
		WHERE id = ?3 AND state = 'pending' RETURNING queue`
	sqlStepArrived = `UPDATE workflow_steps SET waiting = waiting - 1 WHERE job_id = ?1 RETURNING waiting, input`
	sqlPendingArgs = `SELECT args FROM jobs WHERE id = ?1 AND state = 'pending'`
	sqlParentsOut  = `SELECT j.result FROM workflow_edges e LEFT JOIN jobs j ON j.id = e.parent
		WHERE e.child = ?1 AND e.order_only = 0 ORDER BY e.pos`
	sqlReleaseStep = `UPDATE jobs SET args = ?1,
			state = CASE WHEN run_at > ?2 THEN 'scheduled' ELSE 'queued' END, run_at = max(run_at, ?2)
		WHERE id = ?3 AND state = 'pending' RETURNING queue, state`
)

// flowStmts are the prepared statements of the workflow release.
type flowStmts struct {
	anyOpen, settle, cancelPending, arrived, pendingArgs, parentsOut, release *sql.Stmt
}

func (f *flowStmts) prepare(db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&f.anyOpen, sqlAnyOpenEdge}, {&f.settle, sqlSettleEdges}, {&f.cancelPending, sqlCancelPending}, {&f.arrived, sqlStepArrived},
		{&f.pendingArgs, sqlPendingArgs}, {&f.parentsOut, sqlParentsOut}, {&f.release, sqlReleaseStep},
	} {
		st, err := db.Prepare(p.sql)
		if err != nil {
			f.close()
			return fmt.Errorf("prepare %q: %w", firstLine(p.sql), err)
		}
		*p.dst = st
	}
	return nil
}

func (f *flowStmts) close() {
	for _, st := range []*sql.Stmt{f.anyOpen, f.settle, f.cancelPending, f.arrived, f.pendingArgs, f.parentsOut, f.release} {
		if st != nil {
			st.Close()
		}
	}
}

// ended is a job that reached a final state in the current transaction.
type ended struct {
	id    string
	state backend.State
	at    int64
}

// settle applies the workflow release rule (backend.Workflows) to the jobs
// that ended in tx: pending children of a parent that did not succeed are
// cancelled (unless their edge ignores failure), and children whose last
// parent ended are queued with their input. It records the steps it moves
// in cd and reports whether it queued any.
func (b *Backend) settle(ctx context.Context, tx *sql.Tx, jobs []ended, cd counts) (bool, error) {
	if len(jobs) == 0 || b.flow.settle == nil {
		return false, nil
	}
	var open bool
	if err := tx.StmtContext(ctx, b.flow.anyOpen).QueryRowContext(ctx).Scan(&open); err != nil {
		return false, fmt.Errorf("settle workflow steps: look for open edges: %w", err)
	}
	if !open {
		return false, nil
	}
	released := false
	for len(jobs) > 0 {
		byID := make(map[string]ended, len(jobs))
		ids := make([]string, len(jobs))
		for i, e := range jobs {
			byID[e.id] = e
			ids[i] = e.id
		}
		list, err := json.Marshal(ids)
		if err != nil {
			return false, fmt.Errorf("settle workflow steps: %w", err)
		}
		type edge struct {
			parent, child string
			ignore        bool
		}
		var edges []edge
		rows, err := tx.StmtContext(ctx, b.flow.settle).QueryContext(ctx, string(list))
		if err != nil {
			return false, fmt.Errorf("settle workflow steps: %w", err)
		}
		for rows.Next() {
			var e edge
			if err := rows.Scan(&e.parent, &e.child, &e.ignore); err != nil {
				rows.Close()
				return false, fmt.Errorf("settle workflow steps: %w", err)
			}
			edges = append(edges, e)
		}
		if err := rows.Close(); err != nil {
			return false, fmt.Errorf("settle workflow steps: %w", err)
		}
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("settle workflow steps: %w", err)
		}
		jobs = jobs[:0:0]
		for _, e := range edges {
			p := byID[e.parent]
			if p.state != backend.StateSucceeded && !e.ignore {
				var queue any
				err := tx.StmtContext(ctx, b.flow.cancelPending).QueryRowContext(ctx, p.at,
					backend.ParentFailed(p.id, p.state), e.child).Scan(&queue)
				if errors.Is(err, sql.ErrNoRows) {
					continue // ended meanwhile
				}
				if err != nil {
					return false, fmt.Errorf("cancel step %s: %w", e.child, err)
				}
				cd.move(countKeyOf(queue, "").queue, backend.StatePending, backend.StateCancelled, 1)
				jobs = append(jobs, ended{e.child, backend.StateCancelled, p.at})
				continue
			}
			var waiting int
			var input backend.Input
			err := tx.StmtContext(ctx, b.flow.arrived).QueryRowContext(ctx, e.child).Scan(&waiting, &input)
			if err != nil {
				return false, fmt.Errorf("count parents of step %s: %w", e.child, err)
			}
			if waiting != 0 {
				continue
			}
			ok, quarantined, err := b.release(ctx, tx, e.child, input, p.at, cd)
			if err != nil {
				return false, err
			}
			released = released || ok
			if quarantined {
				jobs = append(jobs, ended{e.child, backend.StateQuarantined, p.at})
			}
		}
	}
	return released, nil
}

// release queues the pending step id with its input spliced into its args. A
// step whose stored args cannot take the input is quarantined instead. The
// move is recorded in cd.
func (b *Backend) release(ctx context.Context, tx *sql.Tx, id string, input backend.Input, at int64, cd counts) (ok, quarantined bool, err error) {
	var args []byte
	err = tx.StmtContext(ctx, b.flow.pendingArgs).QueryRowContext(ctx, id).Scan(&args)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil // cancelled meanwhile
	}
	if err != nil {
		return false, false, fmt.Errorf("release step %s: %w", id, err)
	}
	var results [][]byte
	if input != backend.InputNone {
		rows, err := tx.StmtContext(ctx, b.flow.parentsOut).QueryContext(ctx, id)
		if err != nil {
			return false, false, fmt.Errorf("release step %s: read parents' results: %w", id, err)
		}
		for rows.Next() {
			var r []byte
			if err := rows.Scan(&r); err != nil {
				rows.Close()
				return false, false, fmt.Errorf("release step %s: read parents' results: %w", id, err)
			}
			results = append(results, r)
		}
		if err := rows.Close(); err != nil {
			return false, false, fmt.Errorf("release step %s: read parents' results: %w", id, err)
		}
	}
	in, err := backend.StepInput(input, args, results)
	if err != nil {
		var queue any
		if err := tx.QueryRowContext(ctx, `UPDATE jobs SET state = 'quarantined', finished_at = ?, error = ?
			WHERE id = ? AND state = 'pending' RETURNING queue`, at, err.Error(), id).Scan(&queue); err != nil {
			return false, false, fmt.Errorf("quarantine step %s: %w", id, err)
		}
		cd.move(countKeyOf(queue, "").queue, backend.StatePending, backend.StateQuarantined, 1)
		return false, true, nil
	}
	var queue, state any
	if err := tx.StmtContext(ctx, b.flow.release).QueryRowContext(ctx, nullBytes(in), at, id).Scan(&queue, &state); err != nil {
		return false, false, fmt.Errorf("release step %s: %w", id, err)
	}
	k := countKeyOf(queue, state)
	cd.move(k.queue, backend.StatePending, k.state, 1)
	return true, false, nil
}

// EnqueueWorkflow stores a workflow, its jobs, steps and edges in one transaction.
func (b *Backend) EnqueueWorkflow(ctx context.Context, wf *backend.Workflow) error {
	if err := backend.CheckWorkflow(wf); err != nil {
		return b.wrap("enqueue workflow", err)
	}
	if err := b.file.check(); err != nil { // replaced.go
		return fmt.Errorf("sqlite enqueue workflow: %w", err)
	}
	b.countStmts() // prepared before the transaction (counts.go)
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return b.wrapCtx(ctx, "enqueue workflow "+wf.ID+": begin", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO workflows (id, name, created_at) VALUES (?, ?, ?)`,
		wf.ID, wf.Name, nanos(wf.CreatedAt)); err != nil {
		return b.wrapCtx(ctx, "enqueue workflow "+wf.ID, err)
	}
	ins := tx.StmtContext(ctx, b.stmts.insertN[1])
	step, err := tx.PrepareContext(ctx, `INSERT INTO workflow_steps (job_id, workflow_id, seq, input, waiting)
		VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return b.wrapCtx(ctx, "enqueue workflow "+wf.ID, err)
	}
	defer step.Close()
	edge, err := tx.PrepareContext(ctx, `INSERT INTO workflow_edges (parent, child, pos, ignore_failure, order_only, done)
		VALUES (?, ?, ?, ?, ?, 0)`)
	if err != nil {
		return b.wrapCtx(ctx, "enqueue workflow "+wf.ID, err)
	}
	defer edge.Close()
	args := make([]any, 0, insertColumnCount)
	cd := counts{}
	for i, s := range wf.Steps {
		if _, err := ins.ExecContext(ctx, jobArgs(args[:0], s.Job)...); err != nil {
			return b.wrapCtx(ctx, "enqueue workflow "+wf.ID+": insert "+s.Job.ID, err)
		}
		cd[countKey{s.Job.Queue, s.Job.State}]++
		if _, err := step.ExecContext(ctx, s.Job.ID, wf.ID, i, int(s.Input), len(s.Parents)); err != nil {
			return b.wrapCtx(ctx, "enqueue workflow "+wf.ID+": step "+s.Job.ID, err)
		}
		for pos, e := range s.Parents {
			if _, err := edge.ExecContext(ctx, e.Parent, s.Job.ID, pos, boolInt(e.IgnoreFailure), boolInt(e.OrderOnly)); err != nil {
				return b.wrapCtx(ctx, "enqueue workflow "+wf.ID+": edge to "+s.Job.ID, err)
			}
		}
	}
	if err := b.addCounts(ctx, tx, cd); err != nil {
		return b.wrapCtx(ctx, "enqueue workflow "+wf.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return b.wrapCtx(ctx, "enqueue workflow "+wf.ID+": commit", err)
	}
	b.notify.signal()
	return nil
}

// GetWorkflow returns a workflow with its steps' current records.
func (b *Backend) GetWorkflow(ctx context.Context, id string) (*backend.WorkflowInfo, error) {
	info := &backend.WorkflowInfo{ID: id}
	var created int64
	err := b.read.QueryRowContext(ctx, `SELECT name, created_at FROM workflows WHERE id = ?`, id).Scan(&info.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, b.wrap("get workflow "+id, backend.ErrWorkflowNotFound)
	}
	if err != nil {
		return nil, b.wrap("get workflow "+id, err)
	}
	info.CreatedAt = fromNanos(created)
	rows, err := b.read.QueryContext(ctx, `SELECT s.seq, s.input, j.* FROM workflow_steps s
		JOIN (SELECT `+jobColumns+` FROM jobs) j ON j.id = s.job_id WHERE s.workflow_id = ? ORDER BY s.seq`, id)
	if err != nil {
		return nil, b.wrap("get workflow "+id, err)
	}
	index := map[string]int{}
	for rows.Next() {
		var seq, input int
		var v [jobColumnCount]any
		dest := []any{&seq, &input}
		for i := range v {
			dest = append(dest, &v[i])
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, b.wrap("get workflow "+id, err)
		}
		j, err := decodeRow(v[:])
		var ce *corruptError
		if errors.As(err, &ce) && j != nil {
			j.State, j.Error = backend.StateQuarantined, ce.Error()
		} else if err != nil {
			rows.Close()
			return nil, b.wrap("get workflow "+id, err)
		}
		index[j.ID] = len(info.Steps)
		info.Steps = append(info.Steps, backend.StepInfo{Seq: seq, Job: j, Input: backend.Input(input)})
	}
	if err := rows.Close(); err != nil {
		return nil, b.wrap("get workflow "+id, err)
	}
	if len(info.Steps) == 0 { // the deletion rule (wfgc.go)
		return nil, b.wrap("get workflow "+id, backend.ErrWorkflowNotFound)
	}
	erows, err := b.read.QueryContext(ctx, `SELECT e.parent, e.child, e.ignore_failure, e.order_only FROM workflow_steps s
		JOIN workflow_edges e ON e.child = s.job_id WHERE s.workflow_id = ? ORDER BY e.child, e.pos`, id)
	if err != nil {
		return nil, b.wrap("get workflow "+id+": edges", err)
	}
	defer erows.Close()
	for erows.Next() {
		var parent, child string
		var ignore, orderOnly bool
		if err := erows.Scan(&parent, &child, &ignore, &orderOnly); err != nil {
			return nil, b.wrap("get workflow "+id+": edges", err)
		}
		if i, ok := index[child]; ok {
			info.Steps[i].Parents = append(info.Steps[i].Parents, backend.Edge{Parent: parent, IgnoreFailure: ignore, OrderOnly: orderOnly})
		}
	}
	if err := erows.Err(); err != nil {
		return nil, b.wrap("get workflow "+id+": edges", err)
	}
	info.Summarize()
	return info, nil
}

// ListWorkflows returns the newest workflows with their steps counted by
// state. Its limit counts only workflows that have a step (sqlHasStep).
func (b *Backend) ListWorkflows(ctx context.Context, limit int) ([]backend.WorkflowSummary, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := b.read.QueryContext(ctx, `SELECT w.id, w.name, w.created_at, j.state, count(*)
		FROM (SELECT * FROM workflows WHERE `+sqlHasStep+` ORDER BY id DESC LIMIT ?) w
		JOIN workflow_steps s ON s.workflow_id = w.id JOIN jobs j ON j.id = s.job_id
		GROUP BY w.id, j.state ORDER BY w.id DESC`, limit)
	if err != nil {
		return nil, b.wrap("list workflows", err)
	}
	defer rows.Close()
	out := []backend.WorkflowSummary{}
	for rows.Next() {
		var id, name, state string
		var created int64
		var n int
		if err := rows.Scan(&id, &name, &created, &state, &n); err != nil {
			return nil, b.wrap("list workflows", err)
		}
		if len(out) == 0 || out[len(out)-1].ID != id {
			out = append(out, backend.WorkflowSummary{ID: id, Name: name, CreatedAt: fromNanos(created), Counts: map[backend.State]int{}})
		}
		s := &out[len(out)-1]
		s.Counts[backend.State(state)] += n
		s.Steps += n
	}
	if err := rows.Err(); err != nil {
		return nil, b.wrap("list workflows", err)
	}
	for i := range out {
		out[i].State = backend.StateOfCounts(out[i].Counts)
	}
	return out, nil
}

// CancelWorkflow cancels every step of a workflow that has not ended, in one transaction.
func (b *Backend) CancelWorkflow(ctx context.Context, id string, now time.Time) (int, error) {
	b.countStmts() // prepared before the transaction (counts.go)
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, b.wrap("cancel workflow "+id+": begin", err)
	}
	defer tx.Rollback()
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM workflows WHERE id = ? AND `+sqlHasStep, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return 0, b.wrap("cancel workflow "+id, backend.ErrWorkflowNotFound)
	} else if err != nil {
		return 0, b.wrap("cancel workflow "+id, err)
	}
	type live struct {
		id, owner, state string
		queue            any
		token, started   int64
		attempt          int
	}
	rows, err := tx.QueryContext(ctx, `SELECT j.id, j.lease_owner, j.state, j.queue, j.lease_token, j.started_at, j.attempt
		FROM workflow_steps s JOIN jobs j ON j.id = s.job_id
		WHERE s.workflow_id = ? AND j.state IN ('pending', 'scheduled', 'queued', 'retrying', 'running')`, id)
	if err != nil {
		return 0, b.wrap("cancel workflow "+id, err)
	}
	var steps []live
	for rows.Next() {
		var l live
		if err := rows.Scan(&l.id, &l.owner, &l.state, &l.queue, &l.token, &l.started, &l.attempt); err != nil {
			rows.Close()
			return 0, b.wrap("cancel workflow "+id, err)
		}
		steps = append(steps, l)
	}
	if err := rows.Close(); err != nil {
		return 0, b.wrap("cancel workflow "+id, err)
	}
	at := nanos(now)
	running := false
	var done []ended
	cd := counts{}
	for _, l := range steps {
		if l.state == string(backend.StateRunning) {
			rec := appendAttempt(nil, backend.Attempt{Number: l.attempt, StartedAt: fromNanos(l.started),
				FinishedAt: now, Worker: l.owner, Outcome: backend.OutcomeCancelled, Error: backend.WorkflowCancelled})
			if _, err := tx.StmtContext(ctx, b.stmts.complete).ExecContext(ctx, string(backend.StateCancelled), 0, at,
				nil, backend.WorkflowCancelled, nil, "", rec, l.id, l.token, 0); err != nil {
				return 0, b.wrap("cancel workflow "+id+": running step "+l.id, err)
			}
			running = true
		} else if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'cancelled', finished_at = ?, error = ?
			WHERE id = ?`, at, backend.WorkflowCancelled, l.id); err != nil {
			return 0, b.wrap("cancel workflow "+id+": step "+l.id, err)
		}
		k := countKeyOf(l.queue, l.state)
		cd.move(k.queue, k.state, backend.StateCancelled, 1)
		done = append(done, ended{l.id, backend.StateCancelled, at})
	}
	if _, err := b.settle(ctx, tx, done, cd); err != nil {
		return 0, b.wrap("cancel workflow "+id, err)
	}
	if err := b.addCounts(ctx, tx, cd); err != nil {
		return 0, b.wrap("cancel workflow "+id, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, b.wrap("cancel workflow "+id+": commit", err)
	}
	if running {
		b.notify.signal()
	}
	return len(steps), nil
}

// endedOutcomes lists the outcomes applied (errs[i] nil) that end their job.
func endedOutcomes(outcomes []backend.Outcome, errs []error) []ended {
	var out []ended
	for i, o := range outcomes {
		if errs[i] == nil && o.State.Final() {
			out = append(out, ended{o.Lease.JobID, o.State, nanos(o.FinishedAt)})
		}
	}
	return out
}
