package nuvom

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom/runtime/backend"
)

// StatePending is the state of a workflow step waiting for its parents.
const StatePending = backend.StatePending

// ErrWorkflowNotFound: no workflow with that id.
var ErrWorkflowNotFound = backend.ErrWorkflowNotFound

// WorkflowInfo is a stored workflow with its steps' current records.
type WorkflowInfo = backend.WorkflowInfo

// WorkflowSummary is one workflow as ListWorkflows returns it.
type WorkflowSummary = backend.WorkflowSummary

// Step is one step of a workflow whose task returns T (struct{} for a task
// without a result). Generated task handles make them, with typed arguments:
//
//	thumb := images.ResizeTask.Step("cat.png", 128)  // nuvom.Step[images.Thumb]
//	url := uploads.PutTask.From(thumb, "bucket")     // Put's first parameter is a Thumb
//	done := notify.SendTask.Step("done").After(url)  // runs after url, ignores its result
//	id, err := nuvom.Workflow("thumbnail", done).Enqueue(ctx, client)
//
// From takes a Source of the child's first parameter type, so a parent whose
// result type differs does not compile. A Step is a reference: use the same
// value as the parent of several children (fan-out), and Group several of
// them into the input of a child whose first parameter is a slice (fan-in).
type Step[T any] struct {
	n      *stepNode
	ignore bool // the edge from this parent lets the child run when it fails
}

// stepNode is a step as built, before and after it is enqueued.
type stepNode struct {
	spec    TaskSpec
	args    []byte
	err     error
	opts    []EnqueueOption
	input   backend.Input
	parents []edgeRef
	id      string // the job id, set by Enqueue
}

type edgeRef struct {
	n         *stepNode
	ignore    bool
	orderOnly bool
}

// Node is any step, whatever its result type: what After and Workflow take.
type Node interface {
	flowEdge() edgeRef
}

// Source is what feeds a child's first parameter of type T: a Step[T], or a
// Group of Step[E] when T is []E.
type Source[T any] interface {
	// flowInput returns the parents feeding a T and how; the pointer only
	// carries the type.
	flowInput(*T) ([]edgeRef, backend.Input)
}

// NewStep returns a root step of the task spec describes with encoded
// args (err, when not nil, is an error met encoding them: enqueueing the
// workflow fails with it). Generated Step methods call it.
func NewStep[T any](spec TaskSpec, args []byte, err error, opts []EnqueueOption) Step[T] {
	return Step[T]{n: &stepNode{spec: spec, args: args, err: err, opts: opts}}
}

// StepFrom returns a step whose first argument is what src produces and whose
// other arguments are rest (encoded as a msgpack array). Generated From
// methods call it: the compiler checks src against the task's first parameter.
func StepFrom[T, In any](src Source[In], spec TaskSpec, rest []byte, err error, opts []EnqueueOption) Step[T] {
	parents, input := src.flowInput(nil)
	return Step[T]{n: &stepNode{spec: spec, args: rest, err: err, opts: opts, input: input, parents: parents}}
}

func (s Step[T]) flowEdge() edgeRef { return edgeRef{n: s.n, ignore: s.ignore} }

func (s Step[T]) flowInput(*T) ([]edgeRef, backend.Input) {
	return []edgeRef{s.flowEdge()}, backend.InputResult
}

// After returns s ordered after parents as well: it starts once they have
// all ended (and, unless an edge ignores failure, succeeded), ignoring their
// results. It changes s itself: every copy of s is the same step.
func (s Step[T]) After(parents ...Node) Step[T] {
	for _, p := range parents {
		e := p.flowEdge()
		e.orderOnly = true
		s.n.parents = append(s.n.parents, e)
	}
	return s
}

// IgnoreFailure returns s as a parent whose failure (or cancellation) does not
// cancel the child it is given to: the child runs anyway, with the zero value
// as its input from s. By default a child of a failed parent is cancelled.
func (s Step[T]) IgnoreFailure() Step[T] { return Step[T]{n: s.n, ignore: true} }

