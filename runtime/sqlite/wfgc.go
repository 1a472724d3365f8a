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

// The workflow deletion rule (backend.Workflows): a transaction that deletes
// jobs (deleteWhere's batches, which serve Purge, PurgeEnded and TrimEnded)
// deletes with them the workflow_steps rows of those that are steps and the
// workflow_edges rows whose child they are (an edge is its child's record of
// its parents; one whose parent is deleted stays with the child), then the
// workflows rows of the workflows left without a step. A store holding no
// step pays one probe of the empty workflow_steps per batch of purgeBatch
// jobs and nothing per job.

// Statements of the deletion rule.
const (
	// sqlAnyStep probes whether any workflow step is stored: without one,
	// a batch's delete returns no step column and nothing else runs.
	sqlAnyStep = `SELECT EXISTS (SELECT 1 FROM workflow_steps)`
	// sqlStepReturning is appended to a batch's "DELETE FROM jobs ...
	// RETURNING queue, state" when steps are stored: a third column, the
	// deleted job's id when it is a workflow step, else NULL (one probe of
	// workflow_steps' primary key per deleted job).
	sqlStepReturning = `, CASE WHEN EXISTS (SELECT 1 FROM workflow_steps s WHERE s.job_id = jobs.id) THEN id END`
	// sqlOrphans lists the pending children of the deleted steps named in
	// ?1 that orphanChildren cancels: those whose edge from one does not
	// ignore failure.
	sqlOrphans = `SELECT e.parent, e.child FROM workflow_edges e JOIN jobs j ON j.id = e.child
		WHERE e.parent IN (SELECT value FROM json_each(?1)) AND j.state = 'pending' AND e.ignore_failure = 0
		ORDER BY e.child, e.pos`
	// sqlForgetSteps deletes the steps of the jobs named in ?1 (a JSON
	// array of ids) and returns their workflows.
	sqlForgetSteps = `DELETE FROM workflow_steps WHERE job_id IN (SELECT value FROM json_each(?1)) RETURNING workflow_id`
	// sqlForgetEdges deletes the edges into the steps named in ?1
	// (through workflow_edges_child).
	sqlForgetEdges = `DELETE FROM workflow_edges WHERE child IN (SELECT value FROM json_each(?1))`
	// sqlForgetWorkflows deletes, of the workflows named in ?1, those
	// left without a step (through workflow_steps_wf).
	sqlForgetWorkflows = `DELETE FROM workflows WHERE id IN (SELECT value FROM json_each(?1))
		AND NOT EXISTS (SELECT 1 FROM workflow_steps s WHERE s.workflow_id = workflows.id)`
)

// sqlHasStep is the condition of a workflows row that has a step whose job
// is stored: with the deletion rule kept, every row. ListWorkflows (whose
// limit would otherwise count such rows), GetWorkflow and CancelWorkflow
// check it anyway: a process of a build before the rule still running
// against the file after the migration leaves such rows when it deletes.
const sqlHasStep = `EXISTS (SELECT 1 FROM workflow_steps s JOIN jobs j ON j.id = s.job_id
	WHERE s.workflow_id = workflows.id)`

// deleteJobs runs del (a "DELETE FROM jobs ... RETURNING queue, state") with
// args in tx, adds its moves to cd, applies the deletion rule to the steps
// it deleted (orphanChildren, forgetSteps) and returns how many jobs it
// deleted and whether a pending step was queued.
func (b *Backend) deleteJobs(ctx context.Context, tx *sql.Tx, del string, args []any, cd counts) (int, bool, error) {
	var anyStep bool
	if err := tx.QueryRowContext(ctx, sqlAnyStep).Scan(&anyStep); err != nil {
		return 0, false, fmt.Errorf("look for workflow steps: %w", err)
	}
	if !anyStep {
		rows, err := tx.QueryContext(ctx, del, args...)
		if err != nil {
			return 0, false, err
		}
		n, err := countDeleted(rows, cd)
		return n, false, err
	}
	rows, err := tx.QueryContext(ctx, del+sqlStepReturning, args...)
	if err != nil {
		return 0, false, err
	}
	n, steps, err := countDeletedSteps(rows, cd)
	if err != nil {
		return 0, false, err
	}
	if len(steps) == 0 {
		return n, false, nil
	}
	list, err := json.Marshal(steps)
	if err != nil {
		return 0, false, fmt.Errorf("forget workflow steps: %w", err)
	}
	released, err := b.orphanChildren(ctx, tx, string(list), steps, cd)
	if err != nil {
		return 0, false, err
	}
	if err := forgetSteps(ctx, tx, string(list)); err != nil {
		return 0, false, err
	}
	return n, released, nil
}

