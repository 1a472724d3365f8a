package redis

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// topologies runs f on a standalone Redis and, unless -short, on a 3-node
// Cluster (each test its own); open returns a fresh backend with opts.
func topologies(t *testing.T, f func(t *testing.T, open func(opts ...Option) *Backend)) {
	t.Run("standalone", func(t *testing.T) {
		srv := redistest.Start(t)
		f(t, func(opts ...Option) *Backend { return openTest(t, srv, opts...) })
	})
	t.Run("cluster", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts a 3-node Redis Cluster")
		}
		cl := redistest.StartCluster(t)
		f(t, func(opts ...Option) *Backend {
			opts = append([]Option{WithCluster(true), WithPrefix(fmt.Sprint("c", prefixes.Add(1)))}, opts...)
			b, err := Open(cl.URL(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		})
	})
}

// finishTask claims the one ready job of task at now and completes it with
// state and result; it returns its id.
func finishTask(t *testing.T, b *Backend, task string, now time.Time, state backend.State, result []byte) string {
	t.Helper()
	ctx := t.Context()
	jobs, err := b.Claim(ctx, backend.ClaimRequest{Tasks: []string{task}, Limit: 1, Worker: "w", Now: now, LeaseFor: time.Hour})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim %s: %d jobs, %v; want 1", task, len(jobs), err)
	}
	j := jobs[0]
	o := backend.Outcome{Lease: j.Lease(), State: state, FinishedAt: now, Result: result,
		Attempt: backend.Attempt{Number: j.Attempt, StartedAt: now, FinishedAt: now, Worker: "w", Outcome: string(state)}}
	errs, err := b.Complete(ctx, []backend.Outcome{o})
	if err != nil || errs[0] != nil {
		t.Fatalf("complete %s: %v, %v", j.ID, err, errs)
	}
	return j.ID
}

