package backendtest

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

func testUniqueKeys(s *suite) {
	a := s.job("t", unique("k", min1))
	s.enqueue(a)
	// Inside the window: the first job's id, nothing inserted.
	b := s.job("t", createdAt(at(30*sec)), unique("k", min1))
	res := s.enqueue(b)
	if !res[0].Duplicate || res[0].ID != a.ID {
		s.t.Fatalf("enqueue with key k inside the window = %+v, want Duplicate of %s", res[0], a.ID)
	}
	if _, err := s.b.Get(s.t.Context(), b.ID); !isErr(err, backend.ErrNotFound) {
		s.t.Fatalf("a duplicate was stored under its own id %s: Get = %v, want ErrNotFound", b.ID, err)
	}
	// A different key is independent; an empty key never dedupes.
	other := s.job("t", createdAt(at(30*sec)), unique("other", min1))
	n1, n2 := s.job("t"), s.job("t")
	for i, r := range s.enqueue(other, n1, n2) {
		if r.Duplicate {
			s.t.Fatalf("enqueue %d (different or empty key) was a duplicate of %s", i, r.ID)
		}
	}
	// The earlier job dedupes whatever its state.
	c := s.claimOne("w1", at(40*sec), 30*sec)
	if c.ID != a.ID {
		s.t.Fatalf("claimed %s, want %s", c.ID, a.ID)
	}
	s.completeOK(outcome(c, backend.StateSucceeded, at(41*sec)))
	d := s.job("t", createdAt(at(min1-us)), unique("k", min1))
	if r := s.enqueue(d); !r[0].Duplicate || r[0].ID != a.ID {
		s.t.Fatalf("enqueue with key k 1µs before the window ends, first job succeeded = %+v, want Duplicate of %s", r[0], a.ID)
	}
	// At the window's end (UniqueUntil not after CreatedAt): a new job.
	e := s.job("t", createdAt(at(min1)), unique("k", min1))
	if r := s.enqueue(e); r[0].Duplicate || r[0].ID != e.ID {
		s.t.Fatalf("enqueue with key k when the window ended = %+v, want new job %s", r[0], e.ID)
	}
	// The new job opens a new window.
	f := s.job("t", createdAt(at(90*sec)), unique("k", min1))
	if r := s.enqueue(f); !r[0].Duplicate || r[0].ID != e.ID {
		s.t.Fatalf("enqueue with key k inside the second window = %+v, want Duplicate of %s", r[0], e.ID)
	}
	if got := s.get(e.ID); got.UniqueKey != "k" || !got.UniqueUntil.Equal(at(2*min1)) {
		s.t.Fatalf("stored unique key %q until %s, want k until %s", got.UniqueKey, got.UniqueUntil, at(2*min1))
	}
}

func testUniqueWithinBatch(s *suite) {
	a := s.job("t", unique("k", min1))
	b := s.job("t", unique("k", min1))
	c := s.job("t", unique("k2", min1))
	res := s.enqueue(a, b, c)
	if res[0].Duplicate || res[0].ID != a.ID || !res[1].Duplicate || res[1].ID != a.ID || res[2].Duplicate || res[2].ID != c.ID {
		s.t.Fatalf("batch with a repeated unique key = %+v, want [new %s, duplicate of %s, new %s]", res, a.ID, a.ID, c.ID)
	}
	if got := idsOf(s.claimAt(at(0), 10)); !slices.Equal(got, sorted(a.ID, c.ID)) {
		s.t.Fatalf("claimable after the batch = %v, want %v", got, sorted(a.ID, c.ID))
	}
}

