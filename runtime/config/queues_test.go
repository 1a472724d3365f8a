package config

import (
	"strings"
	"testing"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/memory"
)

// TestQueuesNames: NUVOM_QUEUES (and --queues) refuses a list that cannot
// be what was meant (a space or a semicolon where a comma belongs), naming
// it, rather than leaving a worker that serves a queue that never gets a
// job.
func TestQueuesNames(t *testing.T) {
	for _, bad := range []string{"images default", "images;default", "critical,im\tgs"} {
		_, err := Load(t.TempDir(), env(map[string]string{"NUVOM_QUEUES": bad}))
		if err == nil || !strings.Contains(err.Error(), "NUVOM_QUEUES") || !strings.Contains(err.Error(), "comma-separated") {
			t.Errorf("NUVOM_QUEUES=%q: err = %v, want it refused naming NUVOM_QUEUES and saying how to separate names", bad, err)
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

// TestQueuesNamesTheClientTakes: a queue name that nuvom.Queue stores a job
// on (the Go API takes any name: "emails:high", "tenant/a", ...) is
// accepted by NUVOM_QUEUES, so that a worker can serve it; such a worker
// ran before NUVOM_QUEUES checked names, and must still start.
func TestQueuesNamesTheClientTakes(t *testing.T) {
	cl := nuvom.NewClient(memory.New())
	defer cl.Close()
	spec := nuvom.TaskSpec{Name: "shop.Send"}
	for _, q := range []string{"emails:high", "tenant/a", "bulk@eu", "jobs+1"} {
		res, err := cl.Enqueue(t.Context(), spec, nil, nuvom.Queue(q))
		if err != nil {
			t.Fatalf("enqueue on queue %q: %v", q, err)
		}
		j, err := cl.Get(t.Context(), res.ID)
		if err != nil || j.Queue != q {
			t.Fatalf("job enqueued on %q: queue %q, %v", q, j.Queue, err)
		}
		c, err := Load(t.TempDir(), env(map[string]string{"NUVOM_QUEUES": "default," + q}))
		if err != nil {
			t.Errorf("NUVOM_QUEUES=default,%s refused, yet nuvom.Queue(%q) stores jobs there: %v", q, q, err)
			continue
		}
		if got := strings.Join(c.Queues.Value, "|"); got != "default|"+q {
			t.Errorf("NUVOM_QUEUES=default,%s: queues = %s", q, got)
		}
	}
}