// ID returns the step's job id once its workflow is enqueued ("" before).
func (s Step[T]) ID() string { return s.n.id }

// Pending returns the typed handle of the step's job once its workflow is
// enqueued, to Wait for its result.
func (s Step[T]) Pending(c *Client) *Pending[T] { return PendingOf[T](c, EnqueueResult{ID: s.n.id}) }

// Steps is a fan-out: steps that each produce an E, feeding as a whole the
// first parameter, of type []E, of a child (the results in the order of the
// steps). Make one with Group.
type Steps[E any] struct {
	steps []Step[E]
}

// Group collects steps of one result type into the input of a fan-in child:
//
//	pages := nuvom.Group(crawl.FetchTask.Step(u1), crawl.FetchTask.Step(u2))
//	merged := crawl.MergeTask.From(pages)  // Merge(ctx, pages []Page)
func Group[E any](steps ...Step[E]) Steps[E] { return Steps[E]{steps: steps} }

// Add appends steps to the group.
func (g Steps[E]) Add(steps ...Step[E]) Steps[E] {
	return Steps[E]{steps: append(g.steps[:len(g.steps):len(g.steps)], steps...)}
}

// Len returns the number of steps in the group.
func (g Steps[E]) Len() int { return len(g.steps) }

func (g Steps[E]) flowInput(*[]E) ([]edgeRef, backend.Input) {
	out := make([]edgeRef, len(g.steps))
	for i, s := range g.steps {
		out[i] = s.flowEdge()
	}
	return out, backend.InputResults
}

// WorkflowDef is a workflow ready to enqueue: the given steps and every step
// they descend from.
type WorkflowDef struct {
	name  string
	steps []Node
}

// Workflow returns the workflow made of steps and all their ancestors; name
// is shown by nuvom workflow list and show.
func Workflow(name string, steps ...Node) *WorkflowDef {
	return &WorkflowDef{name: name, steps: steps}
}

// Enqueue stores every step of the workflow in one call, all or nothing,
// and returns the workflow's id. Steps without parents are queued; the others
// wait as pending until their parents end. A step given to an enqueued
// workflow cannot be enqueued again.
func (w *WorkflowDef) Enqueue(ctx context.Context, c *Client) (string, error) {
	flows, ok := c.backend.(backend.Workflows)
	if !ok {
		return "", fmt.Errorf("enqueue workflow %s: backend %T does not store workflows", w.name, c.backend)
	}
	nodes, err := w.order()
	if err != nil {
		return "", err
	}
	now := c.now()
	wf := &backend.Workflow{ID: ulid.Make().String(), Name: w.name, CreatedAt: now}
	feeds := map[*stepNode]bool{}
	for _, n := range nodes {
		for _, p := range n.parents {
			if n.input != backend.InputNone && !p.orderOnly {
				feeds[p.n] = true
			}
		}
	}
	ids := make(map[*stepNode]string, len(nodes))
	for i, n := range nodes {
		if n.err != nil {
			return "", fmt.Errorf("enqueue workflow %s: step %d (%s): %w", w.name, i, n.spec.Name, n.err)
		}
		if n.input == backend.InputResults && !slices.ContainsFunc(n.parents, func(p edgeRef) bool { return !p.orderOnly }) {
			return "", fmt.Errorf("enqueue workflow %s: step %d (%s): its fan-in group is empty: give Group at least one step", w.name, i, n.spec.Name)
		}
		j, err := newJob(n.spec, n.args, now, n.opts...)
		if err != nil {
			return "", fmt.Errorf("enqueue workflow %s: step %d: %w", w.name, i, err)
		}
		if j.UniqueKey != "" {
			return "", fmt.Errorf("enqueue workflow %s: step %d (%s): workflow steps cannot be unique", w.name, i, n.spec.Name)
		}
		if feeds[n] {
			j.StoreResult = true // a child takes its result
		}
		step := backend.Step{Job: j, Input: n.input}
		if len(n.parents) > 0 {
			j.State = StatePending
			for _, p := range n.parents {
				step.Parents = append(step.Parents, backend.Edge{Parent: ids[p.n], IgnoreFailure: p.ignore, OrderOnly: p.orderOnly})
			}
		}
		ids[n] = j.ID
		wf.Steps = append(wf.Steps, step)
	}
	if err := flows.EnqueueWorkflow(ctx, wf); err != nil {
		return "", fmt.Errorf("enqueue workflow %s: %w", w.name, err)
	}
	for n, id := range ids {
		n.id = id
	}
	return wf.ID, nil
}