// exists reports whether job id has a record.
func exists(t *testing.T, b *Backend, id string) bool {
	t.Helper()
	_, err := b.Get(t.Context(), id)
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// parkedCount returns how many jobs queue q has parked (donewf).
func parkedCount(t *testing.T, b *Backend, q string) int64 {
	t.Helper()
	n, err := b.c.ZCard(t.Context(), b.qp(q)+"donewf").Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fanIn enqueues workflow wfID: roots a and b (tasks "a" and "b", storing
// their results) and step m (task "m", queue mq) taking both results; it
// returns the jobs.
func fanIn(t *testing.T, b *Backend, n uint64, mq string, now time.Time) (a, p, m *backend.Job) {
	t.Helper()
	a = backendtest.NewJob(backendtest.ID(n), "a", now)
	p = backendtest.NewJob(backendtest.ID(n+1), "b", now)
	m = backendtest.NewJob(backendtest.ID(n+2), "m", now)
	a.StoreResult, p.StoreResult = true, true
	m.State, m.Queue, m.Args = backend.StatePending, mq, []byte{0x91, 0x07}
	wf := &backend.Workflow{ID: backendtest.ID(n + 3), CreatedAt: now, Steps: []backend.Step{
		{Job: a}, {Job: p}, {Job: m, Parents: []backend.Edge{{Parent: a.ID}, {Parent: p.ID}}, Input: backend.InputResults},
	}}
	if err := b.EnqueueWorkflow(t.Context(), wf); err != nil {
		t.Fatal(err)
	}
	return a, p, m
}

// TestRetentionAtCompletionKeepsWaitedForParent: with at-completion
// retention keeping one finished job per queue, a fan-in's first parent
// outlives the completions of other jobs of its queue (which delete every
// other finished job but the newest) while the fan-in waits for the second
// parent; the fan-in is then released with both results, not cancelled, and
// the parents are deleted by retention like any finished job.
func TestRetentionAtCompletionKeepsWaitedForParent(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		b := open(WithRetention(1, 0))
		ctx := t.Context()
		t0 := backendtest.Epoch()
		a, p, m := fanIn(t, b, 1, "other", t0)
		var others []*backend.Job
		for i := range 3 {
			others = append(others, backendtest.NewJob(backendtest.ID(uint64(10+i)), "x", t0))
		}
		if _, err := b.Enqueue(ctx, others); err != nil {
			t.Fatal(err)
		}
		finishTask(t, b, "a", t0.Add(time.Second), backend.StateSucceeded, []byte{0x0a})
		var last string
		for i := range others {
			last = finishTask(t, b, "x", t0.Add(time.Duration(2+i)*time.Second), backend.StateSucceeded, nil)
		}
		if !exists(t, b, a.ID) {
			t.Fatal("retention deleted the parent that the pending fan-in waits for")
		}
		for _, j := range others {
			if j.ID != last && exists(t, b, j.ID) {
				t.Errorf("finished job %s outlived retention (keep 1): not the newest", j.ID)
			}
		}
		finishTask(t, b, "b", t0.Add(10*time.Second), backend.StateSucceeded, []byte{0x0b})
		got, err := b.Get(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != backend.StateQueued {
			t.Fatalf("fan-in after both parents succeeded: %s (%s), want queued", got.State, got.Error)
		}
		if want := []byte{0x92, 0x92, 0x0a, 0x0b, 0x07}; !bytes.Equal(got.Args, want) {
			t.Fatalf("fan-in args = % x, want % x (both parents' results)", got.Args, want)
		}
		// Released: the parents are no longer parked, and retention takes
		// them like any finished job: at the release the older one (a) goes,
		// the newest (p) stays until the next completion of its queue.
		if n := parkedCount(t, b, "default"); n != 0 {
			t.Fatalf("%d jobs still parked after the release", n)
		}
		if exists(t, b, a.ID) || exists(t, b, last) {
			t.Fatalf("after the release: parent a kept %v, job %s kept %v; want both deleted (keep 1)",
				exists(t, b, a.ID), last, exists(t, b, last))
		}
		if !exists(t, b, p.ID) {
			t.Fatal("the newest finished job (parent b) was deleted: keep is 1")
		}
		more := backendtest.NewJob(backendtest.ID(20), "x", t0)
		if _, err := b.Enqueue(ctx, []*backend.Job{more}); err != nil {
			t.Fatal(err)
		}
		finishTask(t, b, "x", t0.Add(11*time.Second), backend.StateSucceeded, nil)
		if exists(t, b, p.ID) {
			t.Fatal("parent b outlived the next completion's retention (keep 1)")
		}
		if !exists(t, b, m.ID) {
			t.Fatal("the released fan-in is gone")
		}
	})
}

// TestTrimEndedSweepsParked: a parent left parked although no step waits
// for it any more (a crash between its child's settle and the unpark) is
// unparked by TrimEnded's sweep and then trimmed. Before, while the child
// waits, retention keeps it, also over given ids (PurgeEnded and TrimEnded
// with f.IDs), and does not count it (an older job is kept by keep 1), and
// Stats, List and Get show it as usual.
func TestTrimEndedSweepsParked(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		b := open()
		ctx := t.Context()
		t0 := backendtest.Epoch()
		a, p, m := fanIn(t, b, 1, "other", t0)
		if _, err := b.Enqueue(ctx, []*backend.Job{backendtest.NewJob(backendtest.ID(10), "x", t0)}); err != nil {
			t.Fatal(err)
		}
		x := finishTask(t, b, "x", t0, backend.StateSucceeded, nil)
		finishTask(t, b, "a", t0.Add(time.Second), backend.StateSucceeded, []byte{0x0a})
		if n := parkedCount(t, b, "default"); n != 1 {
			t.Fatalf("parked after the first parent ended: %d, want 1", n)
		}
		for _, f := range []backend.PurgeFilter{{}, {IDs: []string{a.ID, x}}} {
			if n, err := b.TrimEnded(ctx, 1, f); err != nil || n != 0 {
				t.Fatalf("TrimEnded(1, %v) while the fan-in waits = %d, %v; want 0 (the parked parent is not counted)", f.IDs, n, err)
			}
		}
		only := backend.PurgeFilter{IDs: []string{a.ID}}
		if n, err := b.PurgeEnded(ctx, t0.Add(time.Hour), only); err != nil || n != 0 {
			t.Fatalf("PurgeEnded(ids) while the fan-in waits = %d, %v; want 0", n, err)
		}
		if n, err := b.TrimEnded(ctx, 0, only); err != nil || n != 0 {
			t.Fatalf("TrimEnded(0, ids) while the fan-in waits = %d, %v; want 0", n, err)
		}
		if n, err := b.TrimEnded(ctx, 0, backend.PurgeFilter{States: []backend.State{backend.StateSucceeded}}); err != nil || n != 1 || exists(t, b, x) {
			t.Fatalf("TrimEnded(0, succeeded) while the fan-in waits = %d, %v; want x deleted, only", n, err)
		}
		got, err := b.Get(ctx, a.ID)
		if err != nil || got.State != backend.StateSucceeded || !bytes.Equal(got.Result, []byte{0x0a}) {
			t.Fatalf("Get(parked parent) = %+v, %v", got, err)
		}
		stats, err := b.Stats(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(stats, backend.QueueStat{Queue: "default", State: backend.StateSucceeded, Count: 1}) {
			t.Fatalf("Stats = %+v, want 1 succeeded on default", stats)
		}
		list, err := b.List(ctx, backend.ListFilter{States: []backend.State{backend.StateSucceeded}})
		if err != nil || len(list) != 1 || list[0].ID != a.ID {
			t.Fatalf("List(succeeded) = %v, %v; want the parked parent", list, err)
		}
		// The crash: the fan-in ends (cancelled here, as a process would
		// settle it) by the compare-and-set alone, without the unpark.
		if err := b.cancel(ctx, m.ID, t0.Add(2*time.Second), "", "gone"); err != nil {
			t.Fatal(err)
		}
		if n := parkedCount(t, b, "default"); n != 1 {
			t.Fatalf("parked after the simulated crash: %d, want 1", n)
		}
		n, err := b.TrimEnded(ctx, 0, backend.PurgeFilter{Queue: "default"})
		if err != nil || n != 1 {
			t.Fatalf("TrimEnded(0, default) after the crash = %d, %v; want the parent deleted", n, err)
		}
		if exists(t, b, a.ID) || parkedCount(t, b, "default") != 0 {
			t.Fatal("the swept parent is still there")
		}
		// The other parent was queued at the crash, so the sweep (which
		// reads parked jobs only) left its mark: it parks as it ends, and
		// the next sweep unparks it.
		finishTask(t, b, "b", t0.Add(3*time.Second), backend.StateSucceeded, nil)
		if n := parkedCount(t, b, "default"); n != 1 {
			t.Fatalf("parked after parent b ended: %d, want 1", n)
		}
		if n, err := b.TrimEnded(ctx, 0, backend.PurgeFilter{}); err != nil || n != 2 || exists(t, b, p.ID) {
			t.Fatalf("TrimEnded(0) = %d, %v; want parent b and the cancelled fan-in deleted", n, err)
		}
	})
}

// TestRetentionChainCancelled: in a chain a -> b -> c whose root fails,
// the middle step (a parent itself, cancelled by a compare-and-set, not a
// completion) parks, and every parent is unparked once the cascade ended:
// retention then takes all three and nothing stays parked.
func TestRetentionChainCancelled(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		b := open()
		ctx := t.Context()
		t0 := backendtest.Epoch()
		a := backendtest.NewJob(backendtest.ID(1), "a", t0)
		mid := backendtest.NewJob(backendtest.ID(2), "b", t0)
		c := backendtest.NewJob(backendtest.ID(3), "c", t0)
		mid.State, c.State = backend.StatePending, backend.StatePending
		wf := &backend.Workflow{ID: backendtest.ID(4), CreatedAt: t0, Steps: []backend.Step{
			{Job: a}, {Job: mid, Parents: []backend.Edge{{Parent: a.ID}}}, {Job: c, Parents: []backend.Edge{{Parent: mid.ID}}},
		}}
		if err := b.EnqueueWorkflow(ctx, wf); err != nil {
			t.Fatal(err)
		}
		finishTask(t, b, "a", t0.Add(time.Second), backend.StateFailed, nil)
		for _, id := range []string{mid.ID, c.ID} {
			if got, err := b.Get(ctx, id); err != nil || got.State != backend.StateCancelled {
				t.Fatalf("step %s after the root failed: %v, %v; want cancelled", id, got, err)
			}
		}
		if n := parkedCount(t, b, "default"); n != 0 {
			t.Fatalf("%d jobs parked after the cascade", n)
		}
		if n, err := b.PurgeEnded(ctx, t0.Add(time.Hour), backend.PurgeFilter{}); err != nil || n != 3 {
			t.Fatalf("PurgeEnded = %d, %v; want the three steps", n, err)
		}
	})
}

