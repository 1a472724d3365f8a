package backendtest

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// testRandomOps runs a seeded random sequence of every operation, with a clock
// that mostly moves forward but sometimes back (claimers on hosts whose clocks
// disagree), and checks each Claim (by queue, by task, or both) and
// RecoverExpired against a plain scan of
// the jobs List returns, each Complete, Cancel and Retry against the job's
// stored state, and the attempt bookkeeping of every job.
func testRandomOps(s *suite) {
	ops := 1500
	if testing.Short() {
		ops = 300
	}
	rng := rand.New(rand.NewPCG(1, 2))
	tick := time.Second
	now := at(0)
	queues := []string{"q0", "q1", "q2"}
	tasks := []string{"task0", "task1", "task2"}
	var leases []backend.Lease
	var ids []string

	all := func() []*backend.Job {
		s.t.Helper()
		return s.list(backend.ListFilter{Limit: 1 << 20})
	}
	held := func(l backend.Lease) bool {
		s.t.Helper()
		j := s.get(l.JobID)
		return j.State == backend.StateRunning && j.LeaseToken == l.Token
	}
	checkBooks := func(step int, op string) {
		s.t.Helper()
		for _, j := range all() {
			want := len(j.Attempts)
			if j.State == backend.StateRunning {
				want++
			} else if j.LeaseOwner != "" || !j.LeaseUntil.IsZero() {
				s.t.Fatalf("step %d (%s): %s job %s holds a lease (%q until %s)", step, op, j.State, j.ID, j.LeaseOwner, j.LeaseUntil)
			}
			if j.Attempt != want {
				s.t.Fatalf("step %d (%s): %s job %s has Attempt %d with %d history entries, want Attempt %d", step, op, j.State, j.ID, j.Attempt, len(j.Attempts), want)
			}
		}
	}

	for step := range ops {
		now = now.Add(time.Duration(rng.IntN(9)-3) * tick)
		var op string
		switch r := rng.IntN(100); {
		case r < 25:
			op = "enqueue"
			n := 1 + rng.IntN(4)
			batch := make([]*backend.Job, n)
			for i := range batch {
				j := s.job(tasks[rng.IntN(3)], createdAt(now), onQueue(queues[rng.IntN(3)]),
					withPriority(rng.IntN(4)), withAttempts(1+rng.IntN(3)))
				if d := time.Duration(rng.IntN(9)-2) * tick; d > 0 {
					j.State, j.RunAt = backend.StateScheduled, now.Add(d)
				} else {
					j.RunAt = now.Add(d)
				}
				batch[i] = j
				ids = append(ids, j.ID)
			}
			s.enqueue(batch...)
		case r < 50:
			op = "claim"
			var qs []string
			for _, q := range queues {
				if rng.IntN(2) == 0 {
					qs = append(qs, q)
				}
			}
			var ts []string
			if rng.IntN(2) == 0 {
				for _, t := range tasks {
					if rng.IntN(2) == 0 {
						ts = append(ts, t)
					}
				}
			}
			limit := 1 + rng.IntN(4)
			var ready []*backend.Job
			for _, j := range all() {
				if (j.State == backend.StateQueued || j.State == backend.StateScheduled || j.State == backend.StateRetrying) &&
					!j.RunAt.After(now) && (len(qs) == 0 || slices.Contains(qs, j.Queue)) &&
					(len(ts) == 0 || slices.Contains(ts, j.Task)) {
					ready = append(ready, j)
				}
			}
			slices.SortFunc(ready, func(a, b *backend.Job) int {
				return cmp.Or(cmp.Compare(b.Priority, a.Priority), a.RunAt.Compare(b.RunAt), cmp.Compare(a.ID, b.ID))
			})
			want := idsOf(ready[:min(limit, len(ready))])
			got := s.claim(backend.ClaimRequest{Queues: qs, Tasks: ts, Limit: limit, Now: now, LeaseFor: time.Duration(1+rng.IntN(5)) * tick})
			if !slices.Equal(idsOf(got), want) {
				s.t.Fatalf("step %d: Claim(queues %v, tasks %v, limit %d, now %s) = %v, want %v (from a scan of List)", step, qs, ts, limit, now, idsOf(got), want)
			}
			for _, j := range got {
				leases = append(leases, j.Lease())
			}
		case r < 65 && len(leases) > 0:
			op = "complete"
			l := leases[rng.IntN(len(leases))]
			j := s.get(l.JobID)
			wasHeld := held(l)
			state := []backend.State{backend.StateSucceeded, backend.StateFailed, backend.StateRetrying,
				backend.StateRetrying, backend.StateCancelled, backend.StateQuarantined}[rng.IntN(6)]
			o := outcome(j, state, now)
			o.Lease = l
			o.RunAt = now.Add(time.Duration(rng.IntN(5)) * tick)
			err := s.complete(o)[0]
			if wasHeld != (err == nil) || (!wasHeld && !isErr(err, backend.ErrLeaseLost)) {
				s.t.Fatalf("step %d: Complete of job %s (lease held: %v) as %s = %v", step, l.JobID, wasHeld, state, err)
			}
			if got := s.state(l.JobID); wasHeld && got != state {
				s.t.Fatalf("step %d: after Complete as %s job %s is %s", step, state, l.JobID, got)
			}
		case r < 72 && len(leases) > 0:
			op = "release"
			l := leases[rng.IntN(len(leases))]
			wasHeld := held(l)
			before := s.get(l.JobID)
			s.release(l)
			after := s.get(l.JobID)
			if wasHeld && (after.State != backend.StateQueued || after.Attempt != before.Attempt-1) {
				s.t.Fatalf("step %d: Release of held job %s: %s attempt %d, want queued attempt %d", step, l.JobID, after.State, after.Attempt, before.Attempt-1)
			}
			if !wasHeld && (after.State != before.State || after.Attempt != before.Attempt) {
				s.t.Fatalf("step %d: Release with a stale token changed job %s from %s/%d to %s/%d", step, l.JobID, before.State, before.Attempt, after.State, after.Attempt)
			}
		case r < 80 && len(leases) > 0:
			op = "extend"
			l := leases[rng.IntN(len(leases))]
			wasHeld := held(l)
			lost := s.extend(now.Add(time.Duration(1+rng.IntN(6))*tick), l)
			if wasHeld != (len(lost) == 0) {
				s.t.Fatalf("step %d: Extend of job %s (lease held: %v) lost %v", step, l.JobID, wasHeld, lost)
			}
		case r < 90:
			op = "recover"
			want := 0
			for _, j := range all() {
				if j.State == backend.StateRunning && j.LeaseUntil.Before(now) {
					want++
				}
			}
			if got := s.recoverExpired(now); got != want {
				s.t.Fatalf("step %d: RecoverExpired(%s) = %d, want %d (from a scan of List)", step, now, got, want)
			}
		case r < 95 && len(ids) > 0:
			op = "cancel"
			id := ids[rng.IntN(len(ids))]
			before := s.state(id)
			err := s.b.Cancel(s.t.Context(), id, now)
			ok := before == backend.StateScheduled || before == backend.StateQueued || before == backend.StateRetrying || before == backend.StateRunning
			if ok != (err == nil) || (!ok && !isErr(err, backend.ErrWrongState)) {
				s.t.Fatalf("step %d: Cancel of a %s job = %v", step, before, err)
			}
		case len(ids) > 0:
			op = "retry"
			id := ids[rng.IntN(len(ids))]
			before := s.state(id)
			err := s.b.Retry(s.t.Context(), id, now)
			ok := before == backend.StateFailed || before == backend.StateCancelled || before == backend.StateQuarantined
			if ok != (err == nil) || (!ok && !isErr(err, backend.ErrWrongState)) {
				s.t.Fatalf("step %d: Retry of a %s job = %v", step, before, err)
			}
		default:
			continue
		}
		if step%50 == 0 || step == ops-1 {
			checkBooks(step, op)
		}
	}
}
