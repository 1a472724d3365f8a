package redis

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// topologies runs f on a standalone Redis and, with NUVOM_REDIS_CLUSTER=1,
// on a 3-node Cluster; open returns a fresh backend with opts.
func topologies(t *testing.T, f func(t *testing.T, open func(opts ...Option) *Backend)) {
	t.Run("standalone", func(t *testing.T) {
		srv := redistest.Start(t)
		f(t, func(opts ...Option) *Backend { return openTest(t, srv, opts...) })
	})
	t.Run("cluster", func(t *testing.T) {
		if os.Getenv("NUVOM_REDIS_CLUSTER") != "1" {
			t.Skip("set NUVOM_REDIS_CLUSTER=1")
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