// checkIndexes asserts, for every job of queue q (read from its s:<state>
// sets, which works on a Cluster): an ended job is in exactly one of done
// and donewf, in donewf exactly when it carries wp; a job that has not
// ended is in neither; done and donewf hold no member without an ended
// record.
func checkIndexes(t *testing.T, b *Backend, q string) {
	t.Helper()
	ctx := t.Context()
	p := b.qp(q)
	in := map[string]string{}
	for key, mark := range map[string]string{"done": "D", "donewf": "W"} {
		ms, err := b.c.ZRange(ctx, p+key, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			in[m] += mark
		}
	}
	seen := map[string]bool{}
	for _, st := range backend.AllStates() {
		ids, err := b.c.ZRange(ctx, p+"s:"+string(st), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			f, err := b.c.HMGet(ctx, p+"j:"+id, "st", "fa", "wp").Result()
			if err != nil {
				t.Fatal(err)
			}
			rst, _ := f[0].(string)
			fa, _ := f[1].(string)
			wp, _ := f[2].(string)
			m := fa + id
			if !backend.State(rst).Final() {
				if in[m] != "" {
					t.Errorf("queue %s job %s (%s): in ended index %q", q, id, rst, in[m])
				}
				continue
			}
			seen[m] = true
			want := "D"
			if wp != "" {
				want = "W"
			}
			if in[m] != want {
				t.Errorf("queue %s job %s (%s, wp=%q): indexes %q, want %q", q, id, rst, wp, in[m], want)
			}
		}
	}
	for m, where := range in {
		if !seen[m] {
			t.Errorf("queue %s: member %s in %q has no ended record", q, m, where)
		}
	}
}

