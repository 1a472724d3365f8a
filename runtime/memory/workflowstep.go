package memory

import (
	"context"
	"slices"

	"github.com/nuvom/nuvom/runtime/backend"
)

var _ backend.StepOrigins = (*Backend)(nil)

// StepOrigin returns the workflow job id is a step of and its parents, or
// nil when it is no workflow step.
func (b *Backend) StepOrigin(ctx context.Context, id string) (*backend.StepOrigin, error) {
	if err := b.lock(ctx, "step origin of "+id); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	st := b.flow.steps[id]
	if st == nil {
		return nil, nil
	}
	o := &backend.StepOrigin{WorkflowID: st.wf, Parents: slices.Clone(st.parents)}
	if w := b.flow.workflows[st.wf]; w != nil {
		o.WorkflowName = w.name
	}
	return o, nil
}
