package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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
// it deleted and returns how many jobs it deleted.
func deleteJobs(ctx context.Context, tx *sql.Tx, del string, args []any, cd counts) (int, error) {
	var anyStep bool
	if err := tx.QueryRowContext(ctx, sqlAnyStep).Scan(&anyStep); err != nil {
		return 0, fmt.Errorf("look for workflow steps: %w", err)
	}
	if !anyStep {
		rows, err := tx.QueryContext(ctx, del, args...)
		if err != nil {
			return 0, err
		}
		return countDeleted(rows, cd)
	}
	rows, err := tx.QueryContext(ctx, del+sqlStepReturning, args...)
	if err != nil {
		return 0, err
	}
	n, steps, err := countDeletedSteps(rows, cd)
	if err != nil {
		return 0, err
	}
	if err := forgetSteps(ctx, tx, steps); err != nil {
		return 0, err
	}
	return n, nil
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
// (ids), then the workflows left without a step.
func forgetSteps(ctx context.Context, tx *sql.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("forget workflow steps: %w", err)
	}
	wfs, err := queryColumn[string](ctx, tx, "forget workflow steps", sqlForgetSteps, []any{string(list)})
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, sqlForgetEdges, string(list)); err != nil {
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
	if list, err = json.Marshal(distinct); err != nil {
		return fmt.Errorf("forget workflows: %w", err)
	}
	if _, err := tx.ExecContext(ctx, sqlForgetWorkflows, string(list)); err != nil {
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