func testCancel(s *suite) {
	sched := s.job("t", scheduledAt(at(hour)))
	queued := s.job("t")
	retrying := s.job("t", withPriority(9))
	running := s.job("t", withPriority(5))
	done := s.job("t", withPriority(7))
	s.enqueue(sched, queued, retrying, running, done)
	c := s.claimOne("w1", at(0), hour)
	o := outcome(c, backend.StateRetrying, at(sec))
	o.RunAt = at(min1)
	s.completeOK(o)
	d := s.claimOne("w1", at(sec), hour)
	s.completeOK(outcome(d, backend.StateSucceeded, at(2*sec)))
	r := s.claimOne("w1", at(2*sec), hour)
	if c.ID != retrying.ID || d.ID != done.ID || r.ID != running.ID {
		s.t.Fatalf("setup claimed %s, %s, %s; want %s, %s, %s", c.ID, d.ID, r.ID, retrying.ID, done.ID, running.ID)
	}

	for _, id := range []string{sched.ID, queued.ID, retrying.ID} {
		before := s.state(id)
		if err := s.b.Cancel(s.t.Context(), id, at(3*sec)); err != nil {
			s.t.Fatalf("Cancel of a %s job: %v", before, err)
		}
		got := s.get(id)
		if got.State != backend.StateCancelled || !got.FinishedAt.Equal(at(3*sec)) {
			s.t.Fatalf("Cancel of a %s job: state %s finished %s, want cancelled at %s", before, got.State, got.FinishedAt, at(3*sec))
		}
	}
	// A running job: cancelled at once, its lease ended, the attempt recorded
	// with the lease owner; the worker's old lease can no longer extend or complete it.
	if err := s.b.Cancel(s.t.Context(), running.ID, at(3*sec)); err != nil {
		s.t.Fatalf("Cancel of a running job: %v", err)
	}
	got := s.get(running.ID)
	if got.State != backend.StateCancelled || !got.FinishedAt.Equal(at(3*sec)) || got.LeaseOwner != "" || !got.LeaseUntil.IsZero() {
		s.t.Fatalf("Cancel of a running job: state %s finished %s lease %q until %s, want cancelled at %s with no lease",
			got.State, got.FinishedAt, got.LeaseOwner, got.LeaseUntil, at(3*sec))
	}
	if n := len(got.Attempts); n == 0 || got.Attempts[n-1].Outcome != backend.OutcomeCancelled ||
		got.Attempts[n-1].Worker != "w1" || got.Attempts[n-1].Number != r.Attempt || !got.Attempts[n-1].FinishedAt.Equal(at(3*sec)) {
		s.t.Fatalf("Cancel of a running job: attempts %+v, want the last one cancelled, by w1, number %d", got.Attempts, r.Attempt)
	}
	if lost := s.extend(at(hour), r.Lease()); len(lost) != 1 {
		s.t.Fatalf("Extend of a cancelled job's old lease: lost %v, want it", lost)
	}
	if errs := s.complete(outcome(r, backend.StateSucceeded, at(4*sec))); !isErr(errs[0], backend.ErrLeaseLost) {
		s.t.Fatalf("Complete with a cancelled job's old lease = %v, want ErrLeaseLost", errs[0])
	}
	s.wantState(running.ID, backend.StateCancelled, "late Complete")
	for _, id := range []string{running.ID, done.ID, queued.ID} {
		before := s.state(id)
		if err := s.b.Cancel(s.t.Context(), id, at(4*sec)); !isErr(err, backend.ErrWrongState) {
			s.t.Fatalf("Cancel of a %s job = %v, want ErrWrongState", before, err)
		}
		s.wantState(id, before, "rejected Cancel")
	}
	if err := s.b.Cancel(s.t.Context(), ID(1<<60), at(4*sec)); !isErr(err, backend.ErrNotFound) {
		s.t.Fatalf("Cancel of an unknown job = %v, want ErrNotFound", err)
	}
	s.claimNone(at(2*hour), "only cancelled and finished jobs left")
}

