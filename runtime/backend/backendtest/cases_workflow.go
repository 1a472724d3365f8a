package backendtest

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// workflowCases state the backend.Workflows contract.
func workflowCases() []testCase {
	return []testCase{
		{"WorkflowChain", testWorkflowChain},
		{"WorkflowFanOutFanIn", testWorkflowFanOutFanIn},
		{"WorkflowFailureCancelsDependents", testWorkflowFailureCancels},
		{"WorkflowIgnoreFailure", testWorkflowIgnoreFailure},
		{"WorkflowRetryingDoesNotRelease", testWorkflowRetrying},
		{"WorkflowPoisonPillCancelsDependents", testWorkflowPoisonPill},
		{"WorkflowCancelStep", testWorkflowCancelStep},
		{"WorkflowCancelWhole", testWorkflowCancelWhole},
		{"WorkflowEnqueueAllOrNothing", testWorkflowAllOrNothing},
		{"WorkflowList", testWorkflowList},
		{"WorkflowOrderOnlyEdge", testWorkflowOrderOnly},
		{"WorkflowStepOrigin", testWorkflowStepOrigin},
		{"WorkflowRetentionKeepsNeededResults", testWorkflowRetentionKeepsNeededResults},
		{"WorkflowRecordGoesWithItsSteps", testWorkflowRecordGoesWithItsSteps},
		{"WorkflowDeletedParentCancelsStep", testWorkflowDeletedParentCancelsStep},
	}
}

// flows returns the backend's Workflows: every backend has them.
func (s *suite) flows() backend.Workflows {
	s.t.Helper()
	w, ok := s.b.(backend.Workflows)
	if !ok {
		s.t.Fatalf("backend %T does not implement backend.Workflows", s.b)
	}
	return w
}

// step returns a workflow step of task waiting for parents (a root when none).
func (s *suite) step(task string, input backend.Input, parents ...backend.Edge) backend.Step {
	j := s.job(task, func(j *backend.Job) { j.StoreResult = true })
	if len(parents) > 0 {
		j.State = backend.StatePending
	}
	if input != backend.InputNone {
		j.Args = []byte{0x91, 0x07} // the other arguments: [7]
	}
	return backend.Step{Job: j, Parents: parents, Input: input}
}

func from(steps ...backend.Step) []backend.Edge {
	out := make([]backend.Edge, len(steps))
	for i, st := range steps {
		out[i] = backend.Edge{Parent: st.Job.ID}
	}
	return out
}

func (s *suite) enqueueFlow(steps ...backend.Step) *backend.Workflow {
	s.t.Helper()
	s.mu.Lock()
	s.n++
	id := ID(s.n)
	s.mu.Unlock()
	wf := &backend.Workflow{ID: id, Name: "flow", CreatedAt: Epoch(), Steps: steps}
	if err := s.flows().EnqueueWorkflow(s.t.Context(), wf); err != nil {
		s.t.Fatalf("EnqueueWorkflow: %v", err)
	}
	return wf
}

// finish claims exactly the job id at now and completes it with state and result.
func (s *suite) finish(id string, now int, state backend.State, result []byte) {
	s.t.Helper()
	j := s.claimOne("w1", at(secs(now)), 30*sec)
	if j.ID != id {
		s.t.Fatalf("claimed %s (%s), want %s", j.ID, j.Task, id)
	}
	o := outcome(j, state, at(secs(now)))
	o.Result = result
	s.completeOK(o)
}

func (s *suite) wantArgs(id string, want []byte, why string) {
	s.t.Helper()
	if got := s.get(id).Args; !bytes.Equal(got, want) {
		s.t.Fatalf("%s: args of %s = % x, want % x", why, id, got, want)
	}
}

