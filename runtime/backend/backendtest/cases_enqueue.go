package backendtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

func cases() []testCase {
	return append([]testCase{
		{"EnqueueGetRoundTrip", testEnqueueGetRoundTrip},
		{"EnqueueEmpty", testEnqueueEmpty},
		{"EnqueueBatchAtomic", testEnqueueBatchAtomic},
		{"EnqueueBatchKeepsIDs", testEnqueueBatchKeepsIDs},
		{"EnqueueAllOrNothing", testEnqueueAllOrNothing},
		{"NoAliasing", testNoAliasing},
		{"ScheduledNotClaimableEarly", testScheduled},
		{"ClaimOrder", testClaimOrder},
		{"ClaimQueues", testClaimQueues},
		{"ClaimLimit", testClaimLimit},
		{"ClaimLimitZero", testClaimLimitZero},
		{"ClaimTasks", testClaimTasks},
		{"ClaimSetsLease", testClaimSetsLease},
		{"ClaimAfterRetry", testClaimAfterRetry},
		{"LeaseTokenIncreases", testTokenIncreases},
		{"RecoverExpired", testRecoverExpired},
		{"RecoverExpiredPoisonPill", testRecoverExpiredPoisonPill},
		{"FarFutureTimes", testFarFuture},
		{"FarPastTimes", testFarPast},
		{"UniqueHugeWindow", testUniqueHugeWindow},
		{"Fencing", testFencing},
		{"Extend", testExtend},
		{"CompleteSucceeded", testCompleteSucceeded},
		{"CompleteFailed", testCompleteFailed},
		{"CompleteRetrying", testCompleteRetrying},
		{"CompleteRefund", testCompleteRefund},
		{"CompleteCancelled", testCompleteCancelled},
		{"CompleteQuarantined", testCompleteQuarantined},
		{"CompleteBatchMixedLeases", testCompleteBatchMixed},
		{"CompleteInvalidState", testCompleteInvalidState},
		{"Release", testRelease},
		{"UniqueKeys", testUniqueKeys},
		{"UniqueKeyWithinBatch", testUniqueWithinBatch},
		{"UniqueKeysPerTask", testUniqueKeysPerTask},
		{"Cancel", testCancel},
		{"Retry", testRetry},
		{"GetUnknown", testGetUnknown},
		{"List", testList},
		{"ListDefaultLimit", testListDefaultLimit},
		{"Stats", testStats},
		{"Purge", testPurge},
		{"PurgeEnded", testPurgeEnded},
		{"TrimEnded", testTrimEnded},
		{"ConcurrentClaimers", testConcurrentClaimers},
		{"HistoryAcrossRetries", testHistoryAcrossRetries},
		{"RandomOpsMatchScan", testRandomOps},
		{"Notifier", testNotifier},
	}, append(append(metaCases(), workflowCases()...), limitCases()...)...)
}

func testEnqueueGetRoundTrip(s *suite) {
	full := s.job("images.Resize·ü", func(j *backend.Job) {
		j.Signature = "sha256:0123456789abcdef"
		j.Args = []byte{0x93, 0x00, 0xff, 0x0a, 'x', 0x00}
		j.Queue = "images"
		j.Priority = -7
		j.MaxAttempts = 4
		j.Timeout = 1500*time.Millisecond + 7
		j.TimeoutPolicy = backend.TimeoutRetry
		j.StoreResult = true
		j.UniqueKey = "resize:a.png"
		j.UniqueUntil = at(10 * min1)
		j.CreatedAt = at(-sec)
		j.RunAt = at(0)
	})
	sched := s.job("mail.Send", scheduledAt(at(hour+us)), func(j *backend.Job) {
		j.Args = nil
		j.Priority = 1 << 40
		j.TimeoutPolicy = backend.TimeoutIgnore
	})
	want := []*backend.Job{cloneJob(full), cloneJob(sched)}
	res := s.enqueue(full, sched)
	for i, r := range res {
		if r.ID != want[i].ID || r.Duplicate {
			s.t.Fatalf("Enqueue result %d = %+v, want ID %s not duplicate", i, r, want[i].ID)
		}
	}
	for _, w := range want {
		if d := jobDiff(w, s.get(w.ID)); d != "" {
			s.t.Errorf("Get(%s) after Enqueue differs from the enqueued job (-want +got):\n%s", w.ID, d)
		}
	}
}

