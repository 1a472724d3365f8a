package backendtest

import (
	"math"
	"slices"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Times outside [backend.MinTime, backend.MaxTime] (about 1677 to 2262: the
// range of int64 Unix nanoseconds) are stored clamped, and every comparison
// uses the clamped times, on every backend alike.

// newYear returns January 1st of year y, UTC.
func newYear(y int) time.Time { return time.Date(y, time.January, 1, 0, 0, 0, 0, time.UTC) }

func testFarFuture(s *suite) {
	far := s.job("t", scheduledAt(newYear(2300)))
	soon := s.job("t", scheduledAt(at(min1)))
	s.enqueue(far, soon)
	if got := s.get(far.ID); !got.RunAt.Equal(backend.MaxTime()) || got.State != backend.StateScheduled {
		s.t.Fatalf("job scheduled for %s: stored run-at %s state %s, want %s (MaxTime) scheduled", newYear(2300), got.RunAt, got.State, backend.MaxTime())
	}
	s.claimNone(at(0), "nothing is due at the epoch")
	sc := s.claimOne("w1", at(hour), 30*sec)
	if sc.ID != soon.ID {
		s.t.Fatalf("claim at +1h returned %s, want %s (the job due at +1m, not the one for %s)", sc.ID, soon.ID, newYear(2300))
	}
	s.completeOK(outcome(sc, backend.StateSucceeded, at(hour+sec)))
	s.claimNone(newYear(2262), "a job for 2300 is not due in 2262")
	c := s.claimOne("w1", newYear(2300), 30*sec)
	if c.ID != far.ID {
		s.t.Fatalf("claim at %s returned %s, want %s", newYear(2300), c.ID, far.ID)
	}
	if !c.StartedAt.Equal(backend.MaxTime()) || !c.LeaseUntil.Equal(backend.MaxTime()) {
		s.t.Errorf("claimed at %s: started %s lease until %s, want both MaxTime %s", newYear(2300), c.StartedAt, c.LeaseUntil, backend.MaxTime())
	}

	// Times given by outcomes and leases are clamped alike.
	j := s.job("t")
	s.enqueue(j)
	cj := s.claimOne("w2", at(0), 30*sec)
	if cj.ID != j.ID {
		s.t.Fatalf("claimed %s, want %s", cj.ID, j.ID)
	}
	if lost := s.extend(newYear(2400), cj.Lease()); len(lost) != 0 {
		s.t.Fatalf("Extend to %s: lost %v", newYear(2400), lost)
	}
	if got := s.get(j.ID); !got.LeaseUntil.Equal(backend.MaxTime()) {
		s.t.Fatalf("lease extended to %s is stored until %s, want MaxTime %s", newYear(2400), got.LeaseUntil, backend.MaxTime())
	}
	if n := s.recoverExpired(newYear(2262)); n != 0 {
		s.t.Fatalf("RecoverExpired in 2262 recovered %d jobs whose lease runs to %s", n, newYear(2400))
	}
	o := outcome(cj, backend.StateRetrying, at(sec))
	o.RunAt = newYear(2400)
	s.completeOK(o)
	if got := s.get(j.ID); !got.RunAt.Equal(backend.MaxTime()) || got.State != backend.StateRetrying {
		s.t.Fatalf("retrying at %s: stored run-at %s state %s, want MaxTime %s retrying", newYear(2400), got.RunAt, got.State, backend.MaxTime())
	}
	s.claimNone(at(hour), "a job retrying in 2400")
}

func testFarPast(s *suite) {
	now := at(0)
	later := s.job("t", func(j *backend.Job) { j.RunAt = now.Add(-sec) })
	past := s.job("t", scheduledAt(newYear(1600)))
	ancient := s.job("t", func(j *backend.Job) {
		j.CreatedAt, j.RunAt = time.Date(1500, time.June, 1, 0, 0, 0, 0, time.UTC), newYear(1600)
	})
	s.enqueue(later, past, ancient)
	got := s.get(past.ID)
	if !got.RunAt.Equal(backend.MinTime()) || !got.CreatedAt.Equal(now) {
		s.t.Fatalf("job scheduled for %s: stored run-at %s created %s, want %s (MinTime) and %s", newYear(1600), got.RunAt, got.CreatedAt, backend.MinTime(), now)
	}
	if got := s.get(ancient.ID); !got.CreatedAt.Equal(backend.MinTime()) {
		s.t.Fatalf("job created in 1500: stored created %s, want MinTime %s", got.CreatedAt, backend.MinTime())
	}
	// Ready at once, and first in the run-at order (same priority).
	cs := s.claimAt(now, 10)
	if !slices.Equal(idsOf(cs), sorted(later.ID, past.ID, ancient.ID)) {
		s.t.Fatalf("claim at the epoch = %v, want all three jobs %v", idsOf(cs), sorted(later.ID, past.ID, ancient.ID))
	}
	for _, c := range cs {
		s.release(c.Lease())
	}
	var order []string
	for range 3 {
		order = append(order, s.claimOne("w1", now, 30*sec).ID)
	}
	if want := []string{past.ID, ancient.ID, later.ID}; !slices.Equal(order, want) {
		s.t.Fatalf("claim order = %v, want %v (run-at MinTime, MinTime (then id), epoch-1s)", order, want)
	}
	if l := s.list(backend.ListFilter{Since: newYear(1400)}); len(l) != 3 {
		s.t.Fatalf("List since 1400 returned %d jobs, want 3", len(l))
	}
}

func testUniqueHugeWindow(s *suite) {
	a := s.job("t", unique("k", math.MaxInt64))
	s.enqueue(a)
	if got := s.get(a.ID); !got.UniqueUntil.Equal(backend.MaxTime()) {
		s.t.Fatalf("unique window of math.MaxInt64 from %s: stored until %s, want MaxTime %s", a.CreatedAt, got.UniqueUntil, backend.MaxTime())
	}
	for _, d := range []time.Duration{sec, 24 * hour, 100 * 365 * 24 * hour} {
		b := s.job("t", createdAt(at(d)), unique("k", math.MaxInt64))
		if r := s.enqueue(b); !r[0].Duplicate || r[0].ID != a.ID {
			s.t.Fatalf("enqueue with key k %s later, window math.MaxInt64 = %+v, want Duplicate of %s", d, r[0], a.ID)
		}
	}
	// A window ending past MaxTime lasts until MaxTime.
	c := s.job("t", createdAt(newYear(2300)), unique("k", math.MaxInt64))
	if r := s.enqueue(c); r[0].Duplicate {
		s.t.Fatalf("enqueue created in %s (clamped to MaxTime, when every window has ended) = %+v, want a new job", newYear(2300), r[0])
	}
}
