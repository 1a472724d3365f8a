package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/nuvom/nuvom/runtime/backend"
)

var _ backend.StepOrigins = (*Backend)(nil)

// StepOrigin returns the workflow job id is a step of and its parents, or
// nil when it is no workflow step: two index probes.
func (b *Backend) StepOrigin(ctx context.Context, id string) (*backend.StepOrigin, error) {
	o := &backend.StepOrigin{}
	err := b.read.QueryRowContext(ctx, `SELECT s.workflow_id, coalesce(w.name, '') FROM workflow_steps s
		LEFT JOIN workflows w ON w.id = s.workflow_id WHERE s.job_id = ?`, id).Scan(&o.WorkflowID, &o.WorkflowName)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, b.wrap("step origin of "+id, err)
	}
	rows, err := b.read.QueryContext(ctx, `SELECT parent, ignore_failure, order_only FROM workflow_edges WHERE child = ? ORDER BY pos`, id)
	if err != nil {
		return nil, b.wrap("step origin of "+id+": parents", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e backend.Edge
		if err := rows.Scan(&e.Parent, &e.IgnoreFailure, &e.OrderOnly); err != nil {
			return nil, b.wrap("step origin of "+id+": parents", err)
		}
		o.Parents = append(o.Parents, e)
	}
	if err := rows.Err(); err != nil {
		return nil, b.wrap("step origin of "+id+": parents", err)
	}
	return o, nil
}