func testEnqueueEmpty(s *suite) {
	res, err := s.b.Enqueue(s.t.Context(), nil)
	if err != nil {
		s.t.Fatalf("Enqueue of no jobs: %v", err)
	}
	if len(res) != 0 {
		s.t.Fatalf("Enqueue of no jobs returned %d results", len(res))
	}
}

func testEnqueueBatchAtomic(s *suite) {
	a := s.job("t")
	s.enqueue(a)
	b, c := s.job("t"), s.job("t")
	clash := s.job("other")
	clash.ID = a.ID
	if _, err := s.b.Enqueue(s.t.Context(), []*backend.Job{b, c, clash}); err == nil {
		s.t.Fatalf("Enqueue of a batch holding an existing id %s succeeded, want an error", a.ID)
	}
	for _, id := range []string{b.ID, c.ID} {
		if _, err := s.b.Get(s.t.Context(), id); !isErr(err, backend.ErrNotFound) {
			s.t.Errorf("after a failed batch Enqueue, Get(%s) = %v, want ErrNotFound (batch must insert nothing)", id, err)
		}
	}
	if got := s.get(a.ID); got.Task != "t" {
		s.t.Errorf("failed batch Enqueue overwrote existing job %s: task %q, want %q", a.ID, got.Task, "t")
	}
	// An id twice in one batch fails the batch too.
	twin := s.job("t")
	twin.ID = b.ID
	if _, err := s.b.Enqueue(s.t.Context(), []*backend.Job{b, twin}); err == nil {
		s.t.Fatalf("Enqueue of a batch holding id %s twice succeeded, want an error", b.ID)
	}
	if _, err := s.b.Get(s.t.Context(), b.ID); !isErr(err, backend.ErrNotFound) {
		s.t.Errorf("after a batch with a repeated id failed, Get(%s) = %v, want ErrNotFound", b.ID, err)
	}
	s.enqueue(b, c)
	if got := idsOf(s.claimAt(at(0), 10)); !slices.Equal(got, sorted(a.ID, b.ID, c.ID)) {
		s.t.Errorf("after retrying the batch, claimable jobs = %v, want %v", got, sorted(a.ID, b.ID, c.ID))
	}
}

func testEnqueueBatchKeepsIDs(s *suite) {
	jobs := s.jobs(200, "t")
	// Enqueue in an order that is not the id order.
	slices.Reverse(jobs)
	res := s.enqueue(jobs...)
	for i, r := range res {
		if r.ID != jobs[i].ID || r.Duplicate {
			s.t.Fatalf("Enqueue result %d = %+v, want ID %s not duplicate (results must follow input order)", i, r, jobs[i].ID)
		}
	}
	for _, j := range jobs[:5] {
		s.wantState(j.ID, backend.StateQueued, "after batch Enqueue")
	}
	if got := s.claimAt(at(0), 1000); len(got) != 200 {
		s.t.Fatalf("after Enqueue of 200 jobs, Claim returned %d", len(got))
	}
}