func testWorkflowChain(s *suite) {
	a := s.step("a", backend.InputNone)
	b := s.step("b", backend.InputResult, from(a)...)
	c := s.step("c", backend.InputNone, from(b)...)
	c.Job.Args = []byte{0x91, 0xa2, 'h', 'i'}
	s.enqueueFlow(a, b, c)
	s.wantState(b.Job.ID, backend.StatePending, "child before its parent ran")
	s.wantState(c.Job.ID, backend.StatePending, "grandchild before its parent ran")
	jobs := s.claimAt(at(sec), 10)
	if len(jobs) != 1 || jobs[0].ID != a.Job.ID {
		s.t.Fatalf("first claim = %v, want only the root %s", idsOf(jobs), a.Job.ID)
	}
	ra := []byte{0xa1, 'x'}
	o := outcome(jobs[0], backend.StateSucceeded, at(2*sec))
	o.Result = ra
	s.completeOK(o)
	got := s.get(b.Job.ID)
	if got.State != backend.StateQueued || !got.RunAt.Equal(at(2*sec)) {
		s.t.Fatalf("child after its parent succeeded: %s run-at %s, want queued at %s", got.State, got.RunAt, at(2*sec))
	}
	s.wantArgs(b.Job.ID, []byte{0x92, 0xa1, 'x', 0x07}, "child's input is its parent's result, then its own args")
	s.wantState(c.Job.ID, backend.StatePending, "grandchild while its parent is queued")
	s.finish(b.Job.ID, 3, backend.StateSucceeded, []byte{0x01})
	s.wantArgs(c.Job.ID, []byte{0x91, 0xa2, 'h', 'i'}, "a step without input keeps its args")
	s.finish(c.Job.ID, 4, backend.StateSucceeded, nil)
	s.claimNone(at(hour), "finished chain")

	info, err := s.flows().GetWorkflow(s.t.Context(), "unknown")
	if !errors.Is(err, backend.ErrWorkflowNotFound) || info != nil {
		s.t.Errorf("GetWorkflow(unknown) = %v, %v; want ErrWorkflowNotFound", info, err)
	}
}

func testWorkflowFanOutFanIn(s *suite) {
	root := s.step("root", backend.InputNone)
	var kids []backend.Step
	for range 3 {
		kids = append(kids, s.step("kid", backend.InputResult, from(root)...))
	}
	merge := s.step("merge", backend.InputResults, from(kids...)...)
	wf := s.enqueueFlow(append(append([]backend.Step{root}, kids...), merge)...)
	s.finish(root.Job.ID, 1, backend.StateSucceeded, []byte{0x05})
	for _, k := range kids {
		s.wantArgs(k.Job.ID, []byte{0x92, 0x05, 0x07}, "fan-out child")
	}
	// Finish the children out of order; the last one stores no result.
	results := map[string][]byte{kids[0].Job.ID: {0x0a}, kids[1].Job.ID: {0x0b}, kids[2].Job.ID: nil}
	jobs := s.claimAt(at(2*sec), 10)
	if len(jobs) != 3 {
		s.t.Fatalf("claimed %d fan-out children, want 3", len(jobs))
	}
	order := []int{1, 2, 0}
	for n, i := range order {
		var j *backend.Job
		for _, c := range jobs {
			if c.ID == kids[i].Job.ID {
				j = c
			}
		}
		if j == nil {
			s.t.Fatalf("child %s not claimed", kids[i].Job.ID)
		}
		s.wantState(merge.Job.ID, backend.StatePending, "fan-in before its last parent")
		o := outcome(j, backend.StateSucceeded, at(secs(3+n)))
		o.Result = results[j.ID]
		s.completeOK(o)
	}
	s.wantState(merge.Job.ID, backend.StateQueued, "fan-in after its last parent")
	// [[0x0a, 0x0b, nil], 7]: results in the order of the parents, not of completion.
	s.wantArgs(merge.Job.ID, []byte{0x92, 0x93, 0x0a, 0x0b, 0xc0, 0x07}, "fan-in input")
	info, err := s.flows().GetWorkflow(s.t.Context(), wf.ID)
	if err != nil {
		s.t.Fatal(err)
	}
	if len(info.Steps) != 5 || info.Steps[4].Job.ID != merge.Job.ID || len(info.Steps[4].Parents) != 3 ||
		info.Steps[4].Parents[2].Parent != kids[2].Job.ID || info.Steps[4].Input != backend.InputResults {
		s.t.Fatalf("GetWorkflow steps = %+v, want 5 in enqueue order, the merge with its 3 parents in order", info.Steps)
	}
	for i, st := range info.Steps {
		if st.Seq != i {
			s.t.Errorf("GetWorkflow step %d (%s) has Seq %d, want %d", i, st.Job.ID, st.Seq, i)
		}
	}
	if info.State != backend.WorkflowRunning || info.Counts[backend.StateSucceeded] != 4 || info.Counts[backend.StateQueued] != 1 {
		s.t.Errorf("workflow state %s counts %v, want running, 4 succeeded, 1 queued", info.State, info.Counts)
	}
	s.finish(merge.Job.ID, 10, backend.StateSucceeded, nil)
	if info, err = s.flows().GetWorkflow(s.t.Context(), wf.ID); err != nil || info.State != backend.WorkflowSucceeded {
		s.t.Errorf("finished workflow: %+v, %v; want succeeded", info, err)
	}
}