func testRetry(s *suite) {
	exhausted := s.job("t", withAttempts(1), withPriority(9))
	cancelled := s.job("t")
	quarantined := s.job("t", withPriority(8))
	queued := s.job("t", withPriority(-1))
	sched := s.job("t", scheduledAt(at(hour)))
	s.enqueue(exhausted, cancelled, quarantined, queued, sched)
	c := s.claimOne("w1", at(0), hour)
	s.completeOK(outcome(c, backend.StateFailed, at(sec)))
	q := s.claimOne("w1", at(sec), hour)
	s.completeOK(outcome(q, backend.StateQuarantined, at(2*sec)))
	if c.ID != exhausted.ID || q.ID != quarantined.ID {
		s.t.Fatalf("setup claimed %s, %s; want %s, %s", c.ID, q.ID, exhausted.ID, quarantined.ID)
	}
	if err := s.b.Cancel(s.t.Context(), cancelled.ID, at(2*sec)); err != nil {
		s.t.Fatalf("Cancel: %v", err)
	}

	now := at(10 * sec)
	if err := s.b.Retry(s.t.Context(), exhausted.ID, now); err != nil {
		s.t.Fatalf("Retry of a failed job: %v", err)
	}
	got := s.get(exhausted.ID)
	if got.State != backend.StateQueued || !got.RunAt.Equal(now) || got.MaxAttempts != 2 || got.Attempt != 1 || len(got.Attempts) != 1 {
		s.t.Fatalf("retried failed job: state %s run-at %s max %d attempt %d history %d, want queued %s max 2 attempt 1 history 1",
			got.State, got.RunAt, got.MaxAttempts, got.Attempt, len(got.Attempts), now)
	}
	if err := s.b.Retry(s.t.Context(), cancelled.ID, now); err != nil {
		s.t.Fatalf("Retry of a cancelled job: %v", err)
	}
	if got := s.get(cancelled.ID); got.State != backend.StateQueued || got.MaxAttempts != 3 || !got.RunAt.Equal(now) {
		s.t.Fatalf("retried cancelled job (0 of 3 attempts used): state %s max %d run-at %s, want queued, 3 (not raised), %s", got.State, got.MaxAttempts, got.RunAt, now)
	}
	if err := s.b.Retry(s.t.Context(), quarantined.ID, now); err != nil {
		s.t.Fatalf("Retry of a quarantined job: %v", err)
	}
	s.wantState(quarantined.ID, backend.StateQueued, "Retry of a quarantined job")

	r := s.claimOne("w2", now, hour)
	if r.ID != exhausted.ID || r.Attempt != 2 {
		s.t.Fatalf("claim after Retry = %s attempt %d, want %s attempt 2", r.ID, r.Attempt, exhausted.ID)
	}
	s.completeOK(outcome(r, backend.StateSucceeded, now.Add(sec)))
	if got := s.get(exhausted.ID); len(got.Attempts) != 2 || got.Attempts[0].Outcome != backend.OutcomeFailed || got.Attempts[1].Outcome != backend.OutcomeSucceeded {
		s.t.Fatalf("history after a manual retry = %+v, want [failed, succeeded]", got.Attempts)
	}
	running := s.claimOne("w2", now, hour)                                // quarantined (priority 8)
	o := outcome(s.claimOne("w2", now, hour), backend.StateRetrying, now) // cancelled (priority 0)
	o.RunAt = at(hour)
	s.completeOK(o)
	for _, id := range []string{exhausted.ID, queued.ID, sched.ID, running.ID, o.Lease.JobID} {
		before := s.state(id)
		if err := s.b.Retry(s.t.Context(), id, now); !isErr(err, backend.ErrWrongState) {
			s.t.Fatalf("Retry of a %s job = %v, want ErrWrongState", before, err)
		}
		s.wantState(id, before, "rejected Retry")
	}
	if err := s.b.Retry(s.t.Context(), ID(1<<60), now); !isErr(err, backend.ErrNotFound) {
		s.t.Fatalf("Retry of an unknown job = %v, want ErrNotFound", err)
	}
}

func testGetUnknown(s *suite) {
	s.enqueue(s.job("t"))
	if j, err := s.b.Get(s.t.Context(), ID(1<<60)); !isErr(err, backend.ErrNotFound) {
		s.t.Fatalf("Get of an unknown id = %v, %v; want ErrNotFound", j, err)
	}
}

// model is what the suite knows of a job, to compute expected List and Stats answers.
type model struct {
	id, task, queue string
	state           backend.State
	created, runAt  time.Time
}

// mixedJobs enqueues jobs over two tasks, three queues and three creation times,
// and moves some to running, succeeded, failed and retrying. It returns the model.
func (s *suite) mixedJobs() []model {
	var all []*backend.Job
	for i := range 18 {
		task := []string{"A", "B"}[i%2]
		q := []string{"q1", "q2", "q3"}[i%3]
		created := at(time.Duration(i/6) * min1)
		mods := []func(*backend.Job){onQueue(q), createdAt(created)}
		if i%5 == 4 {
			mods = append(mods, scheduledAt(created.Add(hour)))
		}
		all = append(all, s.job(task, mods...))
	}
	s.enqueue(all...)
	m := make([]model, len(all))
	byID := map[string]int{}
	for i, j := range all {
		m[i] = model{id: j.ID, task: j.Task, queue: j.Queue, state: j.State, created: j.CreatedAt, runAt: j.RunAt}
		byID[j.ID] = i
	}
	cs := s.claimAt(at(10*min1), 8)
	if len(cs) != 8 {
		s.t.Fatalf("setup claimed %d, want 8", len(cs))
	}
	slices.SortFunc(cs, func(a, b *backend.Job) int { return cmp.Compare(a.ID, b.ID) })
	for i, c := range cs {
		k := byID[c.ID]
		switch i % 4 {
		case 0:
			m[k].state = backend.StateRunning
			continue
		case 1:
			m[k].state = backend.StateSucceeded
		case 2:
			m[k].state = backend.StateFailed
		case 3:
			m[k].state = backend.StateRetrying
			m[k].runAt = at(20 * min1)
		}
		o := outcome(c, m[k].state, at(11*min1))
		o.RunAt = at(20 * min1)
		s.completeOK(o)
	}
	return m
}

