package redis

import (
	"context"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
)

// TestClaimSkippedUntilRunAt: a job in the ready set whose run-at is still
// ahead of the claimer's clock (another host's clock is ahead, or it was
// enqueued queued with a future run-at) is not claimed: it goes back to
// waiting and is claimed once the claimer's clock reaches it. Run-ats that
// differ from "now" only in the low or in the high half of their time key
// are both covered (the claim script compares the two halves as numbers).
func TestClaimSkippedUntilRunAt(t *testing.T) {
	srv := redistest.Start(t)
	b := openTest(t, srv)
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	soon, later := benchJobs(1, now.Add(time.Second))[0], benchJobs(1, now.Add(2*time.Hour))[0]
	if timeKey(soon.RunAt)[:8] != timeKey(now)[:8] || timeKey(later.RunAt)[:8] == timeKey(now)[:8] {
		t.Fatalf("time keys %s %s %s do not differ where this test needs them to", timeKey(now), timeKey(soon.RunAt), timeKey(later.RunAt))
	}
	if _, err := b.Enqueue(ctx, []*backend.Job{soon, later}); err != nil {
		t.Fatal(err)
	}
	claim := func(at time.Time) []string {
		t.Helper()
		js, err := b.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Now: at, LeaseFor: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range js {
			ids = append(ids, j.ID)
			if j.State != backend.StateRunning || j.LeaseOwner != "w" || j.Attempt != 1 || j.LeaseToken == 0 ||
				!j.LeaseUntil.Equal(at.Add(time.Hour)) || !j.StartedAt.Equal(at) {
				t.Fatalf("claimed job %+v: want it running under w's lease from %s", j, at)
			}
		}
		return ids
	}
	if ids := claim(now); len(ids) != 0 {
		t.Fatalf("claim at %s took %v; want nothing (both run later)", now, ids)
	}
	if ids := claim(now.Add(1500 * time.Millisecond)); len(ids) != 1 || ids[0] != soon.ID {
		t.Fatalf("claim 1.5 s later took %v; want [%s]", ids, soon.ID)
	}
	if ids := claim(now.Add(time.Hour)); len(ids) != 0 {
		t.Fatalf("claim 1 h later took %v; want nothing", ids)
	}
	if ids := claim(now.Add(3 * time.Hour)); len(ids) != 1 || ids[0] != later.ID {
		t.Fatalf("claim 3 h later took %v; want [%s]", ids, later.ID)
	}
	got, err := b.Get(ctx, later.ID)
	if err != nil || got.State != backend.StateRunning || got.Attempt != 1 {
		t.Fatalf("Get after the claim = %+v, %v; want running, attempt 1", got, err)
	}
}