func testNoAliasing(s *suite) {
	j := s.job("t")
	want := cloneJob(j)
	s.enqueue(j)
	j.Args[0] = 0xEE
	j.Task = "changed"
	j.Attempts = append(j.Attempts, backend.Attempt{Number: 9})
	if d := jobDiff(want, s.get(want.ID)); d != "" {
		s.t.Fatalf("changing the caller's job after Enqueue changed the stored job (-want +got):\n%s", d)
	}
	g := s.get(want.ID)
	g.Args[0] = 0xDD
	g.State = backend.StateFailed
	if d := jobDiff(want, s.get(want.ID)); d != "" {
		s.t.Fatalf("changing a job returned by Get changed the stored job (-want +got):\n%s", d)
	}
	c := s.claimOne("w1", at(0), 30*sec)
	c.Args[0] = 0xCC
	if got := s.get(want.ID); got.Args[0] != want.Args[0] {
		s.t.Fatalf("changing a job returned by Claim changed the stored args: %x", got.Args)
	}
	o := outcome(c, backend.StateFailed, at(sec))
	s.completeOK(o)
	o.ErrorChain[0] = "mutated"
	if got := s.get(want.ID); got.ErrorChain[0] != "boom" {
		s.t.Fatalf("changing an outcome after Complete changed the stored error chain: %q", got.ErrorChain)
	}
}

func testScheduled(s *suite) {
	j := s.job("t", scheduledAt(at(min1)))
	s.enqueue(j)
	s.wantState(j.ID, backend.StateScheduled, "after Enqueue")
	s.claimNone(at(0), "job scheduled for +1m claimed at +0")
	s.claimNone(at(min1-us), "job scheduled for +1m claimed 1µs early")
	c := s.claimOne("w1", at(min1), 30*sec)
	if c.ID != j.ID || c.State != backend.StateRunning {
		s.t.Fatalf("claim at run-at returned %s in %s, want %s running", c.ID, c.State, j.ID)
	}
	k := s.job("t", scheduledAt(at(2*min1)))
	s.enqueue(k)
	if c := s.claimOne("w1", at(hour), 30*sec); c.ID != k.ID {
		s.t.Fatalf("claim after run-at returned %s, want %s", c.ID, k.ID)
	}

	// Claimers' clocks may disagree (workers on several hosts): a claim at an
	// earlier now after one at a later now still sees only jobs ready at its now.
	hi := s.job("t", withPriority(9))
	later := s.job("t", scheduledAt(at(2*hour)))
	s.enqueue(hi, later)
	if c := s.claimOne("w1", at(3*hour), 30*sec); c.ID != hi.ID {
		s.t.Fatalf("claim at +3h returned %s, want the high-priority %s", c.ID, hi.ID)
	}
	s.claimNone(at(hour+min1), "job scheduled for +2h claimed at +1h1m after a claim at +3h")
	if c := s.claimOne("w1", at(2*hour), 30*sec); c.ID != later.ID {
		s.t.Fatalf("claim at +2h returned %s, want %s", c.ID, later.ID)
	}
}

func testClaimOrder(s *suite) {
	// Created in an order unrelated to the claim order.
	low := s.job("t", withPriority(-1))
	b := s.job("t", withPriority(5), scheduledAt(at(2*sec)))
	mid := s.job("t", withPriority(0))
	x1 := s.job("t", withPriority(5), scheduledAt(at(sec)))
	x2 := s.job("t", withPriority(5), scheduledAt(at(sec)))
	future := s.job("t", withPriority(10), scheduledAt(at(hour)))
	// Enqueue in yet another order.
	s.enqueue(future, x2, mid, low, b, x1)

	want := []string{x1.ID, x2.ID, b.ID, mid.ID, low.ID}
	var got []string
	for range want {
		got = append(got, s.claimOne("w1", at(10*sec), 30*sec).ID)
	}
	if !slices.Equal(got, want) {
		s.t.Fatalf("claim order (one at a time) = %v, want %v (priority desc, then run-at, then id)", got, want)
	}
	s.claimNone(at(10*sec), "job scheduled for +1h")

	// A batch claim takes the top of the same order.
	s2 := s.jobs(4, "u", withPriority(1))
	top := s.job("u", withPriority(9))
	s.enqueue(append(s2, top)...)
	if got, want := idsOf(s.claimAt(at(10*sec), 3)), sorted(top.ID, s2[0].ID, s2[1].ID); !slices.Equal(got, want) {
		s.t.Fatalf("batch claim of 3 = %v, want %v", got, want)
	}
}

