package nuvom_test

import (
	"testing"

	"github.com/nuvom/nuvom"
)

// TestJobErrorNoStutter: a workflow step cancelled because its parent failed
// stores "cancelled: parent step ... ended failed"; Wait's error says
// "cancelled" once.
func TestJobErrorNoStutter(t *testing.T) {
	for _, c := range []struct {
		e    nuvom.JobError
		want string
	}{
		{nuvom.JobError{ID: "j1", Task: "kinds.Combine", State: nuvom.StateCancelled, Message: "cancelled: parent step p1 ended failed"},
			"job j1 (kinds.Combine) cancelled: parent step p1 ended failed"},
		{nuvom.JobError{ID: "j2", Task: "t", State: nuvom.StateFailed, Message: "boom"}, "job j2 (t) failed: boom"},
		{nuvom.JobError{ID: "j3", Task: "t", State: nuvom.StateFailed, Message: "cancelled: not me"}, "job j3 (t) failed: cancelled: not me"},
		{nuvom.JobError{ID: "j4", Task: "t", State: nuvom.StateCancelled}, "job j4 (t) cancelled"},
		{nuvom.JobError{ID: "j5", Task: "t", State: nuvom.StateCancelled, Message: "cancelled with its workflow"},
			"job j5 (t) cancelled with its workflow"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}
