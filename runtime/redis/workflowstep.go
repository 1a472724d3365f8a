package redis

import (
	"context"
	"errors"
	"slices"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/runtime/backend"
)

var _ backend.StepOrigins = (*Backend)(nil)

// StepOrigin returns the workflow job id is a step of and its parents, or
// nil when it is no workflow step: one HGET and one GET of the graph.
func (b *Backend) StepOrigin(ctx context.Context, id string) (*backend.StepOrigin, error) {
	if err := b.check(ctx, "step origin of "+id); err != nil {
		return nil, err
	}
	wf, err := b.c.HGet(ctx, b.wfStepKey(), id).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap(ctx, "step origin of "+id, err)
	}
	g, err := b.readGraph(ctx, wf)
	if errors.Is(err, backend.ErrWorkflowNotFound) {
		return nil, nil // deleted with its last step's job (wfgc.go)
	}
	if err != nil {
		return nil, wrap(ctx, "step origin of "+id, err)
	}
	o := &backend.StepOrigin{WorkflowID: g.ID, WorkflowName: g.Name}
	if s := g.Step(id); s != nil {
		o.Parents = slices.Clone(s.Parents)
	}
	return o, nil
}
