package redis

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
)

// TestListMergesStateIndexes: with no id index, List and Search merge the
// state indexes. Jobs spread over six states, with run-at order opposite to
// id order, must come back newest id first, exactly, for limits below and
// across the 256-id chunk, with a task filter, and page by page in Search;
// and no index of every id is written.
func TestListMergesStateIndexes(t *testing.T) {
	srv := redistest.Start(t)
	b := openTest(t, srv)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	const n = 1500
	jobs := benchJobs(n, now)
	for i, j := range jobs {
		j.RunAt = now.Add(-time.Duration(i) * time.Millisecond) // newer ids run earlier
		if i%5 == 0 {
			j.Task = "other"
		}
		if i%7 == 0 {
			j.State, j.RunAt = backend.StateScheduled, now.Add(time.Hour+time.Duration(n-i)*time.Second)
		}
	}
	for k := 0; k < n; k += 500 {
		if _, err := b.Enqueue(ctx, jobs[k:k+500]); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := b.Claim(ctx, backend.ClaimRequest{Limit: 600, Worker: "w", Now: now.Add(time.Minute), LeaseFor: time.Hour})
	if err != nil || len(claimed) != 600 {
		t.Fatalf("claimed %d jobs, %v; want 600", len(claimed), err)
	}
	var outs []backend.Outcome
	for i, j := range claimed[:300] {
		o := backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: now.Add(time.Minute)}
		if i%2 == 1 {
			o.State, o.Error = backend.StateFailed, "boom"
		}
		outs = append(outs, o)
	}
	if _, err := b.Complete(ctx, outs); err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs[:40] {
		if err := b.Cancel(ctx, j.ID, now); err != nil && !strings.Contains(err.Error(), "not") {
			t.Fatal(err)
		}
	}
	states := map[backend.State]int{}
	want := make([]string, 0, n)
	task := map[string]string{}
	for _, j := range jobs {
		want = append(want, j.ID)
		task[j.ID] = j.Task
	}
	slices.Sort(want)
	slices.Reverse(want)
	for _, limit := range []int{1, 7, 255, 256, 257, 600, n + 10} {
		got, err := b.List(ctx, backend.ListFilter{Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(got))
		for i, j := range got {
			ids[i] = j.ID
			if limit > n {
				states[j.State]++
			}
		}
		if w := want[:min(limit, n)]; !slices.Equal(ids, w) {
			t.Fatalf("List(limit %d) = %d ids, want %d, newest first (first difference at %d)", limit, len(ids), len(w), firstDiff(ids, w))
		}
	}
	if len(states) < 6 {
		t.Fatalf("the jobs are in %d states (%v), want six: the test would not merge indexes", len(states), states)
	}
	var other []string
	for _, id := range want {
		if task[id] == "other" {
			other = append(other, id)
		}
	}
	got, err := b.List(ctx, backend.ListFilter{Task: "other", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(got))
	for i, j := range got {
		ids[i] = j.ID
	}
	if !slices.Equal(ids, other) {
		t.Fatalf("List(task other) = %d ids, want %d (first difference at %d)", len(ids), len(other), firstDiff(ids, other))
	}
	var paged []string
	for after := ""; ; {
		page, err := b.Search(ctx, backend.JobQuery{Limit: 97, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Jobs {
			paged = append(paged, j.ID)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("Search pages gave %d ids, want %d (first difference at %d)", len(paged), len(want), firstDiff(paged, want))
	}
	if n := b.c.Exists(ctx, b.qp("default")+"all").Val(); n != 0 {
		t.Fatal("an index of every id (P all) was written")
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestStatsOldestQueuedAcrossPriorities: the oldest run-at of a queue's
// queued jobs comes from its ready sets, ordered by priority first; the
// oldest job may be in any task and any priority, not the first of a set.
func TestStatsOldestQueuedAcrossPriorities(t *testing.T) {
	srv := redistest.Start(t)
	b := openTest(t, srv)
	ctx := context.Background()
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(q, task string, prio int, runAt time.Time) *backend.Job {
		return &backend.Job{ID: ulid.Make().String(), Task: task, Signature: "s", Queue: q, State: backend.StateQueued,
			Priority: prio, MaxAttempts: 1, RunAt: runAt, CreatedAt: base}
	}
	cases := []struct {
		q      string
		jobs   []*backend.Job
		oldest time.Time
	}{
		{"q1", []*backend.Job{mk("q1", "a", 5, base.Add(3*time.Hour)), mk("q1", "a", 0, base.Add(2*time.Hour)),
			mk("q1", "b", 9, base.Add(time.Hour)), mk("q1", "b", -3, base.Add(time.Minute)), mk("q1", "b", -3, base.Add(time.Hour)),
			mk("q1", "a", -9, base.Add(time.Second))}, base.Add(time.Second)},
		{"q2", []*backend.Job{mk("q2", "a", 0, base.Add(time.Hour)), mk("q2", "a", 1, base.Add(-time.Hour))}, base.Add(-time.Hour)},
		{"q3", []*backend.Job{mk("q3", "x", 3, base)}, base},
	}
	for _, c := range cases {
		for _, j := range c.jobs { // one at a time: the single enqueue path
			if _, err := b.Enqueue(ctx, []*backend.Job{j}); err != nil {
				t.Fatal(err)
			}
		}
	}
	stats, err := b.Stats(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		found := false
		for _, s := range stats {
			if s.Queue == c.q && s.State == backend.StateQueued {
				found = true
				if s.Count != len(c.jobs) || !s.OldestRunAt.Equal(c.oldest) {
					t.Errorf("Stats of %s: %d queued, oldest run-at %s; want %d, %s", c.q, s.Count, s.OldestRunAt, len(c.jobs), c.oldest)
				}
			}
		}
		if !found {
			t.Errorf("Stats has no queued jobs for %s", c.q)
		}
	}
}
