package dashboard

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/memory"
)

type countingMinutes struct {
	*memory.Backend
	reads atomic.Int64
	since []time.Time
}

func (c *countingMinutes) Minutes(ctx context.Context, f backend.MinuteFilter) ([]backend.MinuteStat, error) {
	c.reads.Add(1)
	c.since = append(c.since, f.Since)
	return c.Backend.Minutes(ctx, f)
}

// The cached history equals a direct read, and a second read fetches only
// the current bucket: closed buckets are not read again.
func TestHistoryCacheReadsClosedBucketsOnce(t *testing.T) {
	m := memory.New()
	defer m.Close()
	now := time.Date(2030, 5, 6, 13, 27, 0, 0, time.UTC)
	ctx := context.Background()
	// One finished attempt every 37 minutes over the last 3 days.
	var jobs []*backend.Job
	for i := range 120 {
		at := now.Add(-time.Duration(i) * 37 * time.Minute)
		jobs = append(jobs, &backend.Job{ID: fmt.Sprintf("j%04d", i), Task: "t", Queue: []string{"a", "b"}[i%2],
			State: backend.StateQueued, MaxAttempts: 1, RunAt: at, CreatedAt: at, TimeoutPolicy: backend.TimeoutFail})
	}
	if _, err := m.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	claimed, err := m.Claim(ctx, backend.ClaimRequest{Limit: 1000, Worker: "w", Now: now, LeaseFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var outs []backend.Outcome
	for _, j := range claimed {
		fin := j.CreatedAt
		outs = append(outs, backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: fin,
			Attempt: backend.Attempt{Number: 1, StartedAt: fin.Add(-time.Second), FinishedAt: fin, Outcome: backend.OutcomeSucceeded}})
	}
	if _, err := m.Complete(ctx, outs); err != nil {
		t.Fatal(err)
	}
	c := &countingMinutes{Backend: m}
	h := &Handler{admin: c} // not New: no warm-up, this test counts the reads
	for _, f := range append(historyFilters(now), tasksFilter(now)) {
		want, err := m.Minutes(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		c.reads.Store(0)
		got, err := h.minutes(ctx, f, now)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %s: cached read %v, want %v", f.Step, got, want)
		}
		c.reads.Store(0)
		c.since = nil
		again, err := h.minutes(ctx, f, now)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(again, want) {
			t.Fatalf("step %s: second read %v, want %v", f.Step, again, want)
		}
		// Only the bucket still open is read again (for steps of several
		// hours, only its open hour): the minute, the hour.
		g := f
		g.Step = min(f.Step, time.Hour)
		open := g.Bucket(now.Add(-closeGrace))
		if n := c.reads.Load(); n != 1 || !c.since[0].Equal(open) {
			t.Fatalf("step %s: second read made %d store reads from %v, want 1 from the open bucket %s", f.Step, n, c.since, open)
		}
	}
}