// order returns every step, parents before children (depth-first from the
// given steps, so the order follows how the workflow was written).
func (w *WorkflowDef) order() ([]*stepNode, error) {
	if len(w.steps) == 0 {
		return nil, fmt.Errorf("enqueue workflow %s: no steps", w.name)
	}
	const (
		visiting = 1
		done     = 2
	)
	mark := map[*stepNode]int{}
	var out []*stepNode
	var visit func(n *stepNode) error
	visit = func(n *stepNode) error {
		switch {
		case n == nil:
			return errors.New("a step is the zero Step: make steps with a task handle's Step or From")
		case mark[n] == done:
			return nil
		case mark[n] == visiting:
			return fmt.Errorf("step %s depends on itself", n.spec.Name)
		case n.id != "":
			return fmt.Errorf("step %s was already enqueued (job %s)", n.spec.Name, n.id)
		}
		mark[n] = visiting
		for _, p := range n.parents {
			if err := visit(p.n); err != nil {
				return err
			}
		}
		mark[n] = done
		out = append(out, n)
		return nil
	}
	for _, s := range w.steps {
		if s == nil {
			return nil, fmt.Errorf("enqueue workflow %s: a step is nil", w.name)
		}
		if err := visit(s.flowEdge().n); err != nil {
			return nil, fmt.Errorf("enqueue workflow %s: %w", w.name, err)
		}
	}
	return out, nil
}

// GetWorkflow returns a workflow with its steps' current records.
func (c *Client) GetWorkflow(ctx context.Context, id string) (*WorkflowInfo, error) {
	flows, ok := c.backend.(backend.Workflows)
	if !ok {
		return nil, fmt.Errorf("get workflow %s: backend %T does not store workflows", id, c.backend)
	}
	info, err := flows.GetWorkflow(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get workflow %s: %w", id, err)
	}
	return info, nil
}

// ListWorkflows returns up to limit workflows (100 when limit <= 0), newest first.
func (c *Client) ListWorkflows(ctx context.Context, limit int) ([]WorkflowSummary, error) {
	flows, ok := c.backend.(backend.Workflows)
	if !ok {
		return nil, fmt.Errorf("list workflows: backend %T does not store workflows", c.backend)
	}
	out, err := flows.ListWorkflows(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("list workflows: %w", err)
	}
	return out, nil
}

// CancelWorkflow cancels every step of a workflow that has not ended and
// returns how many; running steps have their context cancelled by their
// worker, as Cancel does for a job.
func (c *Client) CancelWorkflow(ctx context.Context, id string) (int, error) {
	flows, ok := c.backend.(backend.Workflows)
	if !ok {
		return 0, fmt.Errorf("cancel workflow %s: backend %T does not store workflows", id, c.backend)
	}
	n, err := flows.CancelWorkflow(ctx, id, c.now())
	if err != nil {
		return 0, fmt.Errorf("cancel workflow %s: %w", id, err)
	}
	return n, nil
}

// WaitWorkflow blocks until every step of the workflow has ended (or ctx
// ends) and returns it.
func (c *Client) WaitWorkflow(ctx context.Context, id string) (*WorkflowInfo, error) {
	delay := time.Millisecond
	for {
		info, err := c.GetWorkflow(ctx, id)
		if err != nil {
			return nil, err
		}
		if info.State != backend.WorkflowRunning {
			return info, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait for workflow %s: %w", id, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}
