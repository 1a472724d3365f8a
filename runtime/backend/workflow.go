package backend

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// StatePending is the state of a workflow step waiting for its parents: it is
// not claimed, and becomes queued (or cancelled) when its last parent ends.
// Claims never read pending jobs: they wait outside the ready set.
const StatePending State = "pending"

// ErrWorkflowNotFound: no workflow with that id.
var ErrWorkflowNotFound = errors.New("workflow not found")

// Input says what a workflow step receives from its parents as its first argument.
type Input int

// The inputs of a step.
const (
	// InputNone: the step's Args are complete; parents only order it.
	InputNone Input = iota
	// InputResult: the stored result of the one parent whose edge is not
	// OrderOnly is spliced in as the first argument (a msgpack nil when the
	// parent stored none).
	InputResult
	// InputResults: a msgpack array of the stored results of the parents
	// whose edges are not OrderOnly, in the order of Parents, is spliced in
	// as the first argument.
	InputResults
)

// Edge links a step to one of its parents.
type Edge struct {
	// Parent is the parent step's job id.
	Parent string `json:"parent"`
	// IgnoreFailure lets the step run when this parent ends failed, cancelled
	// or quarantined; by default the step is cancelled then.
	IgnoreFailure bool `json:"ignore_failure,omitempty"`
	// OrderOnly: the child only runs after the parent; the parent's result
	// is not part of the child's input.
	OrderOnly bool `json:"order_only,omitempty"`
}

// Step is one job of a workflow with the parents it waits for.
type Step struct {
	// Job is the step's job, complete as for Enqueue. A step without parents
	// is queued or scheduled; a step with parents must be pending: its Args
	// hold every argument but the first when Input is not InputNone.
	Job     *Job
	Parents []Edge
	Input   Input
}

// Workflow is a graph of jobs stored together: each step runs once all its
// parents have ended, with their results as its input.
type Workflow struct {
	ID        string
	Name      string
	CreatedAt time.Time
	// Steps are in any order that lists every parent before its children.
	Steps []Step
}

// WorkflowInfo is a stored workflow: its steps' jobs (their current records)
// and edges, in the order they were enqueued.
type WorkflowInfo struct {
	ID        string        `json:"id"`
	Name      string        `json:"name,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	Steps     []StepInfo    `json:"steps"`
	Counts    map[State]int `json:"counts"`
	State     WorkflowState `json:"state"`
}

// StepInfo is one stored step.
type StepInfo struct {
	// Seq is the step's position in the workflow as enqueued, from 0; it
	// stays when the jobs of earlier steps are deleted.
	Seq     int    `json:"seq"`
	Job     *Job   `json:"job"`
	Parents []Edge `json:"parents,omitempty"`
	Input   Input  `json:"input"`
}

// WorkflowState summarises the states of a workflow's steps.
type WorkflowState string

// The states of a workflow.
const (
	WorkflowRunning   WorkflowState = "running"   // some step is not final
	WorkflowSucceeded WorkflowState = "succeeded" // every step succeeded
	WorkflowFailed    WorkflowState = "failed"    // every step is final, some failed or were quarantined
	// WorkflowCancelledState: every step is final, some were cancelled,
	// none failed (WorkflowCancelled is the Error of its cancelled steps).
	WorkflowCancelledState WorkflowState = "cancelled"
)

// WorkflowSummary is one line of ListWorkflows.
type WorkflowSummary struct {
	ID        string        `json:"id"`
	Name      string        `json:"name,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	Steps     int           `json:"steps"`
	Counts    map[State]int `json:"counts"`
	State     WorkflowState `json:"state"`
}

// Summary returns the summary of w that ListWorkflows gives.
func (w *WorkflowInfo) Summary() WorkflowSummary {
	return WorkflowSummary{ID: w.ID, Name: w.Name, CreatedAt: w.CreatedAt, Steps: len(w.Steps), Counts: w.Counts, State: w.State}
}

