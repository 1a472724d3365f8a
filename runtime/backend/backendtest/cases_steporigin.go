package backendtest

import (
	"reflect"

	"github.com/nuvom/nuvom/runtime/backend"
)

// testWorkflowStepOrigin: StepOrigins names the workflow of a step and its
// parents in order, and nothing for a job that is no step.
func testWorkflowStepOrigin(s *suite) {
	so, ok := s.b.(backend.StepOrigins)
	if !ok {
		s.t.Fatalf("backend %T does not implement backend.StepOrigins", s.b)
	}
	a := s.step("a", backend.InputNone)
	b := s.step("b", backend.InputNone)
	c := s.step("c", backend.InputNone, backend.Edge{Parent: a.Job.ID, OrderOnly: true}, backend.Edge{Parent: b.Job.ID, IgnoreFailure: true})
	wf := s.enqueueFlow(a, b, c)
	plain := s.job("plain")
	s.enqueue(plain)

	got, err := so.StepOrigin(s.t.Context(), c.Job.ID)
	want := &backend.StepOrigin{WorkflowID: wf.ID, WorkflowName: wf.Name, Parents: c.Parents}
	if err != nil || !reflect.DeepEqual(got, want) {
		s.t.Fatalf("StepOrigin(child) = %+v, %v; want %+v", got, err, want)
	}
	got, err = so.StepOrigin(s.t.Context(), a.Job.ID)
	if err != nil || got == nil || got.WorkflowID != wf.ID || len(got.Parents) != 0 {
		s.t.Fatalf("StepOrigin(root) = %+v, %v; want workflow %s without parents", got, err, wf.ID)
	}
	for _, id := range []string{plain.ID, "no-such-job"} {
		if got, err := so.StepOrigin(s.t.Context(), id); err != nil || got != nil {
			s.t.Fatalf("StepOrigin(%s) = %+v, %v; want nil, nil", id, got, err)
		}
	}
}