// orphanChildren applies the deletion rule to the pending children of the
// deleted steps ids (list: the same as a JSON array) in tx: a pending
// child of one of them is cancelled (ParentDeleted), unless its edge ignores
// failure (then the deleted parent counts as one that failed); what that
// ends is settled in turn. It records the moves in cd and reports whether it
// queued a step.
func (b *Backend) orphanChildren(ctx context.Context, tx *sql.Tx, list string, ids []string, cd counts) (bool, error) {
	type orphan struct{ parent, child string }
	var cancel []orphan
	rows, err := tx.QueryContext(ctx, sqlOrphans, list)
	if err != nil {
		return false, fmt.Errorf("find the pending children of deleted workflow steps: %w", err)
	}
	for rows.Next() {
		var o orphan
		if err := rows.Scan(&o.parent, &o.child); err != nil {
			rows.Close()
			return false, fmt.Errorf("find the pending children of deleted workflow steps: %w", err)
		}
		cancel = append(cancel, o)
	}
	if err := rows.Close(); err != nil {
		return false, fmt.Errorf("find the pending children of deleted workflow steps: %w", err)
	}
	at := nanos(time.Now())
	ends := make([]ended, 0, len(ids)+len(cancel))
	for _, id := range ids { // their open edges: as parents that failed
		ends = append(ends, ended{id, backend.StateCancelled, at})
	}
	for _, o := range cancel {
		var queue any
		err := tx.StmtContext(ctx, b.flow.cancelPending).QueryRowContext(ctx, at, backend.ParentDeleted(o.parent), o.child).Scan(&queue)
		if errors.Is(err, sql.ErrNoRows) {
			continue // cancelled already, for another deleted parent
		}
		if err != nil {
			return false, fmt.Errorf("cancel step %s: %w", o.child, err)
		}
		cd.move(countKeyOf(queue, "").queue, backend.StatePending, backend.StateCancelled, 1)
		ends = append(ends, ended{o.child, backend.StateCancelled, at})
	}
	return b.settle(ctx, tx, ends, cd)
}

// countDeletedSteps is countDeleted for a delete returning sqlStepReturning's
// column too: it also returns the ids of the deleted steps.
func countDeletedSteps(rows *sql.Rows, c counts) (int, []string, error) {
	defer rows.Close()
	n := 0
	var steps []string
	for rows.Next() {
		var queue, state any
		var step sql.NullString
		if err := rows.Scan(&queue, &state, &step); err != nil {
			return n, nil, err
		}
		c[countKeyOf(queue, state)]--
		n++
		if step.Valid {
			steps = append(steps, step.String)
		}
	}
	return n, steps, rows.Err()
}

// forgetSteps deletes in tx what the workflows store of the deleted steps
// (list: a JSON array of their ids), then the workflows left without a step.
func forgetSteps(ctx context.Context, tx *sql.Tx, list string) error {
	wfs, err := queryColumn[string](ctx, tx, "forget workflow steps", sqlForgetSteps, []any{list})
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, sqlForgetEdges, list); err != nil {
		return fmt.Errorf("forget the edges of workflow steps: %w", err)
	}
	seen := make(map[string]bool, len(wfs))
	distinct := wfs[:0]
	for _, w := range wfs {
		if !seen[w] {
			seen[w] = true
			distinct = append(distinct, w)
		}
	}
	wl, err := json.Marshal(distinct)
	if err != nil {
		return fmt.Errorf("forget workflows: %w", err)
	}
	if _, err := tx.ExecContext(ctx, sqlForgetWorkflows, string(wl)); err != nil {
		return fmt.Errorf("forget workflows without steps: %w", err)
	}
	return nil
}

// sqlWorkflowGCMigration deletes what builds before the deletion rule left
// behind: the steps whose job is gone, the edges whose child is gone, and
// the workflows without a step left.
const sqlWorkflowGCMigration = `DELETE FROM workflow_steps
		WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = workflow_steps.job_id);
	DELETE FROM workflow_edges
		WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = workflow_edges.child);
	DELETE FROM workflows
		WHERE NOT EXISTS (SELECT 1 FROM workflow_steps s WHERE s.workflow_id = workflows.id);`