// Workflows is the part of the storage contract that stores workflows. Every
// backend implements it (the conformance suite checks); it is a separate
// interface so that the core Backend stays small.
//
// The release rule: when a step's job ends (Complete to a final state, a
// RecoverExpired that fails it, Cancel, CancelWorkflow), in the same
// transaction (or under the same lock, or in the same script), each pending
// child whose edge from it does not ignore failure is cancelled when it did
// not succeed (with FinishedAt = now and an Error naming the parent), which
// ends that child in turn; a child whose parents have all ended (and was not
// cancelled) becomes queued at now (scheduled when its RunAt is later), its
// input spliced into its Args (SpliceArg). A crash at any moment loses no
// child and releases none twice.
//
// The deletion rule: a call that deletes jobs (Purge, PurgeEnded,
// TrimEnded, and a backend's own retention) deletes with a step's job what
// the workflow stores of that step, and deletes the workflow's record with
// the last of its steps' jobs, so that retention bounds workflows too. A
// step whose job is gone is left out of GetWorkflow and ListWorkflows; a
// workflow none of whose steps' jobs is left is ErrWorkflowNotFound. A
// pending step one of whose parents is deleted is cancelled with
// ParentDeleted as its Error, whether that parent had ended or not (unless
// the edge ignores failure: then the deleted parent counts as one that
// failed), by the deleting call or at the latest by the next
// RecoverExpired. (Retention does not delete the parents of pending steps;
// Purge does.)
type Workflows interface {
	// EnqueueWorkflow stores every step of wf, all or nothing (see Enqueue;
	// unique keys are not allowed on steps). Its ids must be new.
	EnqueueWorkflow(ctx context.Context, wf *Workflow) error
	// GetWorkflow returns a workflow with its steps' current records, or ErrWorkflowNotFound.
	GetWorkflow(ctx context.Context, id string) (*WorkflowInfo, error)
	// ListWorkflows returns up to limit workflows (100 when limit <= 0), newest (highest id) first.
	ListWorkflows(ctx context.Context, limit int) ([]WorkflowSummary, error)
	// CancelWorkflow cancels every step that has not ended (as Cancel does
	// for one job; pending steps too) and returns how many it cancelled.
	CancelWorkflow(ctx context.Context, id string, now time.Time) (int, error)
}

// Summarize fills info's Counts and State from its steps.
func (info *WorkflowInfo) Summarize() {
	info.Counts = map[State]int{}
	for _, s := range info.Steps {
		info.Counts[s.Job.State]++
	}
	info.State = StateOfCounts(info.Counts)
}

// StateOfCounts is the workflow state of steps counted by state.
func StateOfCounts(counts map[State]int) WorkflowState {
	for st, n := range counts {
		if n > 0 && !st.Final() {
			return WorkflowRunning
		}
	}
	switch {
	case counts[StateFailed] > 0 || counts[StateQuarantined] > 0:
		return WorkflowFailed
	case counts[StateCancelled] > 0:
		return WorkflowCancelledState
	}
	return WorkflowSucceeded
}

// CheckWorkflow validates wf before it is stored: an id, at least one step,
// jobs complete as for Enqueue, roots queued or scheduled and other steps
// pending, every parent an earlier step, no unique keys, ids distinct.
func CheckWorkflow(wf *Workflow) error {
	if wf == nil || wf.ID == "" {
		return errors.New("workflow has no id")
	}
	if len(wf.Steps) == 0 {
		return fmt.Errorf("workflow %s has no steps", wf.ID)
	}
	if wf.CreatedAt.IsZero() {
		return fmt.Errorf("workflow %s has no created time", wf.ID)
	}
	seen := make(map[string]bool, len(wf.Steps))
	for i, s := range wf.Steps {
		j := s.Job
		switch {
		case j == nil:
			return fmt.Errorf("workflow %s: step %d has no job", wf.ID, i)
		case j.ID == "" || j.Task == "" || j.Queue == "":
			return fmt.Errorf("workflow %s: step %d needs an id, a task and a queue", wf.ID, i)
		case j.RunAt.IsZero() || j.CreatedAt.IsZero():
			return fmt.Errorf("workflow %s: step %s: run-at and created times must be set", wf.ID, j.ID)
		case j.UniqueKey != "":
			return fmt.Errorf("workflow %s: step %s: workflow steps cannot have unique keys", wf.ID, j.ID)
		case seen[j.ID]:
			return fmt.Errorf("workflow %s: job id %s appears twice", wf.ID, j.ID)
		}
		if len(s.Parents) == 0 {
			if j.State != StateQueued && j.State != StateScheduled {
				return fmt.Errorf("workflow %s: step %s has no parents: state %q, want queued or scheduled", wf.ID, j.ID, j.State)
			}
			if s.Input != InputNone {
				return fmt.Errorf("workflow %s: step %s takes its parents' results but has no parents", wf.ID, j.ID)
			}
		} else if j.State != StatePending {
			return fmt.Errorf("workflow %s: step %s has parents: state %q, want pending", wf.ID, j.ID, j.State)
		}
		feeding := 0
		for _, e := range s.Parents {
			if !e.OrderOnly {
				feeding++
			}
		}
		if s.Input == InputResult && feeding != 1 {
			return fmt.Errorf("workflow %s: step %s takes one parent's result but %d parents feed it", wf.ID, j.ID, feeding)
		}
		if s.Input < InputNone || s.Input > InputResults {
			return fmt.Errorf("workflow %s: step %s: unknown input %d", wf.ID, j.ID, s.Input)
		}
		ps := make(map[string]bool, len(s.Parents))
		for _, e := range s.Parents {
			if !seen[e.Parent] {
				return fmt.Errorf("workflow %s: step %s: parent %s is not an earlier step", wf.ID, j.ID, e.Parent)
			}
			if ps[e.Parent] {
				return fmt.Errorf("workflow %s: step %s: parent %s appears twice", wf.ID, j.ID, e.Parent)
			}
			ps[e.Parent] = true
		}
		seen[j.ID] = true
	}
	return nil
}