func testWorkflowFailureCancels(s *suite) {
	a := s.step("a", backend.InputNone)
	other := s.step("other", backend.InputNone)
	b := s.step("b", backend.InputResult, from(a)...)
	c := s.step("c", backend.InputNone, from(b)...)
	fanIn := s.step("m", backend.InputResults, from(a, other)...)
	wf := s.enqueueFlow(a, other, b, c, fanIn)
	s.finish(a.Job.ID, 1, backend.StateFailed, nil)
	for _, id := range []string{b.Job.ID, c.Job.ID, fanIn.Job.ID} {
		got := s.get(id)
		if got.State != backend.StateCancelled || !got.FinishedAt.Equal(at(sec)) {
			s.t.Fatalf("dependent %s of a failed parent: %s finished %s, want cancelled at %s", id, got.State, got.FinishedAt, at(sec))
		}
	}
	if got := s.get(b.Job.ID); !strings.Contains(got.Error, a.Job.ID) {
		s.t.Errorf("cancelled child's error %q does not name its parent %s", got.Error, a.Job.ID)
	}
	if got := s.get(c.Job.ID); !strings.Contains(got.Error, b.Job.ID) {
		s.t.Errorf("cancelled grandchild's error %q does not name its parent %s", got.Error, b.Job.ID)
	}
	s.finish(other.Job.ID, 2, backend.StateSucceeded, []byte{0x01})
	s.wantState(fanIn.Job.ID, backend.StateCancelled, "fan-in whose other parent succeeded later")
	s.claimNone(at(hour), "cancelled dependents")
	info, err := s.flows().GetWorkflow(s.t.Context(), wf.ID)
	if err != nil || info.State != backend.WorkflowFailed {
		s.t.Errorf("workflow with a failed step: %+v, %v; want failed", info, err)
	}
}

func testWorkflowIgnoreFailure(s *suite) {
	a := s.step("a", backend.InputNone)
	b := s.step("b", backend.InputResult, backend.Edge{Parent: a.Job.ID, IgnoreFailure: true})
	c := s.step("c", backend.InputNone, from(a)...)
	s.enqueueFlow(a, b, c)
	s.finish(a.Job.ID, 1, backend.StateFailed, nil)
	s.wantState(b.Job.ID, backend.StateQueued, "child whose edge ignores failure")
	s.wantArgs(b.Job.ID, []byte{0x92, 0xc0, 0x07}, "input from a failed parent is nil")
	s.wantState(c.Job.ID, backend.StateCancelled, "sibling whose edge does not ignore failure")
}

func testWorkflowRetrying(s *suite) {
	a := s.step("a", backend.InputNone)
	b := s.step("b", backend.InputResult, from(a)...)
	s.enqueueFlow(a, b)
	s.finish(a.Job.ID, 1, backend.StateRetrying, nil)
	s.wantState(b.Job.ID, backend.StatePending, "child of a retrying parent")
	s.finish(a.Job.ID, 2, backend.StateSucceeded, []byte{0x03})
	s.wantArgs(b.Job.ID, []byte{0x92, 0x03, 0x07}, "child after the retry succeeded")
}

