package file

import (
	"errors"

	"github.com/nuvom/nuvom/runtime/backend"
)

// The deletion rule of backend.Workflows on files: deleting a step's job
// deletes steps/<id>, and the graph flows/<wf> goes with the last of its
// steps' jobs. Every deleter looks at the other steps' id markers after its
// own job is gone, so whichever deletes the last one deletes the graph. The
// graph is removed before the step file: a crash in between leaves a step
// file without its job, which sweepSteps finds (as it finds the step files
// that builds before this rule left).

// forgetStep drops what the workflows hold of the job id, whose file and id
// marker are gone. It is best-effort: what it leaves, sweepSteps deletes.
func (b *Backend) forgetStep(id string) {
	data, err := readFile(b.path(stepsDir, id))
	if err != nil {
		return // not a step (or unreadable: the sweep tries again)
	}
	if wf := string(data); checkID(wf) == nil {
		g, err := b.readGraph(wf)
		switch {
		case errors.Is(err, backend.ErrWorkflowNotFound):
		case err != nil:
			return // a graph that cannot be read is left as it is, with its step file
		case !b.anyStepLeft(g):
			if err := remove(b.path(flowsDir, wf)); err != nil {
				return
			}
		}
	}
	_ = remove(b.path(stepsDir, id))
}

// anyStepLeft reports whether a job of one of g's steps exists.
func (b *Backend) anyStepLeft(g *backend.Graph) bool {
	for _, s := range g.Steps {
		if exists(b.path(idsDir, s.ID)) {
			return true
		}
	}
	return false
}

// sweepSteps applies the deletion rule to the step files whose job is gone
// (a crash between a deletion and forgetStep, or a store written by a build
// before the rule). Retention calls it after its deletions.
func (b *Backend) sweepSteps() error {
	names, err := readNames(b.path(stepsDir))
	if err != nil {
		return err
	}
	for _, id := range names {
		if !exists(b.path(idsDir, id)) {
			b.forgetStep(id)
		}
	}
	return nil
}
