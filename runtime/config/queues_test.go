package config

import (
	"strings"
	"testing"
)

// TestQueuesNames: NUVOM_QUEUES (and --queues) takes the queue names that
// enqueue and the task annotations take; a name no job can have (a space
// instead of a comma, a semicolon) is refused, naming it, rather than
// leaving a worker that serves a queue that never gets a job.
func TestQueuesNames(t *testing.T) {
	for _, bad := range []string{"images default", "images;default", "critical,imgs!"} {
		_, err := Load(t.TempDir(), env(map[string]string{"NUVOM_QUEUES": bad}))
		if err == nil || !strings.Contains(err.Error(), "NUVOM_QUEUES") || !strings.Contains(err.Error(), "letters, digits") {
			t.Errorf("NUVOM_QUEUES=%q: err = %v, want it refused naming NUVOM_QUEUES and the allowed characters", bad, err)
		}
	}
	c, err := Load(t.TempDir(), env(map[string]string{"NUVOM_QUEUES": " critical, default ,bulk.v2,a_b-c "}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Queues.Value, "|"); got != "critical|default|bulk.v2|a_b-c" {
		t.Fatalf("queues = %s", got)
	}
}