func testWorkflowPoisonPill(s *suite) {
	a := s.step("a", backend.InputNone)
	b := s.step("b", backend.InputNone, from(a)...)
	s.enqueueFlow(a, b)
	s.claimOne("w1", at(0), sec)
	if _, err := s.b.RecoverExpired(s.t.Context(), at(min1), 1); err != nil {
		s.t.Fatal(err)
	}
	s.wantState(a.Job.ID, backend.StateFailed, "parent lost once with maxLost 1")
	s.wantState(b.Job.ID, backend.StateCancelled, "child of a parent failed as a poison pill")
}

func testWorkflowCancelStep(s *suite) {
	a := s.step("a", backend.InputNone)
	b := s.step("b", backend.InputNone, from(a)...)
	c := s.step("c", backend.InputNone, from(b)...)
	d := s.step("d", backend.InputNone, backend.Edge{Parent: b.Job.ID, IgnoreFailure: true})
	s.enqueueFlow(a, b, c, d)
	if err := s.b.Cancel(s.t.Context(), b.Job.ID, at(sec)); err != nil {
		s.t.Fatalf("Cancel of a pending step: %v", err)
	}
	s.wantState(b.Job.ID, backend.StateCancelled, "cancelled pending step")
	s.wantState(c.Job.ID, backend.StateCancelled, "child of a cancelled step")
	s.wantState(d.Job.ID, backend.StateQueued, "child whose edge ignores failure, after its parent was cancelled")
}

func testWorkflowCancelWhole(s *suite) {
	done := s.step("done", backend.InputNone)
	a := s.step("a", backend.InputNone)
	a2 := s.step("a2", backend.InputNone)
	b := s.step("b", backend.InputNone, from(a)...)
	wf := s.enqueueFlow(done, a, a2, b)
	s.finish(done.Job.ID, 1, backend.StateSucceeded, nil)
	running := s.claimOne("w1", at(2*sec), 30*sec)
	n, err := s.flows().CancelWorkflow(s.t.Context(), wf.ID, at(3*sec))
	if err != nil || n != 3 {
		s.t.Fatalf("CancelWorkflow = %d, %v; want 3 steps cancelled", n, err)
	}
	for _, id := range []string{a.Job.ID, a2.Job.ID, b.Job.ID} {
		s.wantState(id, backend.StateCancelled, "step of a cancelled workflow")
		if e := s.get(id).Error; e != backend.WorkflowCancelled { // running or not: the workflow page shows why
			s.t.Errorf("step %s of a cancelled workflow has Error %q, want %q", id, e, backend.WorkflowCancelled)
		}
	}
	s.wantState(done.Job.ID, backend.StateSucceeded, "finished step of a cancelled workflow")
	errs := s.complete(outcome(running, backend.StateSucceeded, at(4*sec)))
	if !errors.Is(errs[0], backend.ErrLeaseLost) {
		s.t.Errorf("completing a step running when its workflow was cancelled: %v, want ErrLeaseLost", errs[0])
	}
	s.claimNone(at(hour), "cancelled workflow")
	if info, err := s.flows().GetWorkflow(s.t.Context(), wf.ID); err != nil || info.State != backend.WorkflowCancelledState {
		s.t.Errorf("cancelled workflow: %+v, %v; want state cancelled", info, err)
	}
	if _, err := s.flows().CancelWorkflow(s.t.Context(), "nope", at(sec)); !errors.Is(err, backend.ErrWorkflowNotFound) {
		s.t.Errorf("CancelWorkflow(unknown) = %v, want ErrWorkflowNotFound", err)
	}
}

