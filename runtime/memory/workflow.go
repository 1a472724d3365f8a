package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

var _ backend.Workflows = (*Backend)(nil)

// flowState holds the workflows; a step waiting for its parents is a job in
// state pending that no heap holds.
type flowState struct {
	workflows map[string]*memWorkflow
	steps     map[string]*memStep // by job id
	// children lists each parent's edges to its children, in enqueue order.
	children map[string][]*memEdge
}

type memWorkflow struct {
	id, name string
	created  time.Time
	steps    []string // job ids in enqueue order
	live     int      // how many of steps' jobs exist
}

type memStep struct {
	wf      string // the workflow's id
	input   backend.Input
	parents []backend.Edge
	waiting int
}

type memEdge struct {
	child  string
	ignore bool
	done   bool
}

func (f *flowState) init() {
	if f.workflows == nil {
		f.workflows = map[string]*memWorkflow{}
		f.steps = map[string]*memStep{}
		f.children = map[string][]*memEdge{}
	}
}

// EnqueueWorkflow stores a workflow's jobs and edges atomically.
func (b *Backend) EnqueueWorkflow(ctx context.Context, wf *backend.Workflow) error {
	if err := backend.CheckWorkflow(wf); err != nil {
		return fmt.Errorf("memory: enqueue workflow: %w", err)
	}
	if err := b.lock(ctx, "enqueue workflow"); err != nil {
		return err
	}
	defer b.mu.Unlock()
	b.flow.init()
	if b.flow.workflows[wf.ID] != nil {
		return fmt.Errorf("memory: enqueue workflow %s: a workflow with this id exists", wf.ID)
	}
	for _, s := range wf.Steps {
		if b.jobs[s.Job.ID] != nil {
			return fmt.Errorf("memory: enqueue workflow %s: job %s exists", wf.ID, s.Job.ID)
		}
	}
	w := &memWorkflow{id: wf.ID, name: wf.Name, created: backend.ClampTime(wf.CreatedAt)}
	for _, s := range wf.Steps {
		e := &entry{job: *s.Job, index: -1}
		cloneSlices(&e.job)
		e.job.ClampTimes()
		e.setRunAt(e.job.RunAt)
		e.setLeaseUntil(e.job.LeaseUntil)
		b.jobs[e.job.ID] = e
		if e.job.State != backend.StatePending {
			b.queue(&e.job).add(e)
		}
		b.flow.steps[e.job.ID] = &memStep{wf: wf.ID, input: s.Input, parents: slices.Clone(s.Parents), waiting: len(s.Parents)}
		for _, p := range s.Parents {
			b.flow.children[p.Parent] = append(b.flow.children[p.Parent], &memEdge{child: e.job.ID, ignore: p.IgnoreFailure})
		}
		w.steps = append(w.steps, e.job.ID)
	}
	w.live = len(w.steps)
	b.flow.workflows[wf.ID] = w
	b.notify()
	return nil
}

// settle applies the release rule to a job that just ended, under the
// mutex; it reports whether it queued a child.
func (b *Backend) settle(id string, state backend.State, at time.Time) bool {
	if len(b.flow.children) == 0 {
		return false
	}
	type end struct {
		id    string
		state backend.State
	}
	released := false
	work := []end{{id, state}}
	for len(work) > 0 {
		p := work[0]
		work = work[1:]
		for _, edge := range b.flow.children[p.id] {
			if edge.done {
				continue
			}
			edge.done = true
			ce := b.jobs[edge.child]
			if ce == nil || ce.job.State != backend.StatePending {
				continue
			}
			if p.state != backend.StateSucceeded && !edge.ignore {
				ce.job.State = backend.StateCancelled
				ce.job.FinishedAt = at
				ce.job.Error = backend.ParentFailed(p.id, p.state)
				work = append(work, end{edge.child, backend.StateCancelled})
				continue
			}
			st := b.flow.steps[edge.child]
			st.waiting--
			if st.waiting > 0 {
				continue
			}
			var results [][]byte
			if st.input != backend.InputNone {
				for _, e := range st.parents {
					if e.OrderOnly {
						continue
					}
					var r []byte
					if pe := b.jobs[e.Parent]; pe != nil {
						r = pe.job.Result
					}
					results = append(results, r)
				}
			}
			args, err := backend.StepInput(st.input, ce.job.Args, results)
			if err != nil {
				ce.job.State, ce.job.FinishedAt, ce.job.Error = backend.StateQuarantined, at, err.Error()
				work = append(work, end{edge.child, backend.StateQuarantined})
				continue
			}
			ce.job.Args = args
			ce.job.State = backend.StateQueued
			if ce.job.RunAt.After(at) {
				ce.job.State = backend.StateScheduled
			} else {
				ce.setRunAt(at)
			}
			b.queue(&ce.job).add(ce)
			released = true
		}
	}
	return released
}

// forgetStep drops what the workflows hold of the job id, which is being
// deleted (b.mu held): its step, its edges to its children (whose pending
// steps orphanChildren settles first), and its workflow when it was the
// last step left (the deletion rule of backend.Workflows). It reports
// whether it queued a step.
func (b *Backend) forgetStep(id string, now time.Time) bool {
	st := b.flow.steps[id]
	if st == nil {
		return false
	}
	released := b.orphanChildren(id, now)
	delete(b.flow.steps, id)
	delete(b.flow.children, id)
	if w := b.flow.workflows[st.wf]; w != nil {
		if w.live--; w.live == 0 {
			delete(b.flow.workflows, st.wf)
		}
	}
	return released
}