// claimOne claims the one ready job of task at now with lease.
func claimOne(t *testing.T, b *Backend, task string, now time.Time, lease time.Duration) *backend.Job {
	t.Helper()
	jobs, err := b.Claim(t.Context(), backend.ClaimRequest{Tasks: []string{task}, Limit: 1, Worker: "w", Now: now, LeaseFor: lease})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim %s: %d jobs, %v; want 1", task, len(jobs), err)
	}
	return jobs[0]
}

// wantState fails t unless job id is in state st.
func wantState(t *testing.T, b *Backend, id string, st backend.State) {
	t.Helper()
	j, err := b.Get(t.Context(), id)
	if err != nil || j.State != st {
		t.Fatalf("job %s: %+v, %v; want %s", id, j, err, st)
	}
}

// wantParked fails t unless queue q has n parked jobs.
func wantParked(t *testing.T, b *Backend, q string, n int64, when string) {
	t.Helper()
	if got := parkedCount(t, b, q); got != n {
		t.Fatalf("parked on %s %s: %d, want %d", q, when, got, n)
	}
}

// TestCancelPendingStepUnparks: Cancel of the pending fan-in unparks its
// ended parent (Cancel's own unpark: no step of the fan-in's is settled).
func TestCancelPendingStepUnparks(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		b := open()
		t0 := backendtest.Epoch()
		_, _, m := fanIn(t, b, 1, "other", t0)
		finishTask(t, b, "a", t0.Add(time.Second), backend.StateSucceeded, []byte{1})
		wantParked(t, b, "default", 1, "after parent a ended")
		if err := b.Cancel(t.Context(), m.ID, t0.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		wantParked(t, b, "default", 0, "after Cancel(fan-in)")
		checkIndexes(t, b, "default")
		checkIndexes(t, b, "other")
	})
}

// TestCancelReadsStepsOnce: Cancel reads wfstep once, for a plain job and
// for a workflow step alike (the unpark of the step's parents reuses what
// the settle of its children read).
func TestCancelReadsStepsOnce(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		b := open()
		ctx := t.Context()
		t0 := backendtest.Epoch()
		_, _, m := fanIn(t, b, 1, "other", t0)
		plain := backendtest.NewJob(backendtest.ID(10), "x", t0)
		if _, err := b.Enqueue(ctx, []*backend.Job{plain}); err != nil {
			t.Fatal(err)
		}
		reads := &roundTrips{match: func(a []any) bool {
			return len(a) > 1 && a[0] == "hmget" && a[1] == b.wfStepKey()
		}}
		b.c.AddHook(reads)
		for _, id := range []string{plain.ID, m.ID} {
			reads.n.Store(0)
			if err := b.Cancel(ctx, id, t0.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			if got := reads.n.Load(); got != 1 {
				t.Errorf("Cancel(%s) read wfstep %d times, want 1", id, got)
			}
		}
	})
}

