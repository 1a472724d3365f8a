package backendtest

import (
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// limitCases state the backend.Limits contract, which every backend implements.
func limitCases() []testCase {
	return []testCase{
		{"LimitMaxConcurrency", testLimitMaxConcurrency},
		{"LimitRate", testLimitRate},
		{"LimitOverride", testLimitOverride},
	}
}

func (s *suite) limits() backend.Limits {
	s.t.Helper()
	l, ok := s.b.(backend.Limits)
	if !ok {
		s.t.Fatalf("backend %T does not enforce task limits (backend.Limits)", s.b)
	}
	return l
}

func (s *suite) declare(task string, l backend.Limit) {
	s.t.Helper()
	if err := s.limits().DeclareLimits(s.t.Context(), map[string]backend.Limit{task: l}); err != nil {
		s.t.Fatalf("DeclareLimits: %v", err)
	}
}

func countTask(jobs []*backend.Job, task string) int {
	n := 0
	for _, j := range jobs {
		if j.Task == task {
			n++
		}
	}
	return n
}

func testLimitMaxConcurrency(s *suite) {
	s.declare("lim", backend.Limit{MaxConcurrency: 2})
	s.enqueue(s.jobs(5, "lim")...)
	s.enqueue(s.jobs(3, "free")...)
	got := s.claimAt(at(sec), 10)
	if countTask(got, "lim") != 2 || countTask(got, "free") != 3 {
		s.t.Fatalf("claim of 10: %d of the limited task (max 2), %d of the other (3 queued)", countTask(got, "lim"), countTask(got, "free"))
	}
	s.claimNone(at(2*sec), "two of the limited task running")
	var held *backend.Job
	for _, j := range got {
		if j.Task == "lim" {
			held = j
		}
	}
	s.completeOK(outcome(held, backend.StateSucceeded, at(3*sec)))
	if got := s.claimAt(at(4*sec), 10); len(got) != 1 || got[0].Task != "lim" {
		s.t.Fatalf("claim after one limited job ended = %v, want one job of it", idsOf(got))
	}
	// A claim limited to other tasks does not see the limit.
	s.enqueue(s.job("free"))
	if got := s.claim(backend.ClaimRequest{Tasks: []string{"free"}, Limit: 10, Now: at(5 * sec)}); len(got) != 1 {
		s.t.Fatalf("claim of the other task = %d jobs, want 1", len(got))
	}
}

func testLimitRate(s *suite) {
	s.declare("r", backend.Limit{Rate: 3, Per: time.Second})
	s.enqueue(s.jobs(10, "r")...)
	if got := s.claimAt(at(0), 10); len(got) != 3 {
		s.t.Fatalf("first claim = %d jobs, want 3 (rate 3/s)", len(got))
	}
	s.claimNone(at(999*time.Millisecond), "3 started less than a second ago")
	if got := s.claimAt(at(sec), 2); len(got) != 2 {
		s.t.Fatalf("claim one second later, limit 2 = %d jobs, want 2", len(got))
	}
	// A claimer whose clock is behind still counts the later starts.
	if got := s.claimAt(at(500*time.Millisecond), 10); len(got) != 0 {
		s.t.Fatalf("claim with an earlier clock = %d jobs, want none: 2 of the 3 allowed started at 1s", len(got))
	}
	if got := s.claimAt(at(1500*time.Millisecond), 10); len(got) != 1 {
		s.t.Fatalf("claim at 1.5s = %d jobs, want 1 (2 started at 1s)", len(got))
	}
}

func testLimitOverride(s *suite) {
	l := s.limits()
	s.declare("o", backend.Limit{MaxConcurrency: 2})
	if err := l.OverrideLimit(s.t.Context(), "o", backend.Limit{MaxConcurrency: 1}, true); err != nil {
		s.t.Fatal(err)
	}
	s.enqueue(s.jobs(4, "o")...)
	if got := s.claimAt(at(sec), 10); len(got) != 1 {
		s.t.Fatalf("claim under an override of 1 = %d jobs", len(got))
	}
	// A worker declaring again keeps the override.
	s.declare("o", backend.Limit{MaxConcurrency: 2})
	s.claimNone(at(2*sec), "override of 1, one running")
	if err := l.OverrideLimit(s.t.Context(), "o", backend.Limit{}, false); err != nil {
		s.t.Fatal(err)
	}
	if got := s.claimAt(at(3*sec), 10); len(got) != 1 {
		s.t.Fatalf("claim after the override was cleared = %d jobs, want 1 (declared 2, one running)", len(got))
	}
	list, err := l.TaskLimits(s.t.Context())
	if err != nil || len(list) != 1 || list[0].Task != "o" || list[0].Declared.MaxConcurrency != 2 || list[0].HasOverride {
		s.t.Fatalf("TaskLimits = %+v, %v; want o declared 2, no override", list, err)
	}
	// A zero override lifts the limit.
	if err := l.OverrideLimit(s.t.Context(), "o", backend.Limit{}, true); err != nil {
		s.t.Fatal(err)
	}
	if got := s.claimAt(at(4*sec), 10); len(got) != 2 {
		s.t.Fatalf("claim under a zero override = %d jobs, want the 2 left", len(got))
	}
}