func testList(s *suite) {
	m := s.mixedJobs()
	check := func(f backend.ListFilter, keep func(model) bool) {
		s.t.Helper()
		var want []string
		for _, j := range m {
			if keep(j) {
				want = append(want, j.id)
			}
		}
		slices.Sort(want)
		slices.Reverse(want)
		if lim := cmp.Or(f.Limit, 100); len(want) > lim {
			want = want[:lim]
		}
		got := s.list(f)
		if !slices.Equal(idsOfOrdered(got), want) {
			s.t.Errorf("List(%+v) = %v, want %v (newest id first)", f, idsOfOrdered(got), want)
		}
		for _, j := range got {
			if j.Task == "" || j.CreatedAt.IsZero() {
				s.t.Errorf("List returned an incomplete record: %+v", j)
				break
			}
		}
	}
	check(backend.ListFilter{}, func(model) bool { return true })
	for _, st := range backend.AllStates() {
		check(backend.ListFilter{States: []backend.State{st}}, func(j model) bool { return j.state == st })
	}
	finals := []backend.State{backend.StateSucceeded, backend.StateFailed}
	check(backend.ListFilter{States: finals}, func(j model) bool { return slices.Contains(finals, j.state) })
	check(backend.ListFilter{Task: "A"}, func(j model) bool { return j.task == "A" })
	check(backend.ListFilter{Task: "nope"}, func(model) bool { return false })
	check(backend.ListFilter{Queue: "q2"}, func(j model) bool { return j.queue == "q2" })
	check(backend.ListFilter{Since: at(min1)}, func(j model) bool { return !j.created.Before(at(min1)) })
	check(backend.ListFilter{Since: at(min1 + us)}, func(j model) bool { return !j.created.Before(at(min1 + us)) })
	check(backend.ListFilter{Limit: 2}, func(model) bool { return true })
	check(backend.ListFilter{Task: "B", Queue: "q1", States: []backend.State{backend.StateQueued, backend.StateRunning}, Since: at(min1), Limit: 3},
		func(j model) bool {
			return j.task == "B" && j.queue == "q1" && (j.state == backend.StateQueued || j.state == backend.StateRunning) && !j.created.Before(at(min1))
		})
}

func testListDefaultLimit(s *suite) {
	jobs := s.jobs(105, "t")
	s.enqueue(jobs...)
	got := s.list(backend.ListFilter{})
	if len(got) != 100 {
		s.t.Fatalf("List with Limit 0 returned %d jobs, want 100", len(got))
	}
	if got[0].ID != jobs[104].ID || got[99].ID != jobs[5].ID {
		s.t.Fatalf("List with Limit 0 returned %s..%s, want the newest 100: %s..%s", got[0].ID, got[99].ID, jobs[104].ID, jobs[5].ID)
	}
}

func testStats(s *suite) {
	m := s.mixedJobs()
	type key struct {
		q  string
		st backend.State
	}
	want := map[key]backend.QueueStat{}
	for _, j := range m {
		k := key{j.queue, j.state}
		st, ok := want[k]
		if !ok || j.runAt.Before(st.OldestRunAt) {
			st.OldestRunAt = j.runAt
		}
		st.Queue, st.State = j.queue, j.state
		st.Count++
		want[k] = st
	}
	got, err := s.b.Stats(s.t.Context(), at(30*min1))
	if err != nil {
		s.t.Fatalf("Stats: %v", err)
	}
	seen := map[key]bool{}
	for _, g := range got {
		k := key{g.Queue, g.State}
		if g.Count == 0 {
			continue
		}
		if seen[k] {
			s.t.Errorf("Stats lists queue %s state %s twice", g.Queue, g.State)
		}
		seen[k] = true
		w, ok := want[k]
		if !ok {
			s.t.Errorf("Stats has %d jobs in queue %s state %s, want none", g.Count, g.Queue, g.State)
			continue
		}
		if g.Count != w.Count || (g.State == backend.StateQueued || !g.OldestRunAt.IsZero()) && !g.OldestRunAt.Equal(w.OldestRunAt) {
			s.t.Errorf("Stats for queue %s state %s: count %d oldest run-at %s, want %d and %s", g.Queue, g.State, g.Count, g.OldestRunAt, w.Count, w.OldestRunAt)
		}
	}
	keys := make([]key, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(cmp.Compare(a.q, b.q), cmp.Compare(a.st, b.st)) })
	for _, k := range keys {
		if !seen[k] {
			s.t.Errorf("Stats lacks queue %s state %s (%d jobs)", k.q, k.st, want[k].Count)
		}
	}
}

