package file

import (
	"context"
	"fmt"
	"slices"

	"github.com/nuvom/nuvom/runtime/backend"
)

var _ backend.StepOrigins = (*Backend)(nil)

// StepOrigin returns the workflow job id is a step of and its parents, or
// nil when it is no workflow step: it reads the step's index file and the
// workflow's graph.
func (b *Backend) StepOrigin(_ context.Context, id string) (*backend.StepOrigin, error) {
	if checkID(id) != nil {
		return nil, nil // no file can name it: no step either
	}
	g, err := b.graphOf(id, map[string]*backend.Graph{})
	if err != nil {
		return nil, fmt.Errorf("file backend step origin of %s: %w", id, err)
	}
	if g == nil {
		return nil, nil
	}
	o := &backend.StepOrigin{WorkflowID: g.ID, WorkflowName: g.Name}
	if s := g.Step(id); s != nil {
		o.Parents = slices.Clone(s.Parents)
	}
	return o, nil
}
