package sqlite

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// finishAll stores, behind the API's back, each job's state and finish
// time as the SQL expressions of rowid give them, then rebuilds the
// counters: a store filled over time, in a single statement.
func finishAll(t *testing.T, b *Backend, state, finishedAt string) {
	t.Helper()
	if _, err := b.write.Exec(`UPDATE jobs SET state = ` + state + `, finished_at = ` + finishedAt); err != nil {
		t.Fatal(err)
	}
	if err := b.Recount(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// stored returns every stored job by id, as List (like Get) reads them.
func stored(t *testing.T, b *Backend) map[string]*backend.Job {
	t.Helper()
	jobs, err := b.List(context.Background(), backend.ListFilter{Limit: math.MaxInt32})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*backend.Job{}
	for _, j := range jobs {
		m[j.ID] = j
	}
	return m
}

// trimmed returns the ids of the jobs TrimEnded(keep, f) must delete:
// backend.BeyondNewest over the stored jobs matching f that ended.
func trimmed(t *testing.T, b *Backend, keep int, f backend.PurgeFilter) map[string]bool {
	t.Helper()
	var ended []backend.EndedJob
	for _, j := range stored(t, b) {
		if j.State.Final() && (f.Queue == "" || j.Queue == f.Queue) &&
			(len(f.States) == 0 || slices.Contains(f.States, j.State)) &&
			(len(f.IDs) == 0 || slices.Contains(f.IDs, j.ID)) {
			ended = append(ended, backend.EndedJob{ID: j.ID, Queue: j.Queue, FinishedAt: j.FinishedAt})
		}
	}
	gone := map[string]bool{}
	for _, e := range backend.BeyondNewest(ended, keep) {
		gone[e.ID] = true
	}
	return gone
}

// checkLeft fails t unless exactly the jobs not in gone are still stored
// and the counters match a scan of them.
func checkLeft(t *testing.T, b *Backend, jobs []*backend.Job, gone map[string]bool) {
	t.Helper()
	left := stored(t, b)
	if want := len(jobs) - len(gone); len(left) != want {
		t.Errorf("%d jobs left, want %d", len(left), want)
	}
	wrong := 0
	for _, j := range jobs {
		if isGone := left[j.ID] == nil; isGone != gone[j.ID] {
			if wrong++; wrong <= 5 {
				t.Errorf("job %s: gone = %v, want %v", j.ID, isGone, gone[j.ID])
			}
		}
	}
	if wrong > 5 {
		t.Errorf("... %d jobs in all are wrong", wrong)
	}
	checkCounts(t, b, "the trim")
}

// TestTrimEndedInBatches trims queues holding more ended jobs than one
// transaction deletes (purgeBatch), with finish times that tie, fall before
// 1970 or are missing, among jobs that have not ended: in each queue
// exactly the newest keep ended jobs stay (backend.BeyondNewest), the
// deletes take several batches, a queue with fewer than keep is untouched,
// and the counters match a scan. A second trim deletes nothing.
func TestTrimEndedInBatches(t *testing.T) {
	b := openTest(t)
	ctx := context.Background()
	var jobs []*backend.Job
	for i := range 4*purgeBatch + 40 {
		j := backendtest.NewJob(backendtest.ID(uint64(i+1)), "t", t0)
		switch {
		case i >= 4*purgeBatch:
			j.Queue = "small"
		case i%5 == 0:
			j.Queue = "mid"
		default:
			j.Queue = "big"
		}
		jobs = append(jobs, j)
	}
	mustEnqueue(t, b, jobs)
	finishAll(t, b,
		`CASE rowid % 9 WHEN 0 THEN 'queued' WHEN 4 THEN 'running' WHEN 1 THEN 'failed' WHEN 2 THEN 'cancelled'
			WHEN 3 THEN 'quarantined' ELSE 'succeeded' END`,
		`CASE WHEN rowid % 9 IN (0, 4) OR rowid % 13 = 0 THEN 0 ELSE ((rowid * 7919) % 20011 - 10000) * 1000000 END`)
	const keep = 1000
	gone := trimmed(t, b, keep, backend.PurgeFilter{})
	batches := 0
	b.beforeDelete = func() { batches++ }
	n, err := b.TrimEnded(ctx, keep, backend.PurgeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(gone) {
		t.Errorf("TrimEnded deleted %d jobs, want %d", n, len(gone))
	}
	if batches < 4 { // big: 3 batches, mid: 1
		t.Errorf("TrimEnded deleted in %d batches, want at least 4", batches)
	}
	checkLeft(t, b, jobs, gone)
	for _, q := range []string{"big", "mid"} {
		ended, err := b.List(ctx, backend.ListFilter{Queue: q, Limit: 10 * keep,
			States: []backend.State{backend.StateSucceeded, backend.StateFailed, backend.StateCancelled, backend.StateQuarantined}})
		if err != nil {
			t.Fatal(err)
		}
		if len(ended) != keep {
			t.Errorf("queue %s keeps %d ended jobs, want %d", q, len(ended), keep)
		}
	}
	if n, err := b.TrimEnded(ctx, keep, backend.PurgeFilter{}); n != 0 || err != nil {
		t.Errorf("second TrimEnded = %d, %v; want 0, nil", n, err)
	}

	// keep 0 with a state: every failed job goes, in every queue.
	f := backend.PurgeFilter{States: []backend.State{backend.StateFailed, backend.StateRunning}}
	failed := trimmed(t, b, 0, f)
	if n, err := b.TrimEnded(ctx, 0, f); err != nil || n != len(failed) || n == 0 {
		t.Fatalf("TrimEnded(0, %+v) = %d, %v; want %d (not 0)", f, n, err, len(failed))
	}
	for id := range failed {
		gone[id] = true
	}
	checkLeft(t, b, jobs, gone)
}

// TestTrimEndedOrder trims one queue of jobs whose finish times are
// missing, before 1970, at the ends of the stored range (one written out of
// it by hand, which reads as the earliest) or tied, with every keep: the
// survivors are always backend.BeyondNewest's.
func TestTrimEndedOrder(t *testing.T) {
	finished := []int64{
		0, 0, // no finish time: the oldest
		math.MinInt64 + 1,            // out of range: reads as MinTime
		backend.MinTime().UnixNano(), // ties with it
		-2e9, -1, 1, 5e9, 5e9,
		backend.MaxTime().UnixNano(), math.MaxInt64, // the same, read clamped
	}
	for keep := range len(finished) + 2 {
		b := openTest(t)
		jobs := newJobs(1, len(finished), "q")
		// In reverse id order of their times, so that id order does not
		// give the answer.
		slices.Reverse(jobs)
		mustEnqueue(t, b, jobs)
		cases := make([]string, len(jobs))
		for i, j := range jobs {
			cases[i] = "WHEN '" + j.ID + "' THEN " + strconv.FormatInt(finished[i], 10)
		}
		finishAll(t, b, `'succeeded'`, `CASE id `+strings.Join(cases, " ")+` END`)
		gone := trimmed(t, b, keep, backend.PurgeFilter{})
		n, err := b.TrimEnded(context.Background(), keep, backend.PurgeFilter{})
		if err != nil || n != len(gone) {
			t.Errorf("keep %d: TrimEnded = %d, %v; want %d", keep, n, err, len(gone))
		}
		checkLeft(t, b, jobs, gone)
	}
}

// TestTrimEndedKeepsRetried retries a job the trim has found, between the
// find of its batch and the delete: the delete checks again that the job
// ended, so the job stays (queued), the others go and the counters match.
func TestTrimEndedKeepsRetried(t *testing.T) {
	for _, keep := range []int{0, 5} {
		b := openTest(t)
		ctx := context.Background()
		jobs := newJobs(1, 20, "q")
		mustEnqueue(t, b, jobs)
		finishAll(t, b, `'failed'`, `rowid * 1000`)
		gone := trimmed(t, b, keep, backend.PurgeFilter{})
		retried := jobs[0] // the oldest: always beyond the keep
		if !gone[retried.ID] {
			t.Fatalf("keep %d: job %s is kept anyway", keep, retried.ID)
		}
		delete(gone, retried.ID)
		b.beforeDelete = func() {
			b.beforeDelete = nil
			if err := b.Retry(ctx, retried.ID, t0); err != nil {
				t.Error(err)
			}
		}
		n, err := b.TrimEnded(ctx, keep, backend.PurgeFilter{})
		if err != nil || n != len(gone) {
			t.Errorf("keep %d: TrimEnded = %d, %v; want %d", keep, n, err, len(gone))
		}
		checkLeft(t, b, jobs, gone)
		if j, err := b.Get(ctx, retried.ID); err != nil || j.State != backend.StateQueued {
			t.Errorf("keep %d: retried job: %+v, %v; want it queued", keep, j, err)
		}
	}
}

// TestTrimEndedCancelled: a trim whose context ends between two batches
// returns the first batch's count with the context's error, and the
// counters match the jobs left.
func TestTrimEndedCancelled(t *testing.T) {
	b := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	jobs := newJobs(1, purgeBatch+purgeBatch/2, "q")
	mustEnqueue(t, b, jobs)
	finishAll(t, b, `'succeeded'`, `rowid * 1000`)
	calls := 0
	b.beforeDelete = func() {
		if calls++; calls == 2 {
			cancel()
		}
	}
	n, err := b.TrimEnded(ctx, 10, backend.PurgeFilter{})
	if n != purgeBatch || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "trim ended") {
		t.Fatalf("TrimEnded = %d, %v; want %d and a trim ended error that is context.Canceled", n, err, purgeBatch)
	}
	gone := map[string]bool{}
	for _, j := range jobs[:purgeBatch] { // the oldest, in rowid order
		gone[j.ID] = true
	}
	checkLeft(t, b, jobs, gone)
}

// TestTrimEndedNegative: a negative keep is ErrNegativeKeep, named as the
// trim's, and deletes nothing.
func TestTrimEndedNegative(t *testing.T) {
	b := openTest(t)
	jobs := newJobs(1, 3, "q")
	mustEnqueue(t, b, jobs)
	finishAll(t, b, `'succeeded'`, `rowid`)
	n, err := b.TrimEnded(context.Background(), -1, backend.PurgeFilter{})
	if n != 0 || !errors.Is(err, backend.ErrNegativeKeep) || !strings.Contains(err.Error(), "sqlite trim ended") {
		t.Fatalf("TrimEnded(-1) = %d, %v; want 0 and a sqlite trim ended error that is ErrNegativeKeep", n, err)
	}
	checkLeft(t, b, jobs, nil)
}
