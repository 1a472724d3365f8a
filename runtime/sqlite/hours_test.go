package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nuvom/nuvom/runtime/backend"
)

// TestHourlyRollUpMatchesMinutes: charts of whole hours read the hourly
// roll-up, and give exactly the sums of the per-minute aggregates over
// outcomes spread across hours, queues and tasks (before the roll-up a week's
// chart read every minute row: 375 ms with a week of them).
func TestHourlyRollUpMatchesMinutes(t *testing.T) {
	b := openTest(t)
	ctx := context.Background()
	base := time.Date(2030, 3, 4, 5, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	var jobs []*backend.Job
	for i := range 300 {
		jobs = append(jobs, &backend.Job{ID: fmt.Sprintf("01JHOUR%019d", i), Task: []string{"a", "b"}[i%2],
			Queue: []string{"q1", "q2", "q3"}[i%3], State: backend.StateQueued, MaxAttempts: 1,
			RunAt: base, CreatedAt: base, TimeoutPolicy: backend.TimeoutFail})
	}
	if _, err := b.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	for len(jobs) > 0 {
		claimed, err := b.Claim(ctx, backend.ClaimRequest{Limit: 17, Worker: "w", Now: base, LeaseFor: 100 * time.Hour})
		if err != nil || len(claimed) == 0 {
			t.Fatalf("claim: %d, %v", len(claimed), err)
		}
		jobs = jobs[len(claimed):]
		var outs []backend.Outcome
		for _, j := range claimed {
			fin := base.Add(time.Duration(rng.IntN(5*60)) * time.Minute).Add(time.Duration(rng.IntN(60)) * time.Second)
			st := []backend.State{backend.StateSucceeded, backend.StateFailed, backend.StateCancelled}[rng.IntN(3)]
			outs = append(outs, backend.Outcome{Lease: j.Lease(), State: st, FinishedAt: fin,
				Attempt: backend.Attempt{Number: 1, StartedAt: fin.Add(-time.Duration(rng.IntN(5000)) * time.Millisecond),
					FinishedAt: fin, Worker: "w", Outcome: string(st)}})
		}
		if errs, err := b.Complete(ctx, outs); err != nil {
			t.Fatal(err)
		} else {
			for _, e := range errs {
				if e != nil {
					t.Fatal(e)
				}
			}
		}
	}
	var hourRows int
	if err := b.read.QueryRowContext(ctx, `SELECT count(*) FROM nuvom_hours`).Scan(&hourRows); err != nil {
		t.Fatal(err)
	}
	if hourRows == 0 || hourRows > 5*3*2 {
		t.Fatalf("nuvom_hours has %d rows, want 1..30 (5 hours x 3 queues x 2 tasks)", hourRows)
	}
	for _, g := range []backend.Grouping{backend.GroupNone, backend.GroupQueue, backend.GroupTask, backend.GroupAll} {
		for _, step := range []time.Duration{time.Hour, 2 * time.Hour} {
			f := backend.MinuteFilter{Since: base, Step: step, Group: g}
			fromHours, err := b.Minutes(ctx, f) // whole hours: the roll-up
			if err != nil {
				t.Fatal(err)
			}
			f.Until = base.Add(6*time.Hour + time.Minute) // not an hour's start: the minutes
			fromMinutes, err := b.Minutes(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(fromHours) == 0 {
				t.Fatalf("group %v step %v: no rows", g, step)
			}
			if d := cmp.Diff(fromMinutes, fromHours); d != "" {
				t.Errorf("group %v step %v: hours differ from minutes (-minutes +hours):\n%s", g, step, d)
			}
		}
	}
	// And whole hours are really read from the roll-up.
	if _, err := b.write.ExecContext(ctx, `UPDATE nuvom_hours SET succeeded = succeeded + 1000`); err != nil {
		t.Fatal(err)
	}
	got, err := b.Minutes(ctx, backend.MinuteFilter{Since: base, Step: time.Hour, Group: backend.GroupAll})
	if err != nil || len(got) == 0 || got[0].Succeeded < 1000 {
		t.Fatalf("a whole-hour chart did not read nuvom_hours: %+v, %v", got, err)
	}
}