func testWorkflowAllOrNothing(s *suite) {
	taken := s.job("taken")
	s.enqueue(taken)
	a := s.step("a", backend.InputNone)
	b := s.step("b", backend.InputNone, from(a)...)
	b.Job.ID = taken.ID
	wf := &backend.Workflow{ID: ID(999), CreatedAt: Epoch(), Steps: []backend.Step{a, b}}
	if err := s.flows().EnqueueWorkflow(s.t.Context(), wf); err == nil {
		s.t.Fatal("EnqueueWorkflow with a step id that exists succeeded")
	}
	if _, err := s.b.Get(s.t.Context(), a.Job.ID); !errors.Is(err, backend.ErrNotFound) {
		s.t.Errorf("a step of a refused workflow was stored: %v", err)
	}
	if _, err := s.flows().GetWorkflow(s.t.Context(), wf.ID); !errors.Is(err, backend.ErrWorkflowNotFound) {
		s.t.Errorf("refused workflow was stored: %v", err)
	}
	bad := &backend.Workflow{ID: ID(998), CreatedAt: Epoch(), Steps: []backend.Step{s.step("x", backend.InputNone, backend.Edge{Parent: "later"})}}
	if err := s.flows().EnqueueWorkflow(s.t.Context(), bad); err == nil {
		s.t.Error("EnqueueWorkflow with a parent that is not an earlier step succeeded")
	}
	// The same workflow, fixed, goes in.
	b.Job.ID = ID(997)
	if err := s.flows().EnqueueWorkflow(s.t.Context(), wf); err != nil {
		s.t.Fatalf("EnqueueWorkflow after a refused attempt: %v", err)
	}
}