// endAt is how a claimed job of endedJobs ends: in state, at minute at.
type endAt struct {
	state backend.State
	at    time.Duration
}

// endedJobs enqueues 9 jobs, on q1 and q2 in turn, claims 7 of them at 1m,
// ends the claimed ones (sorted by ID) as ends says (a retrying one runs
// again in an hour; the others stay running) and cancels jobs[7] at minute
// cancelAt while it is queued. It returns the jobs and the claimed ones.
func (s *suite) endedJobs(ends []endAt, cancelAt time.Duration) (jobs, cs []*backend.Job) {
	s.t.Helper()
	for i := range 9 {
		jobs = append(jobs, s.job("A", onQueue([]string{"q1", "q2"}[i%2])))
	}
	s.enqueue(jobs...)
	cs = s.claimAt(at(min1), 7)
	if len(cs) != 7 {
		s.t.Fatalf("setup claimed %d, want 7", len(cs))
	}
	slices.SortFunc(cs, func(a, b *backend.Job) int { return cmp.Compare(a.ID, b.ID) })
	for i, e := range ends {
		o := outcome(cs[i], e.state, at(e.at*min1))
		if e.state == backend.StateRetrying {
			o.RunAt = at(hour)
		}
		s.completeOK(o)
	}
	if err := s.b.Cancel(s.t.Context(), jobs[7].ID, at(cancelAt*min1)); err != nil {
		s.t.Fatalf("Cancel: %v", err)
	}
	return jobs, cs
}

// deletions returns a check of jobs: del (named what) must delete the jobs
// of want, and every job deleted so far must be gone and every other one
// there. The check returns how many jobs are left.
func (s *suite) deletions(jobs []*backend.Job) func(what string, del func() (int, error), want ...string) int {
	live := map[string]bool{}
	for _, j := range jobs {
		live[j.ID] = true
	}
	return func(what string, del func() (int, error), want ...string) int {
		s.t.Helper()
		n, err := del()
		if err != nil {
			s.t.Fatalf("%s: %v", what, err)
		}
		if n != len(want) {
			s.t.Errorf("%s deleted %d jobs, want %d", what, n, len(want))
		}
		for _, id := range want {
			delete(live, id)
		}
		for _, j := range jobs {
			_, err := s.b.Get(s.t.Context(), j.ID)
			if gone := isErr(err, backend.ErrNotFound); gone == live[j.ID] {
				s.t.Errorf("after %s: job %s gone = %v, want %v (err %v)", what, j.ID, gone, !live[j.ID], err)
			}
		}
		return len(live)
	}
}

// testPurgeEnded checks retention by age: PurgeEnded deletes ended jobs
// (succeeded, failed, cancelled, quarantined) whose FinishedAt is before its
// time, with the filter's fields still narrowing the purge, and never a job
// that has not ended (a retrying job's FinishedAt is its last attempt's). A
// zero time is an error that deletes nothing.
func testPurgeEnded(s *suite) {
	ctx := s.t.Context()
	// cs[0] q1 succeeded at 2m, cs[1] q2 failed at 3m, cs[2] q1 succeeded at
	// 10m, cs[3] q2 retrying (its attempt ended at 2m), cs[4] q1 quarantined
	// at 2m, cs[5] q2 succeeded at 2m, cs[6] q1 running; jobs[7] q2 cancelled
	// at 4m while queued, jobs[8] q1 queued.
	jobs, cs := s.endedJobs([]endAt{{backend.StateSucceeded, 2}, {backend.StateFailed, 3}, {backend.StateSucceeded, 10},
		{backend.StateRetrying, 2}, {backend.StateQuarantined, 2}, {backend.StateSucceeded, 2}}, 4)
	check := s.deletions(jobs)
	purge := func(before time.Time, f backend.PurgeFilter, want ...string) int {
		s.t.Helper()
		return check(fmt.Sprintf("PurgeEnded(%s, %+v)", before, f), func() (int, error) { return s.b.PurgeEnded(ctx, before, f) }, want...)
	}
	if n, err := s.b.PurgeEnded(ctx, time.Time{}, backend.PurgeFilter{}); err == nil || n != 0 {
		s.t.Fatalf("PurgeEnded with a zero time = %d, %v; want an error and nothing deleted", n, err)
	}
	cutoff := at(5 * min1)
	purge(cutoff, backend.PurgeFilter{States: []backend.State{backend.StateFailed, backend.StateQueued}}, cs[1].ID)
	purge(cutoff, backend.PurgeFilter{Queue: "q2"}, cs[5].ID, jobs[7].ID)
	purge(cutoff, backend.PurgeFilter{}, cs[0].ID, cs[4].ID)
	purge(at(10*min1), backend.PurgeFilter{IDs: []string{cs[2].ID}}) // it ended at 10m: not before
	purge(at(11*min1), backend.PurgeFilter{IDs: []string{cs[2].ID, cs[3].ID, cs[6].ID, jobs[8].ID}}, cs[2].ID)
	if left := purge(at(100*hour), backend.PurgeFilter{}); left != 3 {
		s.t.Errorf("%d jobs left, want the retrying, running and queued ones", left)
	}
}