func testClaimQueues(s *suite) {
	var byQueue = map[string][]string{}
	for _, q := range []string{"q1", "q2", "q3"} {
		for _, j := range s.jobs(2, "t", onQueue(q)) {
			s.enqueue(j)
			byQueue[q] = append(byQueue[q], j.ID)
		}
	}
	got := s.claim(backend.ClaimRequest{Queues: []string{"q3", "q1"}, Limit: 10, Now: at(0)})
	if want := sorted(append(slices.Clone(byQueue["q1"]), byQueue["q3"]...)...); !slices.Equal(idsOf(got), want) {
		s.t.Fatalf("claim from q1,q3 = %v, want %v", idsOf(got), want)
	}
	for _, j := range got {
		if j.Queue != "q1" && j.Queue != "q3" {
			s.t.Fatalf("claim from q1,q3 returned job %s of queue %s", j.ID, j.Queue)
		}
	}
	if got := s.claim(backend.ClaimRequest{Queues: []string{"nope"}, Limit: 10, Now: at(0)}); len(got) != 0 {
		s.t.Fatalf("claim from an unknown queue returned %v", idsOf(got))
	}
	if got := idsOf(s.claimAt(at(0), 10)); !slices.Equal(got, sorted(byQueue["q2"]...)) {
		s.t.Fatalf("claim from all queues (Queues empty) = %v, want the q2 jobs %v", got, byQueue["q2"])
	}
}

func testClaimLimit(s *suite) {
	s.enqueue(s.jobs(10, "t")...)
	for i, want := range []int{3, 3, 1} {
		limit := 3
		if i == 2 {
			limit = 1
		}
		if got := s.claimAt(at(0), limit); len(got) != want {
			s.t.Fatalf("claim %d with Limit %d returned %d jobs, want %d", i+1, limit, len(got), want)
		}
	}
	if got := s.claimAt(at(0), 100); len(got) != 3 {
		s.t.Fatalf("final claim with Limit 100 returned %d jobs, want the 3 left", len(got))
	}
	s.claimNone(at(0), "all 10 jobs already claimed")
}

func testClaimSetsLease(s *suite) {
	j := s.job("t", onQueue("q"), withPriority(3))
	s.enqueue(j)
	c := s.claimOne("worker-7", at(5*sec), 30*sec)
	want := cloneJob(j)
	want.State = backend.StateRunning
	want.Attempt = 1
	want.StartedAt = at(5 * sec)
	want.LeaseOwner = "worker-7"
	want.LeaseUntil = at(35 * sec)
	want.LeaseToken = c.LeaseToken
	if c.LeaseToken <= 0 {
		s.t.Errorf("claimed job's LeaseToken = %d, want > 0 (greater than the enqueued job's 0)", c.LeaseToken)
	}
	if d := claimedDiff(want, c); d != "" {
		s.t.Errorf("job returned by Claim (-want +got):\n%s", d)
	}
	if d := jobDiff(want, s.get(j.ID)); d != "" {
		s.t.Errorf("Get after Claim (-want +got):\n%s", d)
	}
}

// testClaimAfterRetry claims a job again after an attempt that left a result,
// an error chain, a panic stack and history, with a unique key: the claimed
// job carries its history, and every other field either as stored or (those
// a claim may leave out) empty.
func testClaimAfterRetry(s *suite) {
	j := s.job("t", withAttempts(3))
	j.UniqueKey, j.UniqueUntil = "k", at(hour)
	s.enqueue(j)
	c := s.claimOne("w1", at(0), 30*sec)
	o := outcome(c, backend.StateRetrying, at(sec))
	o.RunAt = at(2 * sec)
	o.Result = []byte{0xa1, 'x'}
	o.PanicStack = "goroutine 1 [running]:"
	s.completeOK(o)
	c2 := s.claimOne("w2", at(3*sec), 30*sec)
	want := s.get(j.ID)
	if want.State != backend.StateRunning || len(want.Attempts) != 1 || want.Error == "" || len(want.Result) == 0 {
		s.t.Fatalf("stored job after the second claim: %+v, want running with the first attempt's history, error and result", want)
	}
	if len(c2.Attempts) != 1 {
		s.t.Errorf("claimed job has %d attempts in its history, want the 1 stored", len(c2.Attempts))
	}
	if d := claimedDiff(want, c2); d != "" {
		s.t.Errorf("job returned by the second Claim (-want +got):\n%s", d)
	}
}