func testWorkflowList(s *suite) {
	first := s.enqueueFlow(s.step("a", backend.InputNone))
	x := s.step("x", backend.InputNone)
	second := s.enqueueFlow(x, s.step("y", backend.InputNone, from(x)...))
	list, err := s.flows().ListWorkflows(s.t.Context(), 0)
	if err != nil {
		s.t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != second.ID || list[1].ID != first.ID {
		s.t.Fatalf("ListWorkflows = %+v, want the two workflows, newest first", list)
	}
	if list[0].Steps != 2 || list[0].Counts[backend.StatePending] != 1 || list[0].Counts[backend.StateQueued] != 1 ||
		list[0].State != backend.WorkflowRunning || list[0].Name != "flow" {
		s.t.Errorf("summary = %+v, want 2 steps, 1 pending, 1 queued, running, named flow", list[0])
	}
	if list, err = s.flows().ListWorkflows(s.t.Context(), 1); err != nil || len(list) != 1 {
		s.t.Errorf("ListWorkflows(1) = %d workflows, %v; want 1", len(list), err)
	}
}

// secs is n seconds.
func secs(n int) time.Duration { return time.Duration(n) * sec }

func testWorkflowOrderOnly(s *suite) {
	feed := s.step("feed", backend.InputNone)
	after := s.step("after", backend.InputNone)
	c := s.step("c", backend.InputResult, backend.Edge{Parent: feed.Job.ID}, backend.Edge{Parent: after.Job.ID, OrderOnly: true})
	s.enqueueFlow(feed, after, c)
	s.finish(feed.Job.ID, 1, backend.StateSucceeded, []byte{0x05})
	s.wantState(c.Job.ID, backend.StatePending, "step whose order-only parent has not ended")
	s.finish(after.Job.ID, 2, backend.StateSucceeded, []byte{0x06})
	s.wantState(c.Job.ID, backend.StateQueued, "step after both parents")
	s.wantArgs(c.Job.ID, []byte{0x92, 0x05, 0x07}, "only the feeding parent's result is the input")
}

// testWorkflowRetentionKeepsNeededResults: retention (PurgeEnded,
// TrimEnded) keeps an ended step whose result a pending step still waits
// for, and a trim does not count it, so that the fan-in gets every parent's
// result; once it is released, the parents go like any ended job.
func testWorkflowRetentionKeepsNeededResults(s *suite) {
	ctx := s.t.Context()
	x := s.job("x") // a plain job of the steps' queue, ended before them
	s.enqueue(x)
	a := s.step("a", backend.InputNone)
	b := s.step("b", backend.InputNone)
	m := s.step("m", backend.InputResults, from(a, b)...)
	s.enqueueFlow(a, b, m)
	s.finish(x.ID, 1, backend.StateSucceeded, nil)
	s.finish(a.Job.ID, 2, backend.StateSucceeded, []byte{0x0a})
	if n, err := s.b.PurgeEnded(ctx, at(secs(2)+sec/2), backend.PurgeFilter{IDs: []string{a.Job.ID}}); err != nil || n != 0 {
		s.t.Fatalf("PurgeEnded of the parent while the fan-in waits = %d, %v; want nothing deleted", n, err)
	}
	// Counted, a (newer) would be the one kept and x deleted.
	if n, err := s.b.TrimEnded(ctx, 1, backend.PurgeFilter{}); err != nil || n != 0 {
		s.t.Fatalf("TrimEnded(1) while the fan-in waits = %d, %v; want nothing deleted (the parent not counted)", n, err)
	}
	if n, err := s.b.TrimEnded(ctx, 0, backend.PurgeFilter{}); err != nil || n != 1 {
		s.t.Fatalf("TrimEnded(0) while the fan-in waits = %d, %v; want only the plain job deleted", n, err)
	}
	s.wantState(a.Job.ID, backend.StateSucceeded, "a parent whose result a pending step needs")
	s.finish(b.Job.ID, 3, backend.StateSucceeded, []byte{0x0b})
	s.wantArgs(m.Job.ID, []byte{0x92, 0x92, 0x0a, 0x0b, 0x07}, "fan-in input after retention passes")
	if n, err := s.b.TrimEnded(ctx, 0, backend.PurgeFilter{}); err != nil || n != 2 {
		s.t.Fatalf("TrimEnded(0) after the release = %d, %v; want both parents deleted", n, err)
	}
	s.wantState(m.Job.ID, backend.StateQueued, "the released fan-in")
}

// testWorkflowRecordGoesWithItsSteps: a step whose job is deleted is left
// out of its workflow, and the workflow's record goes with the last of its
// steps' jobs, by every call that deletes jobs (PurgeEnded, TrimEnded,
// Purge), so that retention bounds the workflows too.
func testWorkflowRecordGoesWithItsSteps(s *suite) {
	ctx := s.t.Context()
	a := s.step("a", backend.InputNone)
	b := s.step("b", backend.InputResult, from(a)...)
	first := s.enqueueFlow(a, b)
	s.finish(a.Job.ID, 1, backend.StateSucceeded, []byte{0x01})
	s.finish(b.Job.ID, 2, backend.StateSucceeded, []byte{0x02})
	c := s.step("c", backend.InputNone)
	second := s.enqueueFlow(c)
	third := s.enqueueFlow(s.step("d", backend.InputNone))

	if n, err := s.b.PurgeEnded(ctx, at(secs(1)+sec/2), backend.PurgeFilter{}); err != nil || n != 1 {
		s.t.Fatalf("PurgeEnded of the first step = %d, %v; want 1 deleted", n, err)
	}
	info, err := s.flows().GetWorkflow(ctx, first.ID)
	if err != nil {
		s.t.Fatalf("GetWorkflow after one of its two steps was deleted: %v", err)
	}
	if len(info.Steps) != 1 || info.Steps[0].Job.ID != b.Job.ID || info.State != backend.WorkflowSucceeded {
		s.t.Errorf("GetWorkflow after its first step was deleted = %d steps (%+v), state %s; want only step b, succeeded", len(info.Steps), info.Steps, info.State)
	} else if info.Steps[0].Seq != 1 {
		s.t.Errorf("GetWorkflow after its first step was deleted: step b has Seq %d, want 1 (its place as enqueued)", info.Steps[0].Seq)
	}

	if n, err := s.b.TrimEnded(ctx, 0, backend.PurgeFilter{}); err != nil || n != 1 {
		s.t.Fatalf("TrimEnded(0) = %d, %v; want the last ended step deleted", n, err)
	}
	if info, err := s.flows().GetWorkflow(ctx, first.ID); !errors.Is(err, backend.ErrWorkflowNotFound) {
		s.t.Errorf("GetWorkflow after its last step was deleted = %+v, %v; want ErrWorkflowNotFound", info, err)
	}
	if _, err := s.flows().CancelWorkflow(ctx, first.ID, at(secs(3))); !errors.Is(err, backend.ErrWorkflowNotFound) {
		s.t.Errorf("CancelWorkflow after its last step was deleted = %v; want ErrWorkflowNotFound", err)
	}
	s.wantWorkflows("after a trim", third.ID, second.ID)

	if n, err := s.b.Purge(ctx, backend.PurgeFilter{IDs: []string{c.Job.ID}}); err != nil || n != 1 {
		s.t.Fatalf("Purge of a queued step = %d, %v; want 1 deleted", n, err)
	}
	if _, err := s.flows().GetWorkflow(ctx, second.ID); !errors.Is(err, backend.ErrWorkflowNotFound) {
		s.t.Errorf("GetWorkflow after Purge of its only step = %v; want ErrWorkflowNotFound", err)
	}
	s.wantWorkflows("after a purge", third.ID)
}

// wantWorkflows checks that ListWorkflows lists exactly ids, in that order.
func (s *suite) wantWorkflows(why string, ids ...string) {
	s.t.Helper()
	list, err := s.flows().ListWorkflows(s.t.Context(), 0)
	if err != nil {
		s.t.Fatalf("ListWorkflows %s: %v", why, err)
	}
	got := make([]string, len(list))
	for i, w := range list {
		got[i] = w.ID
	}
	if !slices.Equal(got, ids) {
		s.t.Errorf("ListWorkflows %s = %v, want %v", why, got, ids)
	}
}

// testWorkflowDeletedParentCancelsStep: Purge of a parent of a pending step
// (a queued root; a parent that succeeded, whose result is the step's
// input; an order-only parent that succeeded) cancels the step with an
// Error naming the deletion, by the next RecoverExpired at the latest,
// instead of leaving it pending forever or running it without that input.
func testWorkflowDeletedParentCancelsStep(s *suite) {
	ctx := s.t.Context()
	root := s.step("root", backend.InputNone)
	child := s.step("child", backend.InputResult, from(root)...)
	s.enqueueFlow(root, child)
	a := s.step("a", backend.InputNone)
	b := s.step("b", backend.InputNone)
	m := s.step("m", backend.InputResults, from(a, b)...)
	s.enqueueFlow(a, b, m)
	// An order-only parent that succeeded, then was deleted: the step is
	// cancelled all the same (the rule does not depend on what the parent
	// was to it).
	o := s.step("o", backend.InputNone)
	p := s.step("p", backend.InputNone)
	after := s.step("after", backend.InputResult, backend.Edge{Parent: o.Job.ID, OrderOnly: true}, backend.Edge{Parent: p.Job.ID})
	s.enqueueFlow(o, p, after)

	if n, err := s.b.Purge(ctx, backend.PurgeFilter{IDs: []string{root.Job.ID}}); err != nil || n != 1 {
		s.t.Fatalf("Purge of the queued root = %d, %v; want 1", n, err)
	}
	s.finish(a.Job.ID, 1, backend.StateSucceeded, []byte{0x0a})
	if n, err := s.b.Purge(ctx, backend.PurgeFilter{IDs: []string{a.Job.ID}}); err != nil || n != 1 {
		s.t.Fatalf("Purge of a parent that succeeded = %d, %v; want 1", n, err)
	}
	s.finish(b.Job.ID, 2, backend.StateSucceeded, []byte{0x0b})
	s.finish(o.Job.ID, 3, backend.StateSucceeded, nil)
	if n, err := s.b.Purge(ctx, backend.PurgeFilter{IDs: []string{o.Job.ID}}); err != nil || n != 1 {
		s.t.Fatalf("Purge of an order-only parent that succeeded = %d, %v; want 1", n, err)
	}
	s.finish(p.Job.ID, 4, backend.StateSucceeded, []byte{0x0c})
	if _, err := s.b.RecoverExpired(ctx, at(secs(5)), 5); err != nil {
		s.t.Fatal(err)
	}
	for _, c := range []struct{ step, parent backend.Step }{{child, root}, {m, a}, {after, o}} {
		j := s.get(c.step.Job.ID)
		if j.State != backend.StateCancelled || j.Error != backend.ParentDeleted(c.parent.Job.ID) {
			s.t.Errorf("step %s after its parent %s was deleted: %s (%q); want cancelled (%q)",
				c.step.Job.Task, c.parent.Job.Task, j.State, j.Error, backend.ParentDeleted(c.parent.Job.ID))
		}
	}
}
