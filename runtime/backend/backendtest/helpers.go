package backendtest

import (
	"errors"
	"slices"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nuvom/nuvom/runtime/backend"
)

const (
	sec  = time.Second
	min1 = time.Minute
	us   = time.Microsecond
	hour = time.Hour
)

// at returns Epoch()+d.
func at(d time.Duration) time.Time { return Epoch().Add(d) }

// jobDiff compares job records: times by Equal, nil and empty slices alike.
func jobDiff(want, got *backend.Job) string {
	return cmp.Diff(want, got, cmpopts.EquateEmpty(),
		cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }))
}

// job returns a new queued job of task with the subtest's next id, changed by mods.
func (s *suite) job(task string, mods ...func(*backend.Job)) *backend.Job {
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	j := NewJob(ID(n), task, Epoch())
	for _, m := range mods {
		m(j)
	}
	return j
}

// jobs returns n new jobs of task.
func (s *suite) jobs(n int, task string, mods ...func(*backend.Job)) []*backend.Job {
	out := make([]*backend.Job, n)
	for i := range out {
		out[i] = s.job(task, mods...)
	}
	return out
}

func onQueue(q string) func(*backend.Job)   { return func(j *backend.Job) { j.Queue = q } }
func withPriority(p int) func(*backend.Job) { return func(j *backend.Job) { j.Priority = p } }
func withAttempts(n int) func(*backend.Job) { return func(j *backend.Job) { j.MaxAttempts = n } }
func createdAt(t time.Time) func(*backend.Job) {
	return func(j *backend.Job) { j.CreatedAt, j.RunAt = t, t }
}

// scheduledAt makes the job scheduled for t.
func scheduledAt(t time.Time) func(*backend.Job) {
	return func(j *backend.Job) { j.State, j.RunAt = backend.StateScheduled, t }
}

func unique(key string, window time.Duration) func(*backend.Job) {
	return func(j *backend.Job) { j.UniqueKey, j.UniqueUntil = key, j.CreatedAt.Add(window) }
}

func (s *suite) enqueue(jobs ...*backend.Job) []backend.EnqueueResult {
	s.t.Helper()
	res, err := s.b.Enqueue(s.t.Context(), jobs)
	if err != nil {
		s.t.Fatalf("Enqueue of %d jobs: %v", len(jobs), err)
	}
	if len(res) != len(jobs) {
		s.t.Fatalf("Enqueue of %d jobs returned %d results", len(jobs), len(res))
	}
	return res
}

func (s *suite) get(id string) *backend.Job {
	s.t.Helper()
	j, err := s.b.Get(s.t.Context(), id)
	if err != nil {
		s.t.Fatalf("Get(%s): %v", id, err)
	}
	if j == nil {
		s.t.Fatalf("Get(%s) returned nil without error", id)
	}
	return j
}

// state returns the stored state of job id.
func (s *suite) state(id string) backend.State {
	s.t.Helper()
	return s.get(id).State
}

func (s *suite) wantState(id string, want backend.State, why string) {
	s.t.Helper()
	if got := s.state(id); got != want {
		s.t.Fatalf("%s: job %s is %s, want %s", why, id, got, want)
	}
}

func (s *suite) claim(req backend.ClaimRequest) []*backend.Job {
	s.t.Helper()
	if req.Worker == "" {
		req.Worker = "w1"
	}
	if req.LeaseFor == 0 {
		req.LeaseFor = 30 * sec
	}
	jobs, err := s.b.Claim(s.t.Context(), req)
	if err != nil {
		s.t.Fatalf("Claim(%+v): %v", req, err)
	}
	if req.Limit > 0 && len(jobs) > req.Limit {
		s.t.Fatalf("Claim with Limit %d returned %d jobs", req.Limit, len(jobs))
	}
	return jobs
}

// claimAt claims up to limit jobs from every queue for worker w1 at now with a 30 s lease.
func (s *suite) claimAt(now time.Time, limit int) []*backend.Job {
	s.t.Helper()
	return s.claim(backend.ClaimRequest{Limit: limit, Now: now})
}

// claimOne claims exactly one job at now or fails.
func (s *suite) claimOne(worker string, now time.Time, leaseFor time.Duration) *backend.Job {
	s.t.Helper()
	jobs := s.claim(backend.ClaimRequest{Limit: 1, Worker: worker, Now: now, LeaseFor: leaseFor})
	if len(jobs) != 1 {
		s.t.Fatalf("Claim at %s by %s returned %d jobs, want 1", now, worker, len(jobs))
	}
	return jobs[0]
}

