package file

import (
	"context"
	"errors"
	"os"
	"time"

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

// markerGrace is how old a workflow's graph must be before sweepSteps
// takes an id marker without a job file for what a crash inside
// deleteStored left (its job file removed, its marker not): younger, the
// workflow may be being enqueued (markers, graph and step files are written
// before the jobs).
const markerGrace = 10 * time.Minute

// sweepSteps applies the deletion rule to the step files whose job is gone
// (a crash between a deletion and forgetStep, or a store written by a build
// before the rule). The retention calls (PurgeEnded, TrimEnded) make it
// after their deletions; now is the wall clock.
func (b *Backend) sweepSteps(ctx context.Context, now time.Time) error {
	names, err := readNames(b.path(stepsDir))
	if err != nil {
		return err
	}
	for _, id := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if exists(b.path(idsDir, id)) && !b.orphanMarker(ctx, id, now) {
			continue
		}
		b.forgetStep(id)
	}
	return nil
}

// orphanMarker reports whether the step id has an id marker but no job
// file, in a workflow enqueued at least markerGrace before now, and then
// removes the marker. It looks under the job's lock, which deleteStored
// holds while it removes both.
func (b *Backend) orphanMarker(ctx context.Context, id string, now time.Time) bool {
	wf, err := readFile(b.path(stepsDir, id))
	if err != nil || checkID(string(wf)) != nil {
		return false
	}
	fi, err := os.Stat(b.path(flowsDir, string(wf)))
	if err == nil && now.Sub(fi.ModTime()) < markerGrace {
		return false
	}
	unlock, err := b.lock(ctx, jobLock(id))
	if err != nil {
		return false
	}
	defer unlock()
	if _, _, err := b.locate(id); !errors.Is(err, backend.ErrNotFound) {
		return false // the job is there (or cannot be looked for now)
	}
	return remove(b.path(idsDir, id)) == nil
}
