package main

import (
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/backend"
)

// TestPrintWorkflowAfterDeletions: `workflow show` names a parent whose job
// was deleted by its id, numbers the steps left as they were enqueued (step A
// was #0), and does not repeat the state that a step's error already starts
// with.
func TestPrintWorkflowAfterDeletions(t *testing.T) {
	info := &nuvom.WorkflowInfo{ID: "WF", Name: "fan", CreatedAt: time.Unix(0, 0), Steps: []backend.StepInfo{
		{Seq: 1, Job: &backend.Job{ID: "B", Task: "t.b", State: backend.StateSucceeded}},
		{Seq: 2, Job: &backend.Job{ID: "M", Task: "t.m", State: backend.StateCancelled, Error: backend.ParentDeleted("A")},
			Parents: []backend.Edge{{Parent: "A"}, {Parent: "B"}}, Input: backend.InputResults},
	}}
	info.Summarize()
	var out strings.Builder
	if err := printWorkflow(&out, viewOf(info)); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"#1    B    t.b",
		"A (deleted) (results), #1 (results)",
		"cancelled: parent step A was deleted",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("workflow show prints\n%s\nwithout %q", got, want)
		}
	}
	if strings.Contains(got, "cancelled: cancelled:") {
		t.Errorf("workflow show repeats the state:\n%s", got)
	}
}