// TestCancelWorkflowUnparks: CancelWorkflow with an ended parent (a), a
// running one (b) and the pending fan-in cancels b and the fan-in and
// unparks a (CancelWorkflow's own unpark: the fan-in is cancelled before
// its parent b, so no settle touches it).
func TestCancelWorkflowUnparks(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		b := open()
		t0 := backendtest.Epoch()
		a, p, m := fanIn(t, b, 1, "other", t0)
		finishTask(t, b, "a", t0.Add(time.Second), backend.StateSucceeded, []byte{1})
		claimOne(t, b, "b", t0, time.Hour)
		n, err := b.CancelWorkflow(t.Context(), backendtest.ID(4), t0.Add(2*time.Second))
		if err != nil || n != 2 {
			t.Fatalf("CancelWorkflow = %d, %v; want 2", n, err)
		}
		wantState(t, b, p.ID, backend.StateCancelled)
		wantState(t, b, m.ID, backend.StateCancelled)
		wantState(t, b, a.ID, backend.StateSucceeded)
		wantParked(t, b, "default", 0, "after CancelWorkflow")
		checkIndexes(t, b, "default")
		checkIndexes(t, b, "other")
	})
}

// TestQuarantinedParentParks: a parent that Claim quarantines (damaged
// record) parks like any ended parent, so TrimEnded keeps it while the
// fan-in waits; RecoverExpired's settle of every pending step cancels the
// fan-in and unparks it, and TrimEnded then takes it.
func TestQuarantinedParentParks(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		b := open()
		ctx := t.Context()
		t0 := backendtest.Epoch()
		a, _, m := fanIn(t, b, 1, "other", t0)
		if err := b.c.HSet(ctx, b.qp("default")+"j:"+a.ID, "at", "x").Err(); err != nil {
			t.Fatal(err)
		}
		jobs, err := b.Claim(ctx, backend.ClaimRequest{Tasks: []string{"a"}, Limit: 1, Worker: "w", Now: t0, LeaseFor: time.Hour})
		if err != nil || len(jobs) != 0 {
			t.Fatalf("claim of the damaged parent: %v, %v; want none", jobs, err)
		}
		wantState(t, b, a.ID, backend.StateQuarantined)
		wantParked(t, b, "default", 1, "after the parent was quarantined")
		checkIndexes(t, b, "default")
		if n, err := b.TrimEnded(ctx, 0, backend.PurgeFilter{}); err != nil || n != 0 {
			t.Fatalf("TrimEnded(0) while the fan-in waits = %d, %v; want 0", n, err)
		}
		if _, err := b.RecoverExpired(ctx, t0.Add(time.Minute), 0); err != nil {
			t.Fatal(err)
		}
		wantState(t, b, m.ID, backend.StateCancelled)
		wantParked(t, b, "default", 0, "after RecoverExpired cancelled the fan-in")
		checkIndexes(t, b, "default")
		checkIndexes(t, b, "other")
		if n, err := b.TrimEnded(ctx, 0, backend.PurgeFilter{Queue: "default"}); err != nil || n != 1 || exists(t, b, a.ID) {
			t.Fatalf("TrimEnded(0, default) = %d, %v; want the quarantined parent deleted", n, err)
		}
	})
}

// fakeClock returns an option setting the clock retention by age reads to
// one at t0, and a func that sets it.
func fakeClock(t0 time.Time) (Option, func(time.Time)) {
	var mu sync.Mutex
	now := t0
	opt := WithClock(func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	})
	return opt, func(t time.Time) {
		mu.Lock()
		now = t
		mu.Unlock()
	}
}