// claimedDiff compares a job returned by Claim with the stored record: the
// fields a claim may leave out (Result, Error, ErrorChain, PanicStack,
// UniqueKey, UniqueUntil) must be empty or as stored.
func claimedDiff(want, got *backend.Job) string {
	w := cloneJob(want)
	if len(got.Result) == 0 {
		w.Result = nil
	}
	if got.Error == "" {
		w.Error = ""
	}
	if len(got.ErrorChain) == 0 {
		w.ErrorChain = nil
	}
	if got.PanicStack == "" {
		w.PanicStack = ""
	}
	if got.UniqueKey == "" && got.UniqueUntil.IsZero() {
		w.UniqueKey, w.UniqueUntil = "", time.Time{}
	}
	return jobDiff(w, got)
}

func testTokenIncreases(s *suite) {
	j := s.job("t", withAttempts(10))
	s.enqueue(j)
	c1 := s.claimOne("w1", at(0), 30*sec)
	o := outcome(c1, backend.StateRetrying, at(sec))
	o.RunAt = at(min1)
	s.completeOK(o)
	c2 := s.claimOne("w2", at(min1), 30*sec)
	if c2.LeaseToken <= c1.LeaseToken {
		s.t.Fatalf("token after retry %d is not greater than the first %d", c2.LeaseToken, c1.LeaseToken)
	}
	if n := s.recoverExpired(at(min1 + 31*sec)); n != 1 {
		s.t.Fatalf("RecoverExpired recovered %d jobs, want 1", n)
	}
	c3 := s.claimOne("w3", at(min1+31*sec), 30*sec)
	if c3.LeaseToken <= c2.LeaseToken {
		s.t.Fatalf("token after recovery %d is not greater than the previous %d", c3.LeaseToken, c2.LeaseToken)
	}
	s.release(c3.Lease())
	c4 := s.claimOne("w4", at(min1+32*sec), 30*sec)
	if c4.LeaseToken <= c3.LeaseToken {
		s.t.Fatalf("token after release %d is not greater than the previous %d", c4.LeaseToken, c3.LeaseToken)
	}
}

func cloneJob(j *backend.Job) *backend.Job {
	c := *j
	c.Args = slices.Clone(j.Args)
	c.Result = slices.Clone(j.Result)
	c.ErrorChain = slices.Clone(j.ErrorChain)
	c.Attempts = slices.Clone(j.Attempts)
	c.Meta = maps.Clone(j.Meta)
	return &c
}

func testClaimLimitZero(s *suite) {
	jobs := s.jobs(3, "t")
	s.enqueue(jobs...)
	for _, limit := range []int{0, -1} {
		got, err := s.b.Claim(s.t.Context(), backend.ClaimRequest{Limit: limit, Worker: "w1", Now: at(0), LeaseFor: 30 * sec})
		if err != nil {
			s.t.Fatalf("Claim with Limit %d: %v", limit, err)
		}
		if len(got) != 0 {
			s.t.Fatalf("Claim with Limit %d returned %v, want no job", limit, idsOf(got))
		}
	}
	for _, j := range jobs {
		s.wantState(j.ID, backend.StateQueued, "after claims with Limit 0 and -1")
	}
	if got := s.claimAt(at(0), 3); len(got) != 3 {
		s.t.Fatalf("Claim with Limit 3 returned %d jobs, want 3", len(got))
	}
}