func testPurge(s *suite) {
	m := s.mixedJobs()
	purge := func(f backend.PurgeFilter, drop func(model) bool) {
		s.t.Helper()
		want := 0
		var keep []model
		for _, j := range m {
			if j.state != backend.StateRunning && drop(j) {
				want++
				if _, err := s.b.Get(s.t.Context(), j.id); err != nil {
					s.t.Fatalf("before Purge: Get(%s): %v", j.id, err)
				}
				continue
			}
			keep = append(keep, j)
		}
		n, err := s.b.Purge(s.t.Context(), f)
		if err != nil {
			s.t.Fatalf("Purge(%+v): %v", f, err)
		}
		if n != want {
			s.t.Errorf("Purge(%+v) deleted %d jobs, want %d", f, n, want)
		}
		for _, j := range m {
			_, err := s.b.Get(s.t.Context(), j.id)
			gone := isErr(err, backend.ErrNotFound)
			if wantGone := !slices.ContainsFunc(keep, func(k model) bool { return k.id == j.id }); gone != wantGone {
				s.t.Errorf("after Purge(%+v): job %s (%s, %s) gone = %v, want %v (err %v)", f, j.id, j.queue, j.state, gone, wantGone, err)
			}
		}
		m = keep
	}
	purge(backend.PurgeFilter{Queue: "q1", States: []backend.State{backend.StateSucceeded, backend.StateFailed}},
		func(j model) bool {
			return j.queue == "q1" && (j.state == backend.StateSucceeded || j.state == backend.StateFailed)
		})
	purge(backend.PurgeFilter{States: []backend.State{backend.StateRunning}}, func(model) bool { return false })
	// IDs narrow the purge to those jobs, still honouring the other fields.
	var ids []string
	for i, j := range m {
		if i%3 == 0 {
			ids = append(ids, j.id)
		}
	}
	purge(backend.PurgeFilter{IDs: ids, States: []backend.State{backend.StateQueued, backend.StateFailed, backend.StateRunning}},
		func(j model) bool {
			return slices.Contains(ids, j.id) && (j.state == backend.StateQueued || j.state == backend.StateFailed)
		})
	purge(backend.PurgeFilter{Queue: "q2"}, func(j model) bool { return j.queue == "q2" })
	purge(backend.PurgeFilter{}, func(model) bool { return true })
	var running []string
	for _, j := range m {
		if j.state != backend.StateRunning {
			s.t.Fatalf("after Purge of everything a %s job is left", j.state)
		}
		running = append(running, j.id)
	}
	if len(running) == 0 {
		s.t.Fatal("setup made no running jobs")
	}
	// Running jobs survive and still finish.
	for _, id := range running {
		j := s.get(id)
		s.completeOK(outcome(j, backend.StateSucceeded, at(12*min1)))
	}
}