// TestRetentionSweepsParked: a parent left parked by a crash between its
// child's settle and the unpark (the fan-in cancelled by the
// compare-and-set alone) is unparked by the sweep of PurgeEnded, and of
// Prune (retention by age on a fake clock: at the completions nothing is
// old enough), and deleted with the cancelled fan-in. (TrimEnded's:
// TestTrimEndedSweepsParked.)
func TestRetentionSweepsParked(t *testing.T) {
	t0 := backendtest.Epoch()
	for name, run := range map[string]func(b *Backend) (int, error){
		"PurgeEnded": func(b *Backend) (int, error) {
			return b.PurgeEnded(t.Context(), t0.Add(time.Hour), backend.PurgeFilter{})
		},
		"Prune": func(b *Backend) (int, error) { return b.Prune(t.Context()) },
	} {
		t.Run(name, func(t *testing.T) {
			topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
				clock, setClock := fakeClock(t0)
				b := open(WithRetention(0, time.Hour), clock)
				a, _, m := fanIn(t, b, 1, "other", t0)
				finishTask(t, b, "a", t0.Add(time.Second), backend.StateSucceeded, []byte{1})
				if err := b.cancel(t.Context(), m.ID, t0.Add(2*time.Second), "", "gone"); err != nil {
					t.Fatal(err)
				}
				wantParked(t, b, "default", 1, "after the simulated crash")
				setClock(t0.Add(10 * time.Hour))
				if n, err := run(b); err != nil || n != 2 {
					t.Fatalf("%s = %d, %v; want 2 (parent a and the cancelled fan-in)", name, n, err)
				}
				if exists(t, b, a.ID) {
					t.Fatalf("the parent no step waits for outlived %s", name)
				}
				wantParked(t, b, "default", 0, "after "+name)
				checkIndexes(t, b, "default")
			})
		})
	}
}

// TestSweepSkipsUnreadableGraph: parked parents of workflows whose graph
// cannot be read (bytes that do not decode; a key of another type) stay
// parked, and TrimEnded, PurgeEnded and Prune go on with the rest: each
// deletes its ended job of another queue, without an error.
func TestSweepSkipsUnreadableGraph(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		t0 := backendtest.Epoch()
		clock, setClock := fakeClock(t0)
		b := open(WithRetention(0, time.Hour), clock)
		ctx := t.Context()
		a1, _, _ := fanIn(t, b, 1, "other", t0)
		a2, _, _ := fanIn(t, b, 11, "other", t0)
		finishTask(t, b, "a", t0.Add(time.Second), backend.StateSucceeded, []byte{1})
		finishTask(t, b, "a", t0.Add(time.Second), backend.StateSucceeded, []byte{1})
		wantParked(t, b, "default", 2, "after both first parents ended")
		var xs []string
		for i := range 3 {
			x := backendtest.NewJob(backendtest.ID(uint64(50+i)), fmt.Sprint("x", i), t0)
			x.Queue = "q2"
			if _, err := b.Enqueue(ctx, []*backend.Job{x}); err != nil {
				t.Fatal(err)
			}
			xs = append(xs, finishTask(t, b, x.Task, t0.Add(time.Duration(1+i)*time.Second), backend.StateSucceeded, nil))
		}
		if err := b.c.Set(ctx, b.wfKey(backendtest.ID(4)), "\xc1garbage", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := b.c.Del(ctx, b.wfKey(backendtest.ID(14))).Err(); err != nil {
			t.Fatal(err)
		}
		if err := b.c.HSet(ctx, b.wfKey(backendtest.ID(14)), "not", "a graph").Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := b.TrimEnded(ctx, 2, backend.PurgeFilter{}); err != nil || n != 1 || exists(t, b, xs[0]) {
			t.Fatalf("TrimEnded(2) = %d, %v; want job %s deleted", n, err, xs[0])
		}
		if n, err := b.PurgeEnded(ctx, t0.Add(2500*time.Millisecond), backend.PurgeFilter{}); err != nil || n != 1 || exists(t, b, xs[1]) {
			t.Fatalf("PurgeEnded = %d, %v; want job %s deleted", n, err, xs[1])
		}
		setClock(t0.Add(10 * time.Hour))
		if n, err := b.Prune(ctx); err != nil || n != 1 || exists(t, b, xs[2]) {
			t.Fatalf("Prune = %d, %v; want job %s deleted", n, err, xs[2])
		}
		if !exists(t, b, a1.ID) || !exists(t, b, a2.ID) {
			t.Fatal("a parent of a workflow whose graph cannot be read was deleted")
		}
		wantParked(t, b, "default", 2, "after the retention passes")
		checkIndexes(t, b, "default")
		checkIndexes(t, b, "q2")
	})
}

