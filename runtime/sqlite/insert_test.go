package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// TestEnqueueKeepsEveryColumn enqueues, alone and in a batch beside fresh
// jobs, jobs that each set one of the columns the narrow insert of fresh jobs
// leaves out: each must come back from Get exactly as enqueued, so none may be
// taken for a fresh job and lose that column.
func TestEnqueueKeepsEveryColumn(t *testing.T) {
	b := openTest(t)
	ctx := context.Background()
	attempt := backend.Attempt{Number: 1, StartedAt: t0, FinishedAt: t0.Add(time.Second), Worker: "w", Outcome: backend.OutcomeFailed, Error: "e"}
	mods := map[string]func(*backend.Job){
		"attempt":      func(j *backend.Job) { j.Attempt = 2 },
		"unique key":   func(j *backend.Job) { j.UniqueKey = "k" },
		"unique until": func(j *backend.Job) { j.UniqueUntil = t0.Add(time.Hour) },
		"started":      func(j *backend.Job) { j.StartedAt = t0.Add(time.Second) },
		"finished":     func(j *backend.Job) { j.FinishedAt = t0.Add(time.Second) },
		"result":       func(j *backend.Job) { j.Result = []byte{0xc3} },
		"error":        func(j *backend.Job) { j.Error = "boom" },
		"error chain":  func(j *backend.Job) { j.ErrorChain = []string{"boom"} },
		"panic stack":  func(j *backend.Job) { j.PanicStack = "goroutine 1" },
		"attempts":     func(j *backend.Job) { j.Attempts = []backend.Attempt{attempt} },
		"lease owner":  func(j *backend.Job) { j.LeaseOwner = "w" },
		"lease token":  func(j *backend.Job) { j.LeaseToken = 7 },
		"lease until":  func(j *backend.Job) { j.LeaseUntil = t0.Add(time.Minute) },
	}
	n := uint64(0)
	next := func(mod func(*backend.Job)) *backend.Job {
		n++
		j := backendtest.NewJob(backendtest.ID(n), "t", t0)
		if mod != nil {
			mod(j)
		}
		return j
	}
	fresh := next(nil) // alone: the one-statement insert (enqueueFreshSQL)
	fresh.Priority, fresh.Timeout, fresh.Signature, fresh.Args = 3, time.Minute, "sig", []byte{0x91, 0x01}
	fresh.State, fresh.RunAt = backend.StateScheduled, t0.Add(time.Hour)
	if !freshJob(fresh) {
		t.Fatal("a job with none of the left-out columns set does not count as fresh")
	}
	mustEnqueue(t, b, []*backend.Job{fresh})
	want := []*backend.Job{fresh}
	for name, mod := range mods {
		single := next(mod)
		if freshJob(single) {
			t.Errorf("a job with its %s set counts as fresh", name)
		}
		mustEnqueue(t, b, []*backend.Job{single})
		batch := []*backend.Job{next(nil), next(mod), next(nil)}
		mustEnqueue(t, b, batch)
		want = append(want, single)
		want = append(want, batch...)
	}
	for _, w := range want {
		got, err := b.Get(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(w, got, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); d != "" {
			t.Errorf("Get(%s) differs from the enqueued job (-want +got):\n%s", w.ID, d)
		}
	}
}

// TestEnqueueOneFreshIsAtomic checks the one-statement enqueue of a fresh
// job: it moves the counters with the job, and a job whose id is taken is
// refused with the id named, leaving the stored job and the counters as
// they were.
func TestEnqueueOneFreshIsAtomic(t *testing.T) {
	b := openTest(t)
	ctx := context.Background()
	if b.stmts.enqueueFresh == nil {
		t.Fatal("the one-statement enqueue is not prepared: single enqueues take the transaction")
	}
	first := backendtest.NewJob(backendtest.ID(1), "t", t0)
	mustEnqueue(t, b, []*backend.Job{first})
	again := backendtest.NewJob(backendtest.ID(1), "other", t0)
	again.Queue = "elsewhere"
	_, err := b.Enqueue(ctx, []*backend.Job{again})
	if err == nil || !strings.Contains(err.Error(), first.ID) {
		t.Fatalf("enqueue of a taken id: err = %v, want an error naming %s", err, first.ID)
	}
	got, err := b.Get(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Task != "t" || got.Queue != first.Queue {
		t.Fatalf("stored job changed to task %q, queue %q", got.Task, got.Queue)
	}
	stats, scan := statsAndScan(t, b)
	if len(stats) != 1 || stats[0].Queue != first.Queue || stats[0].State != backend.StateQueued || stats[0].Count != 1 {
		t.Fatalf("Stats = %+v, want one queued job in %s", stats, first.Queue)
	}
	if len(scan) != 1 || scan[0].Count != 1 {
		t.Fatalf("scan of the jobs = %+v, want one queued job", scan)
	}
}