func testConcurrentClaimers(s *suite) {
	const total, workers, limit = 2000, 8, 16
	for i := 0; i < total; i += 500 {
		s.enqueue(s.jobs(500, "t", withPriority(i%7))...)
	}
	var mu sync.Mutex
	claimed := map[string]string{}
	var wg sync.WaitGroup
	for w := range workers {
		worker := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for {
				jobs, err := s.b.Claim(s.t.Context(), backend.ClaimRequest{Limit: limit, Worker: worker, Now: at(sec), LeaseFor: hour})
				if err != nil {
					s.t.Errorf("%s: Claim: %v", worker, err)
					return
				}
				if len(jobs) == 0 {
					return
				}
				if len(jobs) > limit {
					s.t.Errorf("%s: Claim with Limit %d returned %d", worker, limit, len(jobs))
				}
				outs := make([]backend.Outcome, len(jobs))
				mu.Lock()
				for i, j := range jobs {
					if prev, dup := claimed[j.ID]; dup {
						s.t.Errorf("job %s claimed by %s and again by %s", j.ID, prev, worker)
					}
					claimed[j.ID] = worker
					outs[i] = outcome(j, backend.StateSucceeded, at(2*sec))
				}
				mu.Unlock()
				errs, err := s.b.Complete(s.t.Context(), outs)
				if err != nil {
					s.t.Errorf("%s: Complete: %v", worker, err)
					return
				}
				for i, e := range errs {
					if e != nil {
						s.t.Errorf("%s: Complete of %s: %v", worker, outs[i].Lease.JobID, e)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(claimed) != total {
		s.t.Fatalf("%d goroutines claimed %d distinct jobs of %d", workers, len(claimed), total)
	}
	stats, err := s.b.Stats(s.t.Context(), at(3*sec))
	if err != nil {
		s.t.Fatalf("Stats: %v", err)
	}
	for _, st := range stats {
		if st.Count > 0 && (st.State != backend.StateSucceeded || st.Count != total) {
			s.t.Fatalf("after concurrent burn-down Stats has %d %s jobs, want %d succeeded only", st.Count, st.State, total)
		}
	}
}

func testHistoryAcrossRetries(s *suite) {
	j := s.job("t", withAttempts(3))
	s.enqueue(j)
	var want []backend.Attempt
	steps := []struct {
		worker  string
		start   time.Time
		state   backend.State
		outcome string
		runAt   time.Time
	}{
		{"w1", at(0), backend.StateRetrying, backend.OutcomeFailed, at(10 * sec)},
		{"w2", at(10 * sec), backend.StateRetrying, backend.OutcomeTimedOut, at(30 * sec)},
		{"w3", at(30 * sec), backend.StateSucceeded, backend.OutcomeSucceeded, time.Time{}},
	}
	for i, st := range steps {
		c := s.claimOne(st.worker, st.start, 5*sec)
		if c.Attempt != i+1 {
			s.t.Fatalf("claim %d: attempt %d, want %d", i+1, c.Attempt, i+1)
		}
		o := outcome(c, st.state, st.start.Add(sec))
		o.RunAt = st.runAt
		o.Attempt.Outcome = st.outcome
		if st.state == backend.StateSucceeded {
			o.Result = []byte("r")
		}
		s.completeOK(o)
		want = append(want, o.Attempt)
		if got := s.get(j.ID); len(got.Attempts) != i+1 {
			s.t.Fatalf("after attempt %d the history has %d entries", i+1, len(got.Attempts))
		}
	}
	got := s.get(j.ID)
	if d := jobDiff(&backend.Job{Attempts: want}, &backend.Job{Attempts: got.Attempts}); d != "" {
		s.t.Errorf("history across retries (-want +got):\n%s", d)
	}
	if got.State != backend.StateSucceeded || got.Error != "" || len(got.ErrorChain) != 0 || string(got.Result) != "r" {
		s.t.Errorf("after success: state %s error %q chain %q result %q, want succeeded with the earlier error cleared", got.State, got.Error, got.ErrorChain, got.Result)
	}
}

func testNotifier(s *suite) {
	ch, cancel := s.b.Subscribe()
	if ch == nil {
		s.t.Skip("backend does not notify (Subscribe returns a nil channel)")
	}
	defer cancel()
	drain := func() {
		for {
			select {
			case <-ch:
			default:
				return
			}
		}
	}
	wait := func(what string) {
		s.t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			s.t.Fatalf("no notification within 5s after %s", what)
		}
	}
	drain()
	j := s.job("t", withAttempts(1))
	s.enqueue(j)
	wait("Enqueue")
	c := s.claimOne("w1", at(0), 30*sec)
	s.completeOK(outcome(c, backend.StateFailed, at(sec)))
	drain()
	if err := s.b.Retry(s.t.Context(), j.ID, at(2*sec)); err != nil {
		s.t.Fatalf("Retry: %v", err)
	}
	wait("Retry")
	// Signals coalesce: many enqueues never block the sender.
	for range 10 {
		s.enqueue(s.job("t"))
	}
	wait("10 enqueues")
}

// testUniqueKeysPerTask: a unique key only matches an earlier job of the
// same task.
func testUniqueKeysPerTask(s *suite) {
	charge := s.job("billing.Charge", unique("order:42", hour))
	s.enqueue(charge)
	email := s.job("email.Send", createdAt(at(sec)), unique("order:42", hour))
	if r := s.enqueue(email); r[0].Duplicate || r[0].ID != email.ID {
		s.t.Fatalf("email.Send with billing.Charge's key order:42 = %+v, want a new job %s", r[0], email.ID)
	}
	if got := s.get(email.ID); got.Task != "email.Send" {
		s.t.Fatalf("stored job %s has task %q, want email.Send", email.ID, got.Task)
	}
	again := s.job("email.Send", createdAt(at(2*sec)), unique("order:42", hour))
	if r := s.enqueue(again); !r[0].Duplicate || r[0].ID != email.ID {
		s.t.Fatalf("second email.Send with key order:42 = %+v, want Duplicate of %s", r[0], email.ID)
	}
	charge2 := s.job("billing.Charge", createdAt(at(3*sec)), unique("order:42", hour))
	if r := s.enqueue(charge2); !r[0].Duplicate || r[0].ID != charge.ID {
		s.t.Fatalf("second billing.Charge with key order:42 = %+v, want Duplicate of %s", r[0], charge.ID)
	}
	// In one batch.
	x1 := s.job("x", unique("k", hour))
	y1 := s.job("y", unique("k", hour))
	x2 := s.job("x", unique("k", hour))
	res := s.enqueue(x1, y1, x2)
	if res[0].Duplicate || res[1].Duplicate || res[1].ID != y1.ID || !res[2].Duplicate || res[2].ID != x1.ID {
		s.t.Fatalf("batch [x k, y k, x k] = %+v, want [new %s, new %s, duplicate of %s]", res, x1.ID, y1.ID, x1.ID)
	}
	// Purging one task's holder leaves the other task's key alone.
	if n, err := s.b.Purge(s.t.Context(), backend.PurgeFilter{IDs: []string{charge.ID}}); err != nil || n != 1 {
		s.t.Fatalf("Purge of %s = %d, %v", charge.ID, n, err)
	}
	late := s.job("email.Send", createdAt(at(4*sec)), unique("order:42", hour))
	if r := s.enqueue(late); !r[0].Duplicate || r[0].ID != email.ID {
		s.t.Fatalf("email.Send with key order:42 after billing.Charge's holder was purged = %+v, want Duplicate of %s", r[0], email.ID)
	}
}

// testTrimEnded checks retention by count: TrimEnded keeps, in each queue,
// the newest keep of the ended jobs matching the filter (by FinishedAt, then
// by ID) and deletes the others, never a job that has not ended. A negative
// keep is an error that deletes nothing.
func testTrimEnded(s *suite) {
	ctx := s.t.Context()
	// q1, newest first: cs[2] succeeded at 6m, cs[4] failed at 3m, cs[0]
	// succeeded at 2m; cs[6] running, jobs[8] queued.
	// q2, newest first: cs[3] failed at 5m and cs[1] succeeded at 5m (the
	// same time: the greater ID is the newer), jobs[7] cancelled at 4m while
	// queued; cs[5] retrying (its attempt ended at 1m).
	jobs, cs := s.endedJobs([]endAt{{backend.StateSucceeded, 2}, {backend.StateSucceeded, 5}, {backend.StateSucceeded, 6},
		{backend.StateFailed, 5}, {backend.StateFailed, 3}, {backend.StateRetrying, 1}}, 4)
	check := s.deletions(jobs)
	trim := func(keep int, f backend.PurgeFilter, want ...string) {
		s.t.Helper()
		check(fmt.Sprintf("TrimEnded(%d, %+v)", keep, f), func() (int, error) { return s.b.TrimEnded(ctx, keep, f) }, want...)
	}
	if n, err := s.b.TrimEnded(ctx, -1, backend.PurgeFilter{}); !isErr(err, backend.ErrNegativeKeep) || n != 0 {
		s.t.Fatalf("TrimEnded(-1) = %d, %v; want ErrNegativeKeep and nothing deleted", n, err)
	}
	trim(3, backend.PurgeFilter{})
	trim(1, backend.PurgeFilter{States: []backend.State{backend.StateSucceeded, backend.StateQueued}}, cs[0].ID)
	trim(1, backend.PurgeFilter{Queue: "q2"}, cs[1].ID, jobs[7].ID)
	trim(1, backend.PurgeFilter{IDs: []string{cs[2].ID, cs[4].ID, cs[6].ID}}, cs[4].ID)
	trim(0, backend.PurgeFilter{}, cs[2].ID, cs[3].ID)
	trim(0, backend.PurgeFilter{})
	stats, err := s.b.Stats(ctx, at(hour))
	if err != nil {
		s.t.Fatalf("Stats: %v", err)
	}
	st := map[backend.State]int{}
	for _, q := range stats {
		st[q.State] += q.Count
	}
	if want := map[backend.State]int{backend.StateRetrying: 1, backend.StateRunning: 1, backend.StateQueued: 1}; !maps.Equal(st, want) {
		s.t.Errorf("after trimming every ended job, stats = %v, want %v", st, want)
	}
}