// orphanChildren applies the deletion rule to the pending children of the
// step id, which is being deleted (b.mu held): a pending child is cancelled
// (ParentDeleted), unless its edge ignores failure (then id counts as a
// parent that failed); what that ends is settled in turn. It reports
// whether it queued a step.
func (b *Backend) orphanChildren(id string, now time.Time) bool {
	var cancelled []string
	for _, edge := range b.flow.children[id] {
		ce := b.jobs[edge.child]
		if ce == nil || ce.job.State != backend.StatePending || edge.ignore {
			continue
		}
		ce.job.State, ce.job.FinishedAt, ce.job.Error = backend.StateCancelled, now, backend.ParentDeleted(id)
		cancelled = append(cancelled, edge.child)
	}
	released := b.settle(id, backend.StateCancelled, now) // its open edges, as a parent that failed
	for _, c := range cancelled {
		released = b.settle(c, backend.StateCancelled, now) || released
	}
	return released
}

// GetWorkflow returns a workflow with copies of its steps' records.
func (b *Backend) GetWorkflow(ctx context.Context, id string) (*backend.WorkflowInfo, error) {
	if err := b.lock(ctx, "get workflow "+id); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	w := b.flow.workflows[id]
	if w == nil {
		return nil, fmt.Errorf("memory: get workflow %s: %w", id, backend.ErrWorkflowNotFound)
	}
	info := &backend.WorkflowInfo{ID: w.id, Name: w.name, CreatedAt: w.created}
	for seq, jid := range w.steps {
		e := b.jobs[jid]
		if e == nil {
			continue // purged
		}
		st := b.flow.steps[jid]
		info.Steps = append(info.Steps, backend.StepInfo{Seq: seq, Job: cloneJob(&e.job), Parents: slices.Clone(st.parents), Input: st.input})
	}
	info.Summarize()
	return info, nil
}

// ListWorkflows returns the newest workflows first.
func (b *Backend) ListWorkflows(ctx context.Context, limit int) ([]backend.WorkflowSummary, error) {
	if err := b.lock(ctx, "list workflows"); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	if limit <= 0 {
		limit = 100
	}
	ws := make([]*memWorkflow, 0, len(b.flow.workflows))
	for _, w := range b.flow.workflows {
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(x, y *memWorkflow) int { return cmp.Compare(y.id, x.id) })
	out := []backend.WorkflowSummary{}
	for _, w := range ws[:min(limit, len(ws))] {
		s := backend.WorkflowSummary{ID: w.id, Name: w.name, CreatedAt: w.created, Counts: map[backend.State]int{}}
		for _, jid := range w.steps {
			if e := b.jobs[jid]; e != nil {
				s.Counts[e.job.State]++
				s.Steps++
			}
		}
		s.State = backend.StateOfCounts(s.Counts)
		out = append(out, s)
	}
	return out, nil
}

// CancelWorkflow cancels every step that has not ended.
func (b *Backend) CancelWorkflow(ctx context.Context, id string, now time.Time) (int, error) {
	if err := b.lock(ctx, "cancel workflow "+id); err != nil {
		return 0, err
	}
	defer b.mu.Unlock()
	w := b.flow.workflows[id]
	if w == nil {
		return 0, fmt.Errorf("memory: cancel workflow %s: %w", id, backend.ErrWorkflowNotFound)
	}
	now = backend.ClampTime(now)
	var ended []string
	for _, jid := range w.steps {
		e := b.jobs[jid]
		if e == nil || e.job.State.Final() {
			continue
		}
		b.cancelEntry(e, now, backend.WorkflowCancelled)
		ended = append(ended, jid)
	}
	for _, jid := range ended {
		b.settle(jid, backend.StateCancelled, now)
	}
	b.notify()
	return len(ended), nil
}

// cancelEntry cancels a job that has not ended, under the mutex; a running
// job's lease ends and its attempt is recorded as cancelled with msg.
func (b *Backend) cancelEntry(e *entry, now time.Time, msg string) {
	j := &e.job
	if j.State == backend.StateRunning {
		j.Attempts = append(j.Attempts, backend.Attempt{Number: j.Attempt, StartedAt: j.StartedAt,
			FinishedAt: now, Worker: j.LeaseOwner, Outcome: backend.OutcomeCancelled, Error: msg})
		j.Result, j.ErrorChain, j.PanicStack = nil, nil, ""
		j.LeaseOwner, j.LeaseUntil = "", time.Time{}
	}
	j.Error = msg
	b.detach(e)
	j.State = backend.StateCancelled
	j.FinishedAt = now
}

// waitedFor reports whether a pending workflow step waits for the job id
// (whose result it may take as input): retention keeps such a job. b.mu is
// held.
func (b *Backend) waitedFor(id string) bool {
	for _, e := range b.flow.children[id] {
		if c := b.jobs[e.child]; c != nil && c.job.State == backend.StatePending {
			return true
		}
	}
	return false
}