// claimNone checks that nothing is claimable at now.
func (s *suite) claimNone(now time.Time, why string) {
	s.t.Helper()
	if jobs := s.claimAt(now, 100); len(jobs) != 0 {
		s.t.Fatalf("%s: Claim at %s returned %d jobs (%v), want none", why, now, len(jobs), idsOf(jobs))
	}
}

func (s *suite) complete(outs ...backend.Outcome) []error {
	s.t.Helper()
	errs, err := s.b.Complete(s.t.Context(), outs)
	if err != nil {
		s.t.Fatalf("Complete of %d outcomes: %v", len(outs), err)
	}
	if len(errs) != len(outs) {
		s.t.Fatalf("Complete of %d outcomes returned %d per-item errors", len(outs), len(errs))
	}
	return errs
}

// completeOK completes outcomes and fails the test on any per-item error.
func (s *suite) completeOK(outs ...backend.Outcome) {
	s.t.Helper()
	for i, err := range s.complete(outs...) {
		if err != nil {
			s.t.Fatalf("Complete of job %s as %s: %v", outs[i].Lease.JobID, outs[i].State, err)
		}
	}
}

// defaultMaxLost is the maxLost the suite passes to RecoverExpired where a
// test does not choose one: the worker's default.
const defaultMaxLost = 5

func (s *suite) recoverExpired(now time.Time) int {
	s.t.Helper()
	return s.recoverExpiredMax(now, defaultMaxLost)
}

func (s *suite) recoverExpiredMax(now time.Time, maxLost int) int {
	s.t.Helper()
	n, err := s.b.RecoverExpired(s.t.Context(), now, maxLost)
	if err != nil {
		s.t.Fatalf("RecoverExpired(%s, %d): %v", now, maxLost, err)
	}
	return n
}

func (s *suite) extend(until time.Time, leases ...backend.Lease) []string {
	s.t.Helper()
	lost, err := s.b.Extend(s.t.Context(), leases, until)
	if err != nil {
		s.t.Fatalf("Extend of %d leases: %v", len(leases), err)
	}
	return lost
}

func (s *suite) release(leases ...backend.Lease) {
	s.t.Helper()
	if err := s.b.Release(s.t.Context(), leases); err != nil {
		s.t.Fatalf("Release of %d leases: %v", len(leases), err)
	}
}

func (s *suite) list(f backend.ListFilter) []*backend.Job {
	s.t.Helper()
	jobs, err := s.b.List(s.t.Context(), f)
	if err != nil {
		s.t.Fatalf("List(%+v): %v", f, err)
	}
	return jobs
}

// outcome returns the outcome of j's current attempt ending in state at finished.
func outcome(j *backend.Job, state backend.State, finished time.Time) backend.Outcome {
	o := backend.Outcome{
		Lease:      j.Lease(),
		State:      state,
		FinishedAt: finished,
		Attempt: backend.Attempt{
			Number:     j.Attempt,
			StartedAt:  j.StartedAt,
			FinishedAt: finished,
			Worker:     j.LeaseOwner,
			Outcome:    backend.OutcomeSucceeded,
		},
	}
	switch state {
	case backend.StateFailed, backend.StateRetrying:
		o.Error = "boom"
		o.ErrorChain = []string{"boom", "inner"}
		o.Attempt.Outcome = backend.OutcomeFailed
		o.Attempt.Error = "boom"
	case backend.StateQuarantined:
		o.Error = "cannot decode args"
		o.Attempt.Outcome = backend.OutcomeRejected
		o.Attempt.Error = o.Error
	case backend.StateCancelled:
		o.Attempt.Outcome = backend.OutcomeFailed
		o.Attempt.Error = "cancelled"
	}
	return o
}

// idsOf returns the ids of jobs, sorted.
func idsOf(jobs []*backend.Job) []string {
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	slices.Sort(ids)
	return ids
}

// idsOfOrdered returns the ids of jobs in their order.
func idsOfOrdered(jobs []*backend.Job) []string {
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return ids
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// isErr reports whether err is target (errors.Is).
func isErr(err, target error) bool { return errors.Is(err, target) }