// TestPurgePendingStepUnparks: deleting the pending fan-in (Purge by id,
// with an ended plain job; Bulk delete does the same) unparks its ended
// parent, which at-completion retention (keep 1) then takes like any
// finished job, and drops the mark of its queued parent, which no longer
// parks when it ends.
func TestPurgePendingStepUnparks(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		b := open(WithRetention(1, 0))
		ctx := t.Context()
		t0 := backendtest.Epoch()
		a, p, m := fanIn(t, b, 1, "other", t0)
		finishTask(t, b, "a", t0.Add(time.Second), backend.StateSucceeded, []byte{1})
		x := backendtest.NewJob(backendtest.ID(10), "x", t0)
		x.Queue = "q2"
		if _, err := b.Enqueue(ctx, []*backend.Job{x}); err != nil {
			t.Fatal(err)
		}
		finishTask(t, b, "x", t0.Add(time.Second), backend.StateSucceeded, nil)
		wantParked(t, b, "default", 1, "while the fan-in waits")
		n, err := b.Purge(ctx, backend.PurgeFilter{IDs: []string{x.ID, m.ID}})
		if err != nil || n != 2 {
			t.Fatalf("Purge(x, fan-in) = %d, %v; want 2", n, err)
		}
		wantParked(t, b, "default", 0, "after the fan-in was deleted")
		checkIndexes(t, b, "default")
		wantState(t, b, a.ID, backend.StateSucceeded) // the newest finished job of its queue: keep 1
		finishTask(t, b, "b", t0.Add(2*time.Second), backend.StateSucceeded, nil)
		wantParked(t, b, "default", 0, "after parent b ended")
		if exists(t, b, a.ID) || !exists(t, b, p.ID) {
			t.Fatalf("after parent b ended: a kept %v, b kept %v; want a deleted by retention (keep 1), b kept",
				exists(t, b, a.ID), exists(t, b, p.ID))
		}
		checkIndexes(t, b, "default")
	})
}

// TestBulkDeletePendingStepUnparks: the same through Bulk delete of the
// fan-in alone.
func TestBulkDeletePendingStepUnparks(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		b := open()
		ctx := t.Context()
		t0 := backendtest.Epoch()
		a, _, m := fanIn(t, b, 1, "other", t0)
		finishTask(t, b, "a", t0.Add(time.Second), backend.StateSucceeded, []byte{1})
		if n, err := b.Bulk(ctx, backend.BulkDelete, backend.Selection{IDs: []string{m.ID}}, t0); err != nil || n != 1 {
			t.Fatalf("Bulk delete(fan-in) = %d, %v; want 1", n, err)
		}
		wantParked(t, b, "default", 0, "after the fan-in was deleted")
		if n, err := b.TrimEnded(ctx, 0, backend.PurgeFilter{IDs: []string{a.ID}}); err != nil || n != 1 {
			t.Fatalf("TrimEnded(0, a) = %d, %v; want parent a deleted", n, err)
		}
		checkIndexes(t, b, "default")
	})
}

