package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// TestPurgeEndedPages checks the age-based purge over more ended jobs than
// one script call looks at (1,000): each call starts after the last member
// the one before looked at, so every failed job finished before the cutoff
// goes, and nothing else.
func TestPurgeEndedPages(t *testing.T) {
	b := openTest(t, redistest.Start(t))
	ctx := context.Background()
	t0 := backendtest.Epoch()
	const n = 2600
	// Finish times alternate failed and succeeded, one second apart; the
	// cutoff falls after the 2,400th.
	cutoff := t0.Add(2400 * time.Second)
	end := func(i int) (backend.State, time.Time) {
		if i%2 == 0 {
			return backend.StateFailed, t0.Add(time.Duration(i+1) * time.Second)
		}
		return backend.StateSucceeded, t0.Add(time.Duration(i+1) * time.Second)
	}
	finishJobs(t, b, n, end)
	wantGone := 0
	for i := range n {
		if st, fin := end(i); st == backend.StateFailed && fin.Before(cutoff) {
			wantGone++
		}
	}
	got, err := b.PurgeEnded(ctx, cutoff, backend.PurgeFilter{States: []backend.State{backend.StateFailed}})
	if err != nil {
		t.Fatal(err)
	}
	if got != wantGone {
		t.Fatalf("Purge deleted %d jobs, want %d", got, wantGone)
	}
	stats, err := b.Stats(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	left := map[backend.State]int{}
	for _, s := range stats {
		left[s.State] += s.Count
	}
	if left[backend.StateSucceeded] != n/2 || left[backend.StateFailed] != n/2-wantGone {
		t.Fatalf("left %v, want %d succeeded and %d failed", left, n/2, n/2-wantGone)
	}
}

// finishJobs stores n jobs on queue "default" (ids backendtest.ID(1) to
// ID(n)) and ends the i-th in the state and at the time end(i) returns,
// through Enqueue, Claim and Complete in batches of 1,000: what a store
// holds after running them. It returns their ids.
func finishJobs(tb testing.TB, b *Backend, n int, end func(i int) (backend.State, time.Time)) []string {
	tb.Helper()
	ctx := context.Background()
	t0 := backendtest.Epoch()
	ids := make([]string, 0, n)
	for len(ids) < n {
		jobs := make([]*backend.Job, min(1000, n-len(ids)))
		for k := range jobs {
			jobs[k] = backendtest.NewJob(backendtest.ID(uint64(len(ids)+k+1)), "t", t0)
		}
		if _, err := b.Enqueue(ctx, jobs); err != nil {
			tb.Fatal(err)
		}
		claimed, err := b.Claim(ctx, backend.ClaimRequest{Limit: len(jobs), Worker: "w", Now: t0, LeaseFor: time.Hour})
		if err != nil || len(claimed) != len(jobs) {
			tb.Fatalf("claimed %d (%v), want %d", len(claimed), err, len(jobs))
		}
		outs := make([]backend.Outcome, len(claimed))
		for k, j := range claimed {
			if j.ID != jobs[k].ID {
				tb.Fatalf("claim %d took %s, want %s (the claim order is by id)", k, j.ID, jobs[k].ID)
			}
			st, fin := end(len(ids) + k)
			outs[k] = backend.Outcome{Lease: j.Lease(), Queue: j.Queue, Task: j.Task, State: st, FinishedAt: fin,
				Attempt: backend.Attempt{Number: 1, StartedAt: t0, FinishedAt: fin, Worker: "w", Outcome: backend.OutcomeSucceeded}}
		}
		errs, err := b.Complete(ctx, outs)
		if err == nil {
			err = errors.Join(errs...)
		}
		if err != nil {
			tb.Fatal(err)
		}
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
	}
	return ids
}

// TestUndoEnqueue checks that undoEnqueue, the rollback of an Enqueue that
// failed part-way (on a Cluster, one queue's script), deletes the jobs it
// is given: their records, indexes and locations.
func TestUndoEnqueue(t *testing.T) {
	b := openTest(t, redistest.Start(t))
	ctx := t.Context()
	t0 := backendtest.Epoch()
	jobs := []*backend.Job{backendtest.NewJob(backendtest.ID(1), "t", t0), backendtest.NewJob(backendtest.ID(2), "t", t0)}
	jobs[1].Queue = "other"
	if _, err := b.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	b.undoEnqueue(jobs, map[string][]int{"default": {0}, "other": {1}}, []string{"default", "other"})
	for _, j := range jobs {
		if _, err := b.Get(ctx, j.ID); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("after undoEnqueue, Get(%s) = %v, want ErrNotFound", j.ID, err)
		}
	}
	stats, err := b.Stats(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 0 {
		t.Errorf("after undoEnqueue, stats = %+v, want none", stats)
	}
}