// msgpackNil is msgpack's nil, the input from a parent that stored no result.
const msgpackNil = 0xc0

// arrayHeader appends a msgpack array header of n elements.
func arrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
	}
}

// readArrayHeader returns the element count of the msgpack array at the start
// of b and the header's length. An empty b is an empty array.
func readArrayHeader(b []byte) (n, size int, err error) {
	switch {
	case len(b) == 0:
		return 0, 0, nil
	case b[0]&0xf0 == 0x90:
		return int(b[0] & 0x0f), 1, nil
	case b[0] == 0xdc && len(b) >= 3:
		return int(binary.BigEndian.Uint16(b[1:])), 3, nil
	case b[0] == 0xdd && len(b) >= 5:
		return int(binary.BigEndian.Uint32(b[1:])), 5, nil
	}
	return 0, 0, errors.New("args are not a msgpack array")
}

// SpliceArg returns args (a msgpack array) with first inserted as its first
// element; an empty first is a msgpack nil.
func SpliceArg(args, first []byte) ([]byte, error) {
	n, size, err := readArrayHeader(args)
	if err != nil {
		return nil, fmt.Errorf("splice parent result: %w", err)
	}
	if len(first) == 0 {
		first = []byte{msgpackNil}
	}
	out := make([]byte, 0, len(args)+len(first)+5)
	out = arrayHeader(out, n+1)
	out = append(out, first...)
	return append(out, args[size:]...), nil
}

// ResultList encodes results as a msgpack array (an empty result as nil): the
// input of a fan-in step.
func ResultList(results [][]byte) []byte {
	size := 5
	for _, r := range results {
		size += max(len(r), 1)
	}
	out := arrayHeader(make([]byte, 0, size), len(results))
	for _, r := range results {
		if len(r) == 0 {
			out = append(out, msgpackNil)
			continue
		}
		out = append(out, r...)
	}
	return out
}

// StepInput computes a released step's Args from its stored Args and the
// results of its parents whose edges are not OrderOnly (in the order of its
// Parents).
func StepInput(input Input, args []byte, results [][]byte) ([]byte, error) {
	switch input {
	case InputResult:
		var r []byte
		if len(results) > 0 {
			r = results[0]
		}
		return SpliceArg(args, r)
	case InputResults:
		return SpliceArg(args, ResultList(results))
	}
	return args, nil
}

// ParentFailed is the Error of a step cancelled because a parent did not succeed.
func ParentFailed(parent string, state State) string {
	return fmt.Sprintf("cancelled: parent step %s ended %s", parent, state)
}

// ParentDeleted is the Error of a pending step cancelled because one of
// its parents was deleted (Purge).
func ParentDeleted(parent string) string {
	return fmt.Sprintf("cancelled: parent step %s was deleted", parent)
}

// WorkflowCancelled is the Error of a step cancelled with its workflow.
const WorkflowCancelled = "cancelled with its workflow"
