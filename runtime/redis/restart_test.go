package redis

import (
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
)

// TestRestartAppendOnly: with appendonly yes (appendfsync everysec), Redis
// writes each script's effects to the append-only file before it replies, so
// a kill -9 of the Redis process (not of the host) loses nothing
// acknowledged: after a restart every enqueued, claimed and completed job is
// as it was, and the backend carries on (scripts reloaded).
func TestRestartAppendOnly(t *testing.T) {
	srv := redistest.Start(t, "appendonly yes", "appendfsync everysec")
	b := openTest(t, srv)
	ctx := t.Context()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	jobs := benchJobs(200, t0)
	if _, err := b.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	claimed, err := b.Claim(ctx, backend.ClaimRequest{Limit: 20, Worker: "w", Now: t0, LeaseFor: time.Minute})
	if err != nil || len(claimed) != 20 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	var outs []backend.Outcome
	for _, j := range claimed[:10] {
		outs = append(outs, backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: t0, Result: []byte("ok")})
	}
	if _, err := b.Complete(ctx, outs); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t) // kill -9, then start on the same port and directory
	want := map[backend.State]int{backend.StateQueued: 180, backend.StateRunning: 10, backend.StateSucceeded: 10}
	var stats []backend.QueueStat
	for deadline := time.Now().Add(60 * time.Second); ; { // the first calls may meet closed connections
		stats, err = b.Stats(ctx, t0)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	got := map[backend.State]int{}
	for _, s := range stats {
		got[s.State] += s.Count
	}
	for st, n := range want {
		if got[st] != n {
			t.Fatalf("after the restart: %v, want %v", got, want)
		}
	}
	// The backend goes on after the restart: the scripts are loaded again.
	more, err := b.Claim(ctx, backend.ClaimRequest{Limit: 5, Worker: "w2", Now: t0, LeaseFor: time.Minute})
	if err != nil || len(more) != 5 {
		t.Fatalf("claim after the restart: %d, %v", len(more), err)
	}
	errs, err := b.Complete(ctx, []backend.Outcome{{Lease: claimed[15].Lease(), State: backend.StateSucceeded, FinishedAt: t0}})
	if err != nil || errs[0] != nil {
		t.Fatalf("complete of a lease taken before the restart: %v, %v", errs, err)
	}
}
