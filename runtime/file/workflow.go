package file

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Workflows on files:
//
//	pending/<id>   a step waiting for its parents (content state pending)
//	flows/<wf>     the workflow's graph: its steps' ids, parents and inputs (never changes)
//	steps/<id>     the workflow id of a step, so that ending a job finds its children
//
// A step is released or cancelled under its own job lock, only while its
// content is pending, so it is released at most once. Its parents' states
// decide, read from their files: any parent ended without success (and the
// edge does not ignore failure) cancels it; all parents ended releases it.
// Complete, Cancel and RecoverExpired look at the children of the jobs they
// end; RecoverExpired also looks at every pending step, which repairs what a
// crash between a parent's end and its children's release left waiting.
// Enqueue writes the graph, then the pending steps, then the roots: no parent
// can end before its children are stored. Like Enqueue, it is not atomic
// across a crash: a crash while it writes can leave part of a workflow.
const (
	pendingDir = "pending"
	flowsDir   = "flows"
	stepsDir   = "steps"
)

var _ backend.Workflows = (*Backend)(nil)

func (b *Backend) makeFlowDirs() error {
	for _, d := range []string{pendingDir, flowsDir, stepsDir, limitsDir} {
		if err := os.MkdirAll(b.path(d), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) readGraph(id string) (*backend.Graph, error) {
	data, err := readFile(b.path(flowsDir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("workflow %s: %w", id, backend.ErrWorkflowNotFound)
	}
	if err != nil {
		return nil, err
	}
	var g backend.Graph
	if err := unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("workflow %s: %w: %v", id, ErrCorrupt, err)
	}
	return &g, nil
}

// graphOf returns the graph of the workflow that job id is a step of, or nil.
func (b *Backend) graphOf(id string, cache map[string]*backend.Graph) (*backend.Graph, error) {
	wf, err := readFile(b.path(stepsDir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if g := cache[string(wf)]; g != nil {
		return g, nil
	}
	g, err := b.readGraph(string(wf))
	if err != nil {
		return nil, err
	}
	cache[string(wf)] = g
	return g, nil
}

// EnqueueWorkflow writes the graph, the step index, the pending steps and then the roots.
func (b *Backend) EnqueueWorkflow(ctx context.Context, wf *backend.Workflow) error {
	if err := backend.CheckWorkflow(wf); err != nil {
		return fmt.Errorf("file backend enqueue workflow: %w", err)
	}
	if err := checkID(wf.ID); err != nil {
		return fmt.Errorf("file backend enqueue workflow: %w", err)
	}
	if err := b.makeFlowDirs(); err != nil {
		return fmt.Errorf("file backend enqueue workflow: %w", err)
	}
	jobs := make([]*backend.Job, len(wf.Steps))
	g := backend.GraphOf(wf)
	for i, s := range wf.Steps {
		if err := checkID(s.Job.ID); err != nil {
			return fmt.Errorf("file backend enqueue workflow %s: %w", wf.ID, err)
		}
		c := *s.Job
		c.Attempts = slices.Clone(s.Job.Attempts)
		if c.Attempts == nil {
			c.Attempts = []backend.Attempt{}
		}
		c.ClampTimes()
		jobs[i] = &c
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file backend enqueue workflow: %w", err)
	}
	if exists(b.path(flowsDir, wf.ID)) {
		return fmt.Errorf("file backend enqueue workflow %s: a workflow with this id exists", wf.ID)
	}
	for i, j := range jobs {
		if err := b.claimID(j.ID); err != nil {
			b.dropIDs(jobs[:i], nil)
			return fmt.Errorf("file backend enqueue workflow %s: %w", wf.ID, err)
		}
	}
	var written []string
	undo := func(err error) error {
		for _, p := range written {
			_ = remove(p)
		}
		b.dropIDs(jobs, nil)
		return fmt.Errorf("file backend enqueue workflow %s: %w", wf.ID, err)
	}
	data, err := marshal(&g)
	if err != nil {
		return undo(err)
	}
	if err := b.writeAtomic(b.path(flowsDir, wf.ID), data); err != nil {
		return undo(err)
	}
	written = append(written, b.path(flowsDir, wf.ID))
	for _, j := range jobs {
		if err := b.writeAtomic(b.path(stepsDir, j.ID), []byte(wf.ID)); err != nil {
			return undo(err)
		}
		written = append(written, b.path(stepsDir, j.ID))
	}
	now := jobs[0].CreatedAt
	for _, pending := range []bool{true, false} {
		for _, j := range jobs {
			if (j.State == backend.StatePending) != pending {
				continue
			}
			to, err := b.home(j, now)
			if err == nil {
				err = b.save(to, j)
			}
			if err != nil {
				return undo(err)
			}
			written = append(written, to)
		}
	}
	b.signal()
	return nil
}

// settleChildren looks at the children of job id, which has just ended.
func (b *Backend) settleChildren(ctx context.Context, id string, now time.Time) error {
	return b.settleChildrenWith(ctx, id, now, map[string]*backend.Graph{})
}

// settleChildrenWith is settleChildren reading graphs through cache
// (workflow id -> graph), which a caller settling many steps shares.
func (b *Backend) settleChildrenWith(ctx context.Context, id string, now time.Time, cache map[string]*backend.Graph) error {
	work := []string{id}
	released := false
	for len(work) > 0 {
		p := work[0]
		work = work[1:]
		g, err := b.graphOf(p, cache)
		if err != nil || g == nil {
			return err
		}
		for _, c := range g.Children(p) {
			state, err := b.settleStep(ctx, g, c, now)
			if err != nil {
				return err
			}
			switch {
			case state == backend.StateQueued || state == backend.StateScheduled:
				released = true
			case state.Final():
				work = append(work, c)
			}
		}
	}
	if released {
		b.signal()
	}
	return nil
}

// settleStep releases or cancels the pending step id of g as its parents'
// states say, under its lock. It returns the step's new state, or "" when it
// did not change.
func (b *Backend) settleStep(ctx context.Context, g *backend.Graph, id string, now time.Time) (backend.State, error) {
	st := g.Step(id)
	if st == nil {
		return "", nil
	}
	unlock, err := b.lock(ctx, jobLock(id))
	if err != nil {
		return "", err
	}
	defer unlock()
	path := b.path(pendingDir, id)
	j, err := readJob(path, id)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil // released or cancelled already
	}
	if err != nil {
		return "", err
	}
	if j.State != backend.StatePending { // a crash between content and move
		to, err := b.home(j, now)
		if err == nil {
			err = rename(path, to)
		}
		return "", err
	}
	var results [][]byte
	waiting := false
	for _, e := range st.Parents {
		pj, err := b.Get(ctx, e.Parent)
		state := backend.StateCancelled // a purged parent counts as cancelled
		if err == nil {
			state = pj.State
		} else if !errors.Is(err, backend.ErrNotFound) {
			return "", err
		}
		if state.Final() && state != backend.StateSucceeded && !e.IgnoreFailure {
			j.State, j.FinishedAt, j.Error = backend.StateCancelled, now, backend.ParentFailed(e.Parent, state)
			if pj == nil {
				j.Error = backend.ParentDeleted(e.Parent)
			}
			return j.State, b.saveThenMove(path, j, now)
		}
		if !state.Final() {
			waiting = true
			continue
		}
		if !e.OrderOnly {
			var r []byte
			if pj != nil && state == backend.StateSucceeded {
				r = pj.Result
			}
			results = append(results, r)
		}
	}
	if waiting {
		return "", nil
	}
	args, err := backend.StepInput(st.Input, j.Args, results)
	if err != nil {
		j.State, j.FinishedAt, j.Error = backend.StateQuarantined, now, err.Error()
		return j.State, b.saveThenMove(path, j, now)
	}
	j.Args = args
	j.State = backend.StateQueued
	if j.RunAt.After(now) {
		j.State = backend.StateScheduled
	} else {
		j.RunAt = now
	}
	return j.State, b.saveThenMove(path, j, now)
}

// settleAllPending looks at every pending step (see RecoverExpired).
func (b *Backend) settleAllPending(ctx context.Context, now time.Time) error {
	ids, err := readNames(b.path(pendingDir))
	if err != nil || len(ids) == 0 {
		return err
	}
	cache := map[string]*backend.Graph{}
	for _, id := range ids {
		if ctx.Err() != nil {
			return nil
		}
		g, err := b.graphOf(id, cache)
		if err != nil || g == nil {
			continue
		}
		state, err := b.settleStep(ctx, g, id, now)
		if err != nil {
			return err
		}
		if state.Final() {
			if err := b.settleChildren(ctx, id, now); err != nil {
				return err
			}
		} else if state != "" {
			b.signal()
		}
	}
	return nil
}

// GetWorkflow reads a workflow's graph and its steps' records.
func (b *Backend) GetWorkflow(ctx context.Context, id string) (*backend.WorkflowInfo, error) {
	if checkID(id) != nil {
		return nil, fmt.Errorf("file backend get workflow %q: %w", id, backend.ErrWorkflowNotFound)
	}
	g, err := b.readGraph(id)
	if err != nil {
		return nil, fmt.Errorf("file backend get workflow: %w", err)
	}
	info := &backend.WorkflowInfo{ID: g.ID, Name: g.Name, CreatedAt: g.CreatedAt}
	var listed map[string]string // ready/ and scheduled/, listed once for all steps
	for seq, s := range g.Steps {
		j, err := b.get(ctx, s.ID, &listed)
		if errors.Is(err, backend.ErrNotFound) {
			continue // purged
		}
		if err != nil {
			return nil, fmt.Errorf("file backend get workflow %s: %w", id, err)
		}
		info.Steps = append(info.Steps, backend.StepInfo{Seq: seq, Job: j, Parents: s.Parents, Input: s.Input})
	}
	if len(info.Steps) == 0 {
		// Every step's job is gone: the workflow is (or is about to be) deleted.
		return nil, fmt.Errorf("file backend get workflow %s: %w", id, backend.ErrWorkflowNotFound)
	}
	info.Summarize()
	return info, nil
}

// ListWorkflows reads the newest workflows.
func (b *Backend) ListWorkflows(ctx context.Context, limit int) ([]backend.WorkflowSummary, error) {
	if limit <= 0 {
		limit = 100
	}
	names, err := readNames(b.path(flowsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file backend list workflows: %w", err)
	}
	slices.SortFunc(names, func(x, y string) int { return cmp.Compare(y, x) })
	out := []backend.WorkflowSummary{}
	for _, n := range names {
		if len(out) == limit {
			break
		}
		info, err := b.GetWorkflow(ctx, n)
		if errors.Is(err, backend.ErrWorkflowNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info.Summary())
	}
	return out, nil
}

// CancelWorkflow cancels every step that has not ended, one by one.
func (b *Backend) CancelWorkflow(ctx context.Context, id string, now time.Time) (int, error) {
	if checkID(id) != nil {
		return 0, fmt.Errorf("file backend cancel workflow %q: %w", id, backend.ErrWorkflowNotFound)
	}
	g, err := b.readGraph(id)
	if err != nil {
		return 0, fmt.Errorf("file backend cancel workflow: %w", err)
	}
	n, found := 0, false
	for _, s := range g.Steps {
		err := b.cancel(ctx, s.ID, now, backend.WorkflowCancelled, backend.WorkflowCancelled)
		switch {
		case err == nil:
			n++
			found = true
		case errors.Is(err, backend.ErrWrongState):
			found = true
		case errors.Is(err, backend.ErrNotFound):
		default:
			return n, fmt.Errorf("file backend cancel workflow %s: %w", id, err)
		}
	}
	if !found {
		// No step's job is left, as GetWorkflow finds (the deletion rule).
		return 0, fmt.Errorf("file backend cancel workflow %s: %w", id, backend.ErrWorkflowNotFound)
	}
	cache := map[string]*backend.Graph{id: g}
	for _, s := range g.Steps {
		if err := b.settleChildrenWith(ctx, s.ID, now, cache); err != nil {
			return n, fmt.Errorf("file backend cancel workflow %s: %w", id, err)
		}
	}
	return n, nil
}

func marshal(g *backend.Graph) ([]byte, error) {
	data, err := msgpack.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("encode workflow %s: %w", g.ID, err)
	}
	return data, nil
}

// waitedFor reports whether a pending workflow step waits for the job id
// (whose result it may take as input): retention keeps such a job.
func (b *Backend) waitedFor(id string, cache map[string]*backend.Graph) bool {
	g, err := b.graphOf(id, cache)
	if err != nil || g == nil {
		return err != nil // a graph that cannot be read: keep the job
	}
	for _, c := range g.Children(id) {
		if exists(b.path(pendingDir, c)) {
			return true
		}
	}
	return false
}