func testClaimTasks(s *suite) {
	type key struct{ task, queue string }
	ids := map[key][]string{}
	var all []*backend.Job
	for i, task := range []string{"A", "B", "C", "A", "B", "C", "A", "B", "C"} {
		q := []string{"q1", "q2", "q3"}[i/3]
		j := s.job(task, onQueue(q), withPriority(i%4))
		all = append(all, j)
		ids[key{task, q}] = append(ids[key{task, q}], j.ID)
	}
	// A scheduled job of A comes in once it is due, claims by task included.
	late := s.job("A", onQueue("q2"), scheduledAt(at(min1)))
	all = append(all, late)
	s.enqueue(all...)
	byTask := func(tasks, queues []string) []string {
		var out []string
		for k, v := range ids {
			if slices.Contains(tasks, k.task) && (len(queues) == 0 || slices.Contains(queues, k.queue)) {
				out = append(out, v...)
			}
		}
		slices.Sort(out)
		return out
	}
	check := func(req backend.ClaimRequest, want []string) {
		s.t.Helper()
		req.Limit, req.Now = 100, at(0)
		got := s.claim(req)
		if !slices.Equal(idsOf(got), want) {
			s.t.Fatalf("Claim(tasks %v, queues %v) = %v, want %v", req.Tasks, req.Queues, idsOf(got), want)
		}
		for _, j := range got {
			if !slices.Contains(req.Tasks, j.Task) {
				s.t.Fatalf("Claim(tasks %v) returned job %s of task %s", req.Tasks, j.ID, j.Task)
			}
		}
	}
	check(backend.ClaimRequest{Tasks: []string{"nope"}}, nil)
	// Every job of A whatever its queue, none of B or C.
	check(backend.ClaimRequest{Tasks: []string{"A"}}, byTask([]string{"A"}, nil))
	// Tasks and queues together.
	check(backend.ClaimRequest{Tasks: []string{"B", "C"}, Queues: []string{"q1", "q3"}}, byTask([]string{"B", "C"}, []string{"q1", "q3"}))
	// Many tasks (more than a backend may merge one by one): B of q2 is what is left.
	many := []string{"B"}
	for i := range 40 {
		many = append(many, fmt.Sprintf("task-%02d", i))
	}
	check(backend.ClaimRequest{Tasks: many, Queues: []string{"q2"}}, byTask([]string{"B"}, []string{"q2"}))
	if got := s.claimAt(at(0), 100); !slices.Equal(idsOf(got), byTask([]string{"C"}, []string{"q2"})) {
		s.t.Fatalf("Claim of every task = %v, want what is left: C of q2 %v", idsOf(got), byTask([]string{"C"}, []string{"q2"}))
	}
	if got := s.claim(backend.ClaimRequest{Tasks: []string{"B", "C"}, Limit: 10, Now: at(min1)}); len(got) != 0 {
		s.t.Fatalf("Claim of B and C at +1m = %v, want none (only A's scheduled job is due)", idsOf(got))
	}
	if got := s.claim(backend.ClaimRequest{Tasks: []string{"A"}, Limit: 10, Now: at(min1)}); !slices.Equal(idsOf(got), []string{late.ID}) {
		s.t.Fatalf("Claim of A at +1m = %v, want the scheduled %s", idsOf(got), late.ID)
	}

	// Across tasks and queues a claim by task keeps the claim order.
	lo := s.job("X", onQueue("q1"), withPriority(1))
	hi := s.job("Y", onQueue("q2"), withPriority(7))
	mid := s.job("X", onQueue("q3"), withPriority(4))
	early := s.job("Y", onQueue("q1"), withPriority(4), func(j *backend.Job) { j.RunAt = at(-sec) })
	other := s.job("Z", onQueue("q1"), withPriority(9))
	s.enqueue(lo, hi, mid, early, other)
	var order []string
	for range 4 {
		got := s.claim(backend.ClaimRequest{Tasks: []string{"Y", "X"}, Limit: 1, Now: at(hour)})
		if len(got) != 1 {
			s.t.Fatalf("Claim of X and Y (one at a time) returned %v after %v", idsOf(got), order)
		}
		order = append(order, got[0].ID)
	}
	if want := []string{hi.ID, early.ID, mid.ID, lo.ID}; !slices.Equal(order, want) {
		s.t.Fatalf("claim order of X and Y = %v, want %v (priority desc, then run-at, then id)", order, want)
	}
	s.wantState(other.ID, backend.StateQueued, "a job of a task not asked for")
}

