package nuvom

import (
	"context"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/memory"
)

// TestClaimAheadFollowsClaimAndJobDurations checks the claim-ahead estimate:
// by Little's law, Concurrency × claim time ÷ job duration jobs, at most
// BatchSize, none for jobs longer than Concurrency claims, and none after a
// claim during which no attempt finished.
func TestClaimAheadFollowsClaimAndJobDurations(t *testing.T) {
	const conc, batch = 64, 100
	var a claimAhead
	a.update(2*time.Millisecond, 0, 0, conc, batch)
	if a.jobs != 0 {
		t.Fatalf("claimed ahead %d jobs before any attempt finished", a.jobs)
	}
	// Jobs of 1 ms, claims of 500 µs: 64 runners finish 32 jobs per claim.
	a.update(500*time.Microsecond, int64(10*time.Millisecond), 10, conc, batch)
	if a.jobs != 32 {
		t.Fatalf("1 ms jobs, 500 µs claims: %d jobs ahead, want 32", a.jobs)
	}
	// No-op jobs: capped at the batch size.
	var b claimAhead
	b.update(2*time.Millisecond, int64(5*time.Microsecond)*100, 100, conc, batch)
	if b.jobs != batch {
		t.Fatalf("no-op jobs: %d jobs ahead, want the batch size %d", b.jobs, batch)
	}
	// A claim after which nothing finished: the runners are busy with
	// longer jobs than the estimate knew; claim for free runners only.
	b.update(time.Second, 0, 0, conc, batch)
	if b.jobs != 0 {
		t.Fatalf("a claim with no finished attempt left %d jobs ahead, want 0", b.jobs)
	}
	b.update(2*time.Millisecond, int64(5*time.Microsecond)*100, 100, conc, batch)
	if b.jobs != batch {
		t.Fatalf("no-op jobs again: %d jobs ahead, want %d", b.jobs, batch)
	}
	// Long jobs (1 s, claims of 2 ms): 64 × 2 ms / 1 s < 1, none ahead, and
	// the smoothing brings a worker that ran short jobs down to none.
	var c claimAhead
	c.update(2*time.Millisecond, int64(time.Second)*8, 8, conc, batch)
	if c.jobs != 0 {
		t.Fatalf("1 s jobs: %d jobs ahead, want 0", c.jobs)
	}
	for range 40 {
		b.update(2*time.Millisecond, int64(time.Second)*8, 8, conc, batch)
	}
	if b.jobs != 0 {
		t.Fatalf("after a long run of 1 s jobs a worker that ran no-op jobs still claims %d ahead", b.jobs)
	}
}

// TestClaimAheadAppliesOnlyWhereSafe: ClaimAhead is honoured for a worker of
// one queue (or any) whose tasks declare no limit; not with strict queues
// (a job of a later queue claimed ahead would run before one of an earlier
// queue enqueued after it), nor when a task declares a concurrency or rate
// limit (the store counts a start when it is claimed).
func TestClaimAheadAppliesOnlyWhereSafe(t *testing.T) {
	noop := func(context.Context, []byte) ([]byte, error) { return nil, nil }
	plain := TaskDef{TaskSpec: TaskSpec{Name: "t.plain", Options: TaskOptions{Queue: "q"}}, Invoke: noop}
	rated := TaskDef{TaskSpec: TaskSpec{Name: "t.rated", Options: TaskOptions{Queue: "q", Rate: Rate{N: 3, Per: time.Second}}}, Invoke: noop}
	capped := TaskDef{TaskSpec: TaskSpec{Name: "t.capped", Options: TaskOptions{Queue: "q", MaxConcurrency: 2}}, Invoke: noop}
	for _, c := range []struct {
		name   string
		defs   []TaskDef
		queues []string
		ahead  bool // ClaimAhead asked
		want   bool
	}{
		{"off by default", []TaskDef{plain}, nil, false, false},
		{"asked, any queue", []TaskDef{plain}, nil, true, true},
		{"asked, one queue", []TaskDef{plain}, []string{"q"}, true, true},
		{"asked, strict queues", []TaskDef{plain}, []string{"q", "r"}, true, false},
		{"asked, a rate-limited task", []TaskDef{plain, rated}, nil, true, false},
		{"asked, a concurrency-limited task", []TaskDef{plain, capped}, nil, true, false},
	} {
		reg, err := NewRegistry(c.defs...)
		if err != nil {
			t.Fatal(err)
		}
		w, err := NewWorker(memory.New(), reg, WorkerOptions{ClaimAhead: c.ahead, Queues: c.queues})
		if err != nil {
			t.Fatal(err)
		}
		if w.ahead != c.want {
			t.Errorf("%s: claims ahead %t, want %t", c.name, w.ahead, c.want)
		}
	}
}