// TestRetentionRacesParked: fan-ins whose parents complete concurrently
// (four workers) while retention keeps one finished job per queue at each
// completion and TrimEnded, PurgeEnded and Prune run in a loop: every
// fan-in is released with both results (no parent was deleted while it
// waited), nothing stays parked, and the indexes hold.
func TestRetentionRacesParked(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		b := open(WithRetention(1, 0))
		ctx := t.Context()
		t0 := backendtest.Epoch()
		const n = 150
		var ms []string
		for i := range n {
			a := backendtest.NewJob(backendtest.ID(uint64(1000+4*i)), "a", t0)
			p := backendtest.NewJob(backendtest.ID(uint64(1001+4*i)), "a", t0)
			m := backendtest.NewJob(backendtest.ID(uint64(1002+4*i)), "m", t0)
			a.StoreResult, p.StoreResult = true, true
			m.State, m.Queue, m.Args = backend.StatePending, "other", []byte{0x91, 0x07}
			wf := &backend.Workflow{ID: backendtest.ID(uint64(1003 + 4*i)), CreatedAt: t0, Steps: []backend.Step{
				{Job: a}, {Job: p}, {Job: m, Parents: []backend.Edge{{Parent: a.ID}, {Parent: p.ID}}, Input: backend.InputResults},
			}}
			if err := b.EnqueueWorkflow(ctx, wf); err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m.ID)
		}
		errc := make(chan error, 8)
		var workers sync.WaitGroup
		for w := range 4 {
			workers.Go(func() {
				for {
					jobs, err := b.Claim(ctx, backend.ClaimRequest{Tasks: []string{"a"}, Limit: 3, Worker: fmt.Sprint("w", w), Now: t0, LeaseFor: time.Hour})
					if err != nil || len(jobs) == 0 {
						if err != nil {
							errc <- err
						}
						return
					}
					os := make([]backend.Outcome, len(jobs))
					for i, j := range jobs {
						os[i] = backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: t0.Add(time.Second), Result: []byte{0x0a},
							Attempt: backend.Attempt{Number: j.Attempt, StartedAt: t0, FinishedAt: t0, Worker: "w", Outcome: "succeeded"}}
					}
					if _, err := b.Complete(ctx, os); err != nil {
						errc <- err
						return
					}
				}
			})
		}
		stop := make(chan struct{})
		var retention sync.WaitGroup
		retention.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch k % 3 {
				case 0:
					_, err = b.TrimEnded(ctx, 0, backend.PurgeFilter{})
				case 1:
					_, err = b.PurgeEnded(ctx, t0.Add(time.Hour), backend.PurgeFilter{})
				case 2:
					_, err = b.Prune(ctx)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
		workers.Wait()
		close(stop)
		retention.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		want := []byte{0x92, 0x92, 0x0a, 0x0a, 0x07}
		bad := 0
		for _, id := range ms {
			j, err := b.Get(ctx, id)
			if err != nil {
				t.Fatalf("fan-in %s: %v", id, err)
			}
			if j.State != backend.StateQueued || !bytes.Equal(j.Args, want) {
				if bad++; bad <= 5 {
					t.Errorf("fan-in %s: %s (%s), args % x; want queued with both results", id, j.State, j.Error, j.Args)
				}
			}
		}
		if bad > 0 {
			t.Fatalf("%d of %d fan-ins not released with both results", bad, n)
		}
		wantParked(t, b, "default", 0, "at the end")
		checkIndexes(t, b, "default")
		checkIndexes(t, b, "other")
	})
}

// TestSweepPagesParked: the sweep of more parked jobs than it reads at a
// time (sweepChunk), over many workflows, unparks exactly those no pending
// step waits for (half of the fan-ins were cancelled by the compare-and-set
// alone: a crash before the unpark), in a few round trips per chunk, not
// some per workflow.
func TestSweepPagesParked(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		b := open()
		ctx := t.Context()
		t0 := backendtest.Epoch()
		n := sweepChunk + sweepChunk/2
		parkFanIns(t, b, n)
		var kept []string
		for i := 1; i < n; i += 2 {
			kept = append(kept, backendtest.ID(uint64(1000+4*i)))
		}
		wantParked(t, b, "default", int64(n), "after every first parent ended")
		for i := 0; i < n; i += 2 {
			if err := b.cancel(ctx, backendtest.ID(uint64(1002+4*i)), t0, "", "gone"); err != nil {
				t.Fatal(err)
			}
		}
		rt := &roundTrips{}
		b.c.AddHook(rt)
		if err := b.sweepParked(ctx, []string{"default"}); err != nil {
			t.Fatal(err)
		}
		t.Logf("the sweep of %d parked jobs took %d round trips", n, rt.n.Load())
		if got := rt.n.Load(); got > 30 {
			t.Errorf("the sweep of %d parked jobs (%d chunks) took %d round trips, want at most 30", n, (n+sweepChunk-1)/sweepChunk, got)
		}
		wantParked(t, b, "default", int64(len(kept)), "after the sweep")
		ms, err := b.c.ZRange(ctx, b.qp("default")+"donewf", 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		var still []string
		for _, m := range ms {
			still = append(still, m[16:])
		}
		slices.Sort(still)
		slices.Sort(kept)
		if !slices.Equal(still, kept) {
			t.Fatalf("parked after the sweep: %d jobs, want the %d whose fan-in waits", len(still), len(kept))
		}
		checkIndexes(t, b, "default")
	})
}