// countdownCtx is a context that is cancelled by the n-th call of its Err or
// Done method (0: by the first): it fails an operation at each point where
// the backend looks at its context, one point per run.
type countdownCtx struct {
	context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	left   int
}

func newCountdown(parent context.Context, n int) *countdownCtx {
	ctx, cancel := context.WithCancel(parent)
	return &countdownCtx{Context: ctx, cancel: cancel, left: n}
}

func (c *countdownCtx) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left == 0 {
		c.cancel()
		return
	}
	c.left--
}

func (c *countdownCtx) Done() <-chan struct{} { c.tick(); return c.Context.Done() }
func (c *countdownCtx) Err() error            { c.tick(); return c.Context.Err() }

// testEnqueueAllOrNothing enqueues one batch (plain jobs, scheduled ones,
// unique keys new, repeated and already taken) with a context cancelled at a
// later point each run: every run either fails and stores none of the batch,
// or succeeds and stores all of it; a failed batch can be enqueued again.
func testEnqueueAllOrNothing(s *suite) {
	holder := s.job("t", unique("taken", hour))
	s.enqueue(holder)
	var batch []*backend.Job
	for i := range 12 {
		var mods []func(*backend.Job)
		switch i % 4 {
		case 1:
			mods = append(mods, scheduledAt(at(min1)), onQueue("later"))
		case 2:
			mods = append(mods, unique(fmt.Sprintf("k%d", i%3), hour))
		case 3:
			mods = append(mods, unique("taken", hour), onQueue("q2"))
		}
		batch = append(batch, s.job("t", mods...))
	}
	stored := func() []string {
		var ids []string
		for _, j := range batch {
			if _, err := s.b.Get(s.t.Context(), j.ID); err == nil {
				ids = append(ids, j.ID)
			} else if !isErr(err, backend.ErrNotFound) {
				s.t.Fatalf("Get(%s): %v", j.ID, err)
			}
		}
		return ids
	}
	for n := 0; ; n++ {
		if n > 10_000 {
			s.t.Fatalf("Enqueue still fails after %d context checks", n)
		}
		res, err := s.b.Enqueue(newCountdown(s.t.Context(), n), batch)
		if err != nil {
			if !isErr(err, context.Canceled) {
				s.t.Fatalf("Enqueue cancelled at context check %d failed with %v, want an error wrapping context.Canceled (a failed batch must be enqueueable again)", n, err)
			}
			if got := stored(); len(got) != 0 {
				s.t.Fatalf("Enqueue cancelled at context check %d failed (%v) but stored %d of %d jobs: %v", n, err, len(got), len(batch), got)
			}
			continue
		}
		var want []string
		for i, r := range res {
			switch {
			case i%4 == 3 && (!r.Duplicate || r.ID != holder.ID):
				s.t.Fatalf("job %d with the taken key: %+v, want Duplicate of %s", i, r, holder.ID)
			case i%4 != 3 && (r.Duplicate || r.ID != batch[i].ID):
				s.t.Fatalf("job %d: %+v, want new job %s", i, r, batch[i].ID)
			case !r.Duplicate:
				want = append(want, r.ID)
			}
		}
		if got := stored(); !slices.Equal(sorted(got...), sorted(want...)) {
			s.t.Fatalf("Enqueue succeeded after %d context checks but stored %v, want %v", n, got, want)
		}
		s.t.Logf("Enqueue failed with nothing stored when cancelled at each of its first %d context checks", n)
		break
	}
	if got := s.claim(backend.ClaimRequest{Limit: 100, Now: at(min1)}); len(got) != 1+9 {
		s.t.Fatalf("after the batch, %d jobs are claimable, want 10 (the holder and 9 new)", len(got))
	}
}
