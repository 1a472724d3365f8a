package redis

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
)

// TestListStatesFromIndexes: List with a state filter reads the ids of the
// few jobs in those states from the state indexes (not every record); its
// answer must be the one walking every job gives: the same jobs, newest
// first, within the limit, with the task and since filters applied.
func TestListStatesFromIndexes(t *testing.T) {
	srv := redistest.Start(t)
	b := openTest(t, srv)
	ctx := context.Background()
	now := time.Now()
	jobs := benchJobs(3000, now)
	for i, j := range jobs {
		if i%3 == 0 {
			j.Task = "other"
		}
		j.CreatedAt = now.Add(time.Duration(i) * time.Millisecond)
	}
	if _, err := b.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	claimed, err := b.Claim(ctx, backend.ClaimRequest{Limit: 40, Worker: "w", Now: now.Add(time.Hour), LeaseFor: time.Hour})
	if err != nil || len(claimed) != 40 {
		t.Fatalf("claimed %d jobs, err %v; want 40", len(claimed), err)
	}
	everything, err := b.List(ctx, backend.ListFilter{Limit: 10000})
	if err != nil || len(everything) != 3000 {
		t.Fatalf("listed %d jobs, err %v; want 3000", len(everything), err)
	}
	for _, f := range []backend.ListFilter{
		{States: []backend.State{backend.StateRunning}, Limit: 1000},
		{States: []backend.State{backend.StateRunning}, Limit: 7},
		{States: []backend.State{backend.StateRunning, backend.StateRunning}, Task: "other", Limit: 1000},
		{States: []backend.State{backend.StateRunning, backend.StateQueued}, Limit: 50},
		{States: []backend.State{backend.StateQueued}, Since: now.Add(2990 * time.Millisecond), Limit: 1000},
		{States: []backend.State{backend.StateSucceeded}, Limit: 1000},
	} {
		got, err := b.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, j := range everything {
			if slices.Contains(f.States, j.State) && (f.Task == "" || j.Task == f.Task) &&
				!j.CreatedAt.Before(backend.ClampTime(f.Since)) && len(want) < f.Limit {
				want = append(want, j.ID)
			}
		}
		var ids []string
		for _, j := range got {
			ids = append(ids, j.ID)
		}
		if !slices.Equal(ids, want) {
			t.Errorf("List(%+v) = %d jobs %v..., want %d jobs %v...", f, len(ids), ids[:min(3, len(ids))], len(want), want[:min(3, len(want))])
		}
	}
}
