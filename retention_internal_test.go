package nuvom

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/memory"
)

// TestTrimOldWaitsForTheSlack checks trimOld's hysteresis: a queue holding
// fewer than KeepFinished plus the slack ended jobs is left alone, one over
// it is trimmed to exactly KeepFinished, and a pass without slack trims any
// queue over KeepFinished.
func TestTrimOldWaitsForTheSlack(t *testing.T) {
	ctx := context.Background()
	b := memory.New()
	defer b.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Ended jobs: 1,005 on "big", 3 on "small" (KeepFinished 2, slack 1,000).
	var jobs []*backend.Job
	for _, q := range []struct {
		name string
		n    int
	}{{"big", 1005}, {"small", 3}} {
		for k := range q.n {
			jobs = append(jobs, &backend.Job{ID: fmt.Sprintf("%s-%04d", q.name, k), Task: "t", Queue: q.name,
				State: backend.StateQueued, MaxAttempts: 1, RunAt: t0, CreatedAt: t0})
		}
	}
	if _, err := b.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	claimed, err := b.Claim(ctx, backend.ClaimRequest{Limit: len(jobs), Worker: "w", Now: t0, LeaseFor: time.Hour})
	if err != nil || len(claimed) != len(jobs) {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	var out []backend.Outcome
	for i, j := range claimed {
		out = append(out, backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: t0.Add(time.Duration(i) * time.Second)})
	}
	if _, err := b.Complete(ctx, out); err != nil {
		t.Fatal(err)
	}
	w := &Worker{b: b, o: WorkerOptions{KeepFinished: 2}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now}
	ended := func() map[string]int {
		t.Helper()
		st, err := b.Stats(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, s := range st {
			m[s.Queue] += s.Count
		}
		return m
	}
	if err := w.trimOld(ctx, trimSlack(2)); err != nil {
		t.Fatal(err)
	}
	if got := ended(); got["big"] != 2 || got["small"] != 3 {
		t.Fatalf("after a pass with slack %d: %v, want big trimmed to 2 and small (within the slack) left at 3", trimSlack(2), got)
	}
	if err := w.trimOld(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := ended(); got["big"] != 2 || got["small"] != 2 {
		t.Fatalf("after a pass without slack: %v, want both at 2", got)
	}
}
