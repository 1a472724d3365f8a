package redis

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

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

// TestSingleDuplicateLeavesNoLocation: a one-job enqueue records the job's
// location before its unique key is checked; a duplicate must take that
// record back, or its id could never be enqueued again (and Get would look
// for it).
func TestSingleDuplicateLeavesNoLocation(t *testing.T) {
	srv := redistest.Start(t)
	b := openTest(t, srv)
	ctx := context.Background()
	now := time.Now()
	first, second := benchJobs(1, now)[0], benchJobs(1, now)[0]
	for _, j := range []*backend.Job{first, second} {
		j.UniqueKey, j.UniqueUntil = "k", now.Add(time.Hour)
	}
	if _, err := b.Enqueue(ctx, []*backend.Job{first}); err != nil {
		t.Fatal(err)
	}
	res, err := b.Enqueue(ctx, []*backend.Job{second})
	if err != nil || !res[0].Duplicate || res[0].ID != first.ID {
		t.Fatalf("second enqueue: %+v, %v; want a duplicate of %s", res, err, first.ID)
	}
	if n, err := b.c.HExists(ctx, b.loc, second.ID).Result(); err != nil || n {
		t.Fatalf("location of the duplicate %s recorded: %v, %v", second.ID, n, err)
	}
	second.UniqueKey, second.UniqueUntil = "", time.Time{}
	if res, err := b.Enqueue(ctx, []*backend.Job{second}); err != nil || res[0].Duplicate {
		t.Fatalf("enqueue %s again without a key: %+v, %v", second.ID, res, err)
	}
}

// TestOpenRefusesTheEarlierLayout: data written by the layout that kept an
// index of every id (P all) is refused at Open, naming the queue, the key
// and what to do, instead of being misread; a fresh prefix on the same
// server opens.
func TestOpenRefusesTheEarlierLayout(t *testing.T) {
	srv := redistest.Start(t)
	b := openTest(t, srv)
	ctx := context.Background()
	if _, err := b.Enqueue(ctx, benchJobs(3, time.Now())); err != nil {
		t.Fatal(err)
	}
	again, err := Open(srv.URL(0), WithPrefix(b.o.prefix))
	if err != nil {
		t.Fatalf("reopen data of this layout: %v", err)
	}
	again.Close()
	// What the earlier layout left beside its records.
	if err := b.c.ZAdd(ctx, b.qp("default")+"all", goredis.Z{Member: "01JOLDJOB"}).Err(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(srv.URL(0), WithPrefix(b.o.prefix))
	if err == nil {
		t.Fatal("Open accepted data of the earlier layout")
	}
	for _, want := range []string{`queue "default"`, b.qp("default") + "all", "?prefix="} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	other, err := Open(srv.URL(0), WithPrefix("fresh"))
	if err != nil {
		t.Fatalf("a fresh prefix on the same server: %v", err)
	}
	other.Close()
}
