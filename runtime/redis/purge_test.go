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
	jobs := make([]*backend.Job, n)
	for i := range jobs {
		jobs[i] = backendtest.NewJob(backendtest.ID(uint64(i+1)), "t", t0)
	}
	if _, err := b.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	claimed, err := b.Claim(ctx, backend.ClaimRequest{Limit: n, Worker: "w", Now: t0, LeaseFor: time.Hour})
	if err != nil || len(claimed) != n {
		t.Fatalf("claimed %d (%v), want %d", len(claimed), err, n)
	}
	// Finish times alternate failed and succeeded, one second apart; the
	// cutoff falls after the 2,400th.
	outs := make([]backend.Outcome, n)
	wantGone := 0
	cutoff := t0.Add(2400 * time.Second)
	for i, j := range claimed {
		st := backend.StateSucceeded
		if i%2 == 0 {
			st = backend.StateFailed
		}
		fin := t0.Add(time.Duration(i+1) * time.Second)
		if st == backend.StateFailed && fin.Before(cutoff) {
			wantGone++
		}
		outs[i] = backend.Outcome{Lease: j.Lease(), Queue: j.Queue, Task: j.Task, State: st, FinishedAt: fin,
			Attempt: backend.Attempt{Number: 1, StartedAt: t0, FinishedAt: fin, Worker: "w", Outcome: backend.OutcomeSucceeded}}
	}
	errs, err := b.Complete(ctx, outs)
	if err == nil {
		err = errors.Join(errs...)
	}
	if err != nil {
		t.Fatal(err)
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
