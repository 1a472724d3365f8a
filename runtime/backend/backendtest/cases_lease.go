package backendtest

import (
	"slices"
	"strings"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// wantNoLease checks the invariant that a job that is not running holds no lease.
func (s *suite) wantNoLease(j *backend.Job, why string) {
	s.t.Helper()
	if j.LeaseOwner != "" || !j.LeaseUntil.IsZero() {
		s.t.Errorf("%s: job %s (%s) still has lease owner %q until %s, want none", why, j.ID, j.State, j.LeaseOwner, j.LeaseUntil)
	}
}

func testRecoverExpired(s *suite) {
	// One attempt allowed (a task with no retries): a crash must not spend it.
	j := s.job("t", withAttempts(1))
	bystander := s.job("t", withPriority(-5))
	s.enqueue(j, bystander)
	c := s.claimOne("w1", at(0), 30*sec)
	if c.ID != j.ID {
		s.t.Fatalf("claimed %s, want %s", c.ID, j.ID)
	}
	long := s.job("t")
	s.enqueue(long)
	lc := s.claimOne("w-long", at(0), hour)
	if lc.ID != long.ID {
		s.t.Fatalf("claimed %s, want %s", lc.ID, long.ID)
	}

	for _, now := range []time.Time{at(29 * sec), at(30 * sec)} {
		if n := s.recoverExpired(now); n != 0 {
			s.t.Fatalf("RecoverExpired(%s) before the lease ended (until %s) recovered %d jobs", now, at(30*sec), n)
		}
		s.wantState(j.ID, backend.StateRunning, "RecoverExpired before expiry")
	}
	now := at(30*sec + us)
	if n := s.recoverExpired(now); n != 1 {
		s.t.Fatalf("RecoverExpired(%s) after the lease ended recovered %d jobs, want 1", now, n)
	}
	got := s.get(j.ID)
	if got.State != backend.StateRetrying || !got.RunAt.Equal(now) || got.Attempt != 1 || got.MaxAttempts != 2 || got.Error == "" {
		s.t.Fatalf("recovered job: state %s run-at %s attempt %d of %d error %q, want retrying run-at %s attempt 1 of 2 (the lost attempt does not count) with an error",
			got.State, got.RunAt, got.Attempt, got.MaxAttempts, got.Error, now)
	}
	wantLost := backend.Attempt{Number: 1, StartedAt: at(0), FinishedAt: now, Worker: "w1", Outcome: backend.OutcomeLost}
	if len(got.Attempts) != 1 {
		s.t.Fatalf("recovered job has %d attempts in its history, want 1 lost attempt", len(got.Attempts))
	}
	if got.Attempts[0].Error == "" {
		s.t.Errorf("lost attempt has no error saying what happened")
	}
	wantLost.Error = got.Attempts[0].Error
	if d := attemptDiff(wantLost, got.Attempts[0]); d != "" {
		s.t.Errorf("lost attempt recorded by RecoverExpired (-want +got):\n%s", d)
	}
	s.wantNoLease(got, "after RecoverExpired")
	s.wantState(bystander.ID, backend.StateQueued, "a queued job after RecoverExpired")
	s.wantState(long.ID, backend.StateRunning, "a job with an unexpired lease after RecoverExpired")
	if n := s.recoverExpired(now); n != 0 {
		s.t.Fatalf("second RecoverExpired recovered %d jobs again", n)
	}

	// The job is ready at once and its one real attempt runs.
	c2 := s.claim(backend.ClaimRequest{Limit: 1, Worker: "w2", Now: now, LeaseFor: 10 * sec})
	if len(c2) != 1 || c2[0].ID != j.ID || c2[0].Attempt != 2 || c2[0].MaxAttempts != 2 {
		s.t.Fatalf("re-claim after recovery = %v, want %s at attempt 2 of 2", idsOf(c2), j.ID)
	}
	o := outcome(c2[0], backend.StateFailed, now.Add(sec))
	s.completeOK(o)
	got = s.get(j.ID)
	if got.State != backend.StateFailed || len(got.Attempts) != 2 || got.Attempts[0].Outcome != backend.OutcomeLost || got.Attempts[1].Number != 2 {
		s.t.Fatalf("after the real attempt failed: state %s history %+v, want failed with [lost 1, failed 2]", got.State, got.Attempts)
	}
}

// testRecoverExpiredPoisonPill: a job whose attempts keep being lost (it
// crashes its worker) is failed once its last maxLost attempts in a row were
// lost, whatever its attempt limit; other outcomes break the run.
func testRecoverExpiredPoisonPill(s *suite) {
	j := s.job("t", withAttempts(1))
	s.enqueue(j)
	now := at(0)
	// lose claims the job at now, lets its lease expire and recovers it with maxLost.
	lose := func(maxLost int) *backend.Job {
		s.t.Helper()
		c := s.claimOne("w", now, 10*sec)
		if c.ID != j.ID {
			s.t.Fatalf("claimed %s, want %s", c.ID, j.ID)
		}
		now = now.Add(10*sec + us)
		if n := s.recoverExpiredMax(now, maxLost); n != 1 {
			s.t.Fatalf("RecoverExpired(maxLost %d) recovered %d jobs, want 1", maxLost, n)
		}
		return s.get(j.ID)
	}
	for i := 1; i <= 2; i++ {
		if got := lose(3); got.State != backend.StateRetrying || got.Attempt != i || got.MaxAttempts != 1+i {
			s.t.Fatalf("after %d lost attempts (maxLost 3): state %s attempt %d of %d, want retrying, attempt %d of %d", i, got.State, got.Attempt, got.MaxAttempts, i, 1+i)
		}
	}
	// A real attempt in between ends the run of lost ones.
	c := s.claimOne("w", now, 10*sec)
	o := outcome(c, backend.StateRetrying, now.Add(sec))
	o.RunAt = now.Add(sec)
	s.completeOK(o)
	now = now.Add(sec)
	for i := 1; i <= 2; i++ {
		if got := lose(3); got.State != backend.StateRetrying {
			s.t.Fatalf("lost attempt %d after a failed one (maxLost 3): state %s, want retrying", i, got.State)
		}
	}
	got := lose(3)
	if got.State != backend.StateFailed || !got.FinishedAt.Equal(now) || !strings.HasPrefix(got.Error, "lost 3 times in a row: ") {
		s.t.Fatalf("third lost attempt in a row (maxLost 3): state %s finished %s error %q, want failed at %s with an error starting %q",
			got.State, got.FinishedAt, got.Error, now, "lost 3 times in a row: ")
	}
	var outcomes []string
	for i, a := range got.Attempts {
		outcomes = append(outcomes, a.Outcome)
		if a.Number != i+1 {
			s.t.Errorf("attempt %d of the history is numbered %d", i+1, a.Number)
		}
	}
	want := []string{backend.OutcomeLost, backend.OutcomeLost, backend.OutcomeFailed, backend.OutcomeLost, backend.OutcomeLost, backend.OutcomeLost}
	if !slices.Equal(outcomes, want) {
		s.t.Fatalf("history outcomes %v, want %v", outcomes, want)
	}
	s.wantNoLease(got, "after RecoverExpired failed the job")
	if c := s.claimAt(now.Add(hour), 10); slices.Contains(idsOf(c), j.ID) {
		s.t.Fatalf("poison-pill job %s was claimed again", j.ID)
	}

	// maxLost 0: never failed for being lost.
	k := s.job("t", withAttempts(1))
	s.enqueue(k)
	for i := 1; i <= 8; i++ {
		c := s.claimOne("w", now, 10*sec)
		if c.ID != k.ID {
			s.t.Fatalf("claimed %s, want %s", c.ID, k.ID)
		}
		now = now.Add(10*sec + us)
		if n := s.recoverExpiredMax(now, 0); n != 1 {
			s.t.Fatalf("RecoverExpired(maxLost 0) recovered %d jobs, want 1", n)
		}
		if got := s.get(k.ID); got.State != backend.StateRetrying || got.MaxAttempts != 1+i {
			s.t.Fatalf("after %d lost attempts with maxLost 0: state %s max attempts %d, want retrying, %d", i, got.State, got.MaxAttempts, 1+i)
		}
	}
}

func testFencing(s *suite) {
	j := s.job("t")
	s.enqueue(j)
	old := s.claimOne("w1", at(0), 30*sec)
	if n := s.recoverExpired(at(31 * sec)); n != 1 {
		s.t.Fatalf("RecoverExpired recovered %d, want 1", n)
	}
	// Recovered but not yet re-claimed: the old token holds nothing.
	if lost := s.extend(at(hour), old.Lease()); !slices.Equal(lost, []string{j.ID}) {
		s.t.Fatalf("Extend with the token of a recovered lease: lost = %v, want [%s]", lost, j.ID)
	}
	if errs := s.complete(outcome(old, backend.StateSucceeded, at(32*sec))); !isErr(errs[0], backend.ErrLeaseLost) {
		s.t.Fatalf("Complete with the token of a recovered lease: %v, want ErrLeaseLost", errs[0])
	}
	s.wantState(j.ID, backend.StateRetrying, "stale Complete must not apply")

	cur := s.claimOne("w2", at(40*sec), 30*sec)
	if cur.ID != j.ID {
		s.t.Fatalf("re-claim returned %s, want %s", cur.ID, j.ID)
	}
	if lost := s.extend(at(hour), old.Lease()); !slices.Equal(lost, []string{j.ID}) {
		s.t.Fatalf("Extend with the old token after re-claim: lost = %v, want [%s]", lost, j.ID)
	}
	if errs := s.complete(outcome(old, backend.StateSucceeded, at(41*sec))); !isErr(errs[0], backend.ErrLeaseLost) {
		s.t.Fatalf("Complete with the old token after re-claim: %v, want ErrLeaseLost", errs[0])
	}
	s.release(old.Lease())
	got := s.get(j.ID)
	if got.State != backend.StateRunning || got.LeaseOwner != "w2" || got.LeaseToken != cur.LeaseToken || !got.LeaseUntil.Equal(at(70*sec)) || got.Attempt != 2 {
		s.t.Fatalf("after stale Extend/Complete/Release the job is %s owner %q token %d until %s attempt %d, want running owner w2 token %d until %s attempt 2",
			got.State, got.LeaseOwner, got.LeaseToken, got.LeaseUntil, got.Attempt, cur.LeaseToken, at(70*sec))
	}
	if len(got.Attempts) != 1 {
		s.t.Fatalf("stale calls changed the history: %+v", got.Attempts)
	}

	// The current token works.
	if lost := s.extend(at(2*min1), cur.Lease()); len(lost) != 0 {
		s.t.Fatalf("Extend with the current token: lost = %v, want none", lost)
	}
	if got := s.get(j.ID); !got.LeaseUntil.Equal(at(2 * min1)) {
		s.t.Fatalf("Extend with the current token: LeaseUntil %s, want %s", got.LeaseUntil, at(2*min1))
	}
	s.completeOK(outcome(cur, backend.StateSucceeded, at(50*sec)))
	s.wantState(j.ID, backend.StateSucceeded, "Complete with the current token")

	// A finished job's lease is gone too.
	if errs := s.complete(outcome(cur, backend.StateFailed, at(51*sec))); !isErr(errs[0], backend.ErrLeaseLost) {
		s.t.Fatalf("second Complete of a finished job: %v, want ErrLeaseLost", errs[0])
	}
	if lost := s.extend(at(hour), cur.Lease()); !slices.Equal(lost, []string{j.ID}) {
		s.t.Fatalf("Extend of a finished job: lost = %v, want [%s]", lost, j.ID)
	}
	s.wantState(j.ID, backend.StateSucceeded, "stale Complete after success must not apply")

	// Unknown jobs.
	ghost := backend.Lease{JobID: ID(1 << 60), Token: 1}
	if lost := s.extend(at(hour), ghost); !slices.Equal(lost, []string{ghost.JobID}) {
		s.t.Fatalf("Extend of an unknown job: lost = %v, want [%s]", lost, ghost.JobID)
	}
	errs, err := s.b.Complete(s.t.Context(), []backend.Outcome{{Lease: ghost, State: backend.StateSucceeded, FinishedAt: at(0)}})
	if err == nil && (len(errs) != 1 || errs[0] == nil) {
		s.t.Fatalf("Complete of an unknown job reported no error")
	}
}

func testExtend(s *suite) {
	jobs := s.jobs(3, "t")
	s.enqueue(jobs...)
	cs := s.claimAt(at(0), 3)
	if len(cs) != 3 {
		s.t.Fatalf("claimed %d jobs, want 3", len(cs))
	}
	if lost := s.extend(at(2*min1), cs[0].Lease(), cs[1].Lease()); len(lost) != 0 {
		s.t.Fatalf("Extend of held leases: lost = %v, want none", lost)
	}
	for _, c := range cs[:2] {
		if got := s.get(c.ID); !got.LeaseUntil.Equal(at(2*min1)) || got.State != backend.StateRunning {
			s.t.Fatalf("after Extend job %s is %s until %s, want running until %s", c.ID, got.State, got.LeaseUntil, at(2*min1))
		}
	}
	if n := s.recoverExpired(at(min1)); n != 1 {
		s.t.Fatalf("RecoverExpired at +1m recovered %d jobs, want only the one not extended", n)
	}
	s.wantState(cs[2].ID, backend.StateRetrying, "the lease that was not extended")
	if n := s.recoverExpired(at(2*min1 + us)); n != 2 {
		s.t.Fatalf("RecoverExpired after the extended deadline recovered %d jobs, want 2", n)
	}
	if lost := s.extend(at(hour)); len(lost) != 0 {
		s.t.Fatalf("Extend of no leases: lost = %v", lost)
	}
}

func testCompleteSucceeded(s *suite) {
	j := s.job("t", func(j *backend.Job) { j.StoreResult = true })
	s.enqueue(j)
	c := s.claimOne("w1", at(sec), 30*sec)
	o := outcome(c, backend.StateSucceeded, at(3*sec))
	o.Result = []byte{0xa2, 'o', 'k', 0x00}
	s.completeOK(o)
	want := cloneJob(j)
	want.State = backend.StateSucceeded
	want.Attempt = 1
	want.StartedAt = at(sec)
	want.FinishedAt = at(3 * sec)
	want.Result = []byte{0xa2, 'o', 'k', 0x00}
	want.Attempts = []backend.Attempt{{Number: 1, StartedAt: at(sec), FinishedAt: at(3 * sec), Worker: "w1", Outcome: backend.OutcomeSucceeded}}
	got := s.get(j.ID)
	want.LeaseToken = got.LeaseToken
	if d := jobDiff(want, got); d != "" {
		s.t.Errorf("job after Complete succeeded (-want +got):\n%s", d)
	}
	s.claimNone(at(hour), "succeeded job")
}

func testCompleteFailed(s *suite) {
	j := s.job("t")
	s.enqueue(j)
	c := s.claimOne("w1", at(sec), 30*sec)
	o := outcome(c, backend.StateFailed, at(2*sec))
	o.PanicStack = "goroutine 1 [running]:\nmain.f()"
	o.Attempt.Outcome = backend.OutcomePanicked
	s.completeOK(o)
	got := s.get(j.ID)
	if got.State != backend.StateFailed || !got.FinishedAt.Equal(at(2*sec)) || got.Error != "boom" ||
		!slices.Equal(got.ErrorChain, []string{"boom", "inner"}) || got.PanicStack != o.PanicStack {
		s.t.Errorf("failed job: state %s finished %s error %q chain %q stack %q, want failed, %s, boom, [boom inner], the stack",
			got.State, got.FinishedAt, got.Error, got.ErrorChain, got.PanicStack, at(2*sec))
	}
	if len(got.Attempts) != 1 || got.Attempts[0].Outcome != backend.OutcomePanicked || got.Attempts[0].Error != "boom" {
		s.t.Errorf("failed job history = %+v, want one panicked attempt", got.Attempts)
	}
	s.wantNoLease(got, "after Complete failed")
	s.claimNone(at(hour), "failed job")
}

func testCompleteRetrying(s *suite) {
	j := s.job("t")
	s.enqueue(j)
	c := s.claimOne("w1", at(0), 30*sec)
	o := outcome(c, backend.StateRetrying, at(sec))
	o.RunAt = at(min1)
	s.completeOK(o)
	got := s.get(j.ID)
	if got.State != backend.StateRetrying || !got.RunAt.Equal(at(min1)) || got.Attempt != 1 || got.Error != "boom" || len(got.Attempts) != 1 {
		s.t.Fatalf("retrying job: state %s run-at %s attempt %d error %q history %d, want retrying %s 1 boom 1",
			got.State, got.RunAt, got.Attempt, got.Error, len(got.Attempts), at(min1))
	}
	s.wantNoLease(got, "after Complete retrying")
	s.claimNone(at(min1-us), "retrying job before its run-at")
	c2 := s.claimOne("w2", at(min1), 30*sec)
	if c2.ID != j.ID || c2.Attempt != 2 {
		s.t.Fatalf("claim at the retry time returned %s attempt %d, want %s attempt 2", c2.ID, c2.Attempt, j.ID)
	}
}

// A refunded attempt does not count: MaxAttempts grows by one, in a batch
// beside an outcome that is not refunded.
func testCompleteRefund(s *suite) {
	a, b := s.job("t"), s.job("t")
	s.enqueue(a, b)
	ca := s.claimOne("w1", at(0), 30*sec)
	cb := s.claimOne("w1", at(0), 30*sec)
	oa := outcome(ca, backend.StateRetrying, at(sec))
	oa.RunAt, oa.Refund = at(min1), true
	ob := outcome(cb, backend.StateRetrying, at(sec))
	ob.RunAt = at(min1)
	s.completeOK(oa, ob)
	for _, c := range []struct {
		id   string
		want int
	}{{ca.ID, ca.MaxAttempts + 1}, {cb.ID, cb.MaxAttempts}} {
		if got := s.get(c.id); got.MaxAttempts != c.want || got.State != backend.StateRetrying || len(got.Attempts) != 1 {
			s.t.Fatalf("job %s after Complete: max attempts %d state %s history %d, want %d retrying 1",
				c.id, got.MaxAttempts, got.State, len(got.Attempts), c.want)
		}
	}
}

func testCompleteCancelled(s *suite) {
	j := s.job("t")
	s.enqueue(j)
	c := s.claimOne("w1", at(0), 30*sec)
	s.completeOK(outcome(c, backend.StateCancelled, at(sec)))
	got := s.get(j.ID)
	if got.State != backend.StateCancelled || !got.FinishedAt.Equal(at(sec)) || len(got.Attempts) != 1 {
		s.t.Fatalf("cancelled job: state %s finished %s history %d, want cancelled %s 1", got.State, got.FinishedAt, len(got.Attempts), at(sec))
	}
	s.wantNoLease(got, "after Complete cancelled")
	s.claimNone(at(hour), "cancelled job")
}

func testCompleteQuarantined(s *suite) {
	j := s.job("t")
	s.enqueue(j)
	c := s.claimOne("w1", at(0), 30*sec)
	s.completeOK(outcome(c, backend.StateQuarantined, at(sec)))
	got := s.get(j.ID)
	if got.State != backend.StateQuarantined || !got.FinishedAt.Equal(at(sec)) || got.Error != "cannot decode args" ||
		len(got.Attempts) != 1 || got.Attempts[0].Outcome != backend.OutcomeRejected {
		s.t.Fatalf("quarantined job: state %s finished %s error %q history %+v", got.State, got.FinishedAt, got.Error, got.Attempts)
	}
	s.wantNoLease(got, "after Complete quarantined")
	s.claimNone(at(hour), "quarantined job")
	if err := s.b.Retry(s.t.Context(), j.ID, at(2*sec)); err != nil {
		s.t.Fatalf("Retry of a quarantined job: %v", err)
	}
	if c := s.claimOne("w1", at(2*sec), 30*sec); c.ID != j.ID || c.Attempt != 2 {
		s.t.Fatalf("claim after Retry of a quarantined job: %s attempt %d, want %s attempt 2", c.ID, c.Attempt, j.ID)
	}
}

func testCompleteBatchMixed(s *suite) {
	jobs := s.jobs(4, "t")
	s.enqueue(jobs...)
	cs := s.claimAt(at(0), 4)
	if len(cs) != 4 {
		s.t.Fatalf("claimed %d jobs, want 4", len(cs))
	}
	slices.SortFunc(cs, func(a, b *backend.Job) int { return compareStr(a.ID, b.ID) })
	bad := outcome(cs[1], backend.StateSucceeded, at(sec))
	bad.Lease.Token += 1000 // never issued
	// cs[3]'s lease is lost for real: it expired and was re-claimed.
	if lost := s.extend(at(hour), cs[0].Lease(), cs[1].Lease(), cs[2].Lease()); len(lost) != 0 {
		s.t.Fatalf("Extend: lost %v", lost)
	}
	if n := s.recoverExpired(at(31 * sec)); n != 1 {
		s.t.Fatalf("RecoverExpired recovered %d, want 1", n)
	}
	re := s.claimOne("w2", at(31*sec), 30*sec)
	if re.ID != cs[3].ID {
		s.t.Fatalf("re-claimed %s, want %s", re.ID, cs[3].ID)
	}
	stale := outcome(cs[3], backend.StateSucceeded, at(32*sec))
	failed := outcome(cs[2], backend.StateFailed, at(32*sec))
	errs := s.complete(outcome(cs[0], backend.StateSucceeded, at(32*sec)), bad, failed, stale)
	if errs[0] != nil || errs[2] != nil {
		s.t.Fatalf("valid outcomes in a mixed batch failed: %v, %v", errs[0], errs[2])
	}
	if !isErr(errs[1], backend.ErrLeaseLost) || !isErr(errs[3], backend.ErrLeaseLost) {
		s.t.Fatalf("stale outcomes in a mixed batch: %v, %v, want ErrLeaseLost for both", errs[1], errs[3])
	}
	s.wantState(cs[0].ID, backend.StateSucceeded, "valid outcome in a mixed batch")
	s.wantState(cs[2].ID, backend.StateFailed, "valid outcome in a mixed batch")
	if got := s.get(cs[1].ID); got.State != backend.StateRunning || got.LeaseToken != cs[1].LeaseToken || len(got.Attempts) != 0 {
		s.t.Fatalf("outcome with a wrong token was applied: %s token %d history %d", got.State, got.LeaseToken, len(got.Attempts))
	}
	if got := s.get(cs[3].ID); got.State != backend.StateRunning || got.LeaseOwner != "w2" || len(got.Attempts) != 1 {
		s.t.Fatalf("outcome with a re-claimed lease was applied: %s owner %q history %d", got.State, got.LeaseOwner, len(got.Attempts))
	}
	if errs := s.complete(); len(errs) != 0 {
		s.t.Fatalf("Complete of no outcomes returned %v", errs)
	}
}

func testCompleteInvalidState(s *suite) {
	j := s.job("t")
	s.enqueue(j)
	c := s.claimOne("w1", at(0), 30*sec)
	for _, st := range []backend.State{backend.StateQueued, backend.StateRunning, backend.StateScheduled, "bogus"} {
		errs, err := s.b.Complete(s.t.Context(), []backend.Outcome{outcome(c, st, at(sec))})
		if err == nil && (len(errs) != 1 || errs[0] == nil) {
			s.t.Errorf("Complete with next state %q reported no error", st)
		}
		if got := s.get(j.ID); got.State != backend.StateRunning || len(got.Attempts) != 0 {
			s.t.Fatalf("Complete with next state %q changed the job: %s, history %d", st, got.State, len(got.Attempts))
		}
	}
}

func testRelease(s *suite) {
	jobs := s.jobs(2, "t", withAttempts(1))
	s.enqueue(jobs...)
	cs := s.claimAt(at(0), 2)
	if len(cs) != 2 {
		s.t.Fatalf("claimed %d, want 2", len(cs))
	}
	s.release(cs[0].Lease(), cs[1].Lease())
	for _, c := range cs {
		got := s.get(c.ID)
		if got.State != backend.StateQueued || got.Attempt != 0 || len(got.Attempts) != 0 {
			s.t.Fatalf("released job %s: state %s attempt %d history %d, want queued, 0, 0", c.ID, got.State, got.Attempt, len(got.Attempts))
		}
		s.wantNoLease(got, "after Release")
	}
	again := s.claimAt(at(sec), 2)
	if !slices.Equal(idsOf(again), idsOf(cs)) {
		s.t.Fatalf("claim after Release = %v, want %v", idsOf(again), idsOf(cs))
	}
	for _, c := range again {
		if c.Attempt != 1 {
			s.t.Fatalf("re-claimed job %s at attempt %d, want 1 (Release must not spend an attempt)", c.ID, c.Attempt)
		}
	}
	// A stale token is ignored.
	stale := again[0].Lease()
	stale.Token += 1000
	s.release(stale)
	s.wantState(again[0].ID, backend.StateRunning, "Release with a wrong token")
	if err := s.b.Release(s.t.Context(), nil); err != nil {
		s.t.Fatalf("Release of no leases: %v", err)
	}
	// The single attempt (MaxAttempts 1) still runs to a normal end.
	s.completeOK(outcome(again[0], backend.StateSucceeded, at(2*sec)))
	s.wantState(again[0].ID, backend.StateSucceeded, "complete after release and re-claim")
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func attemptDiff(want, got backend.Attempt) string {
	w, g := &backend.Job{Attempts: []backend.Attempt{want}}, &backend.Job{Attempts: []backend.Attempt{got}}
	return jobDiff(w, g)
}
