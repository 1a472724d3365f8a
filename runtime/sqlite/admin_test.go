package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// A bulk action on every failed job of a task pages through more than one
// page of the selection.
func TestBulkRetryOfManyFailedJobs(t *testing.T) {
	b := openTest(t)
	ctx := context.Background()
	const n = 1100
	jobs := newJobs(1, n, "default")
	other := newJobs(n+1, 10, "default")
	for _, j := range other {
		j.Task = "other"
	}
	mustEnqueue(t, b, append(jobs, other...))
	now := t0.Add(time.Second)
	for {
		c, err := b.Claim(ctx, backend.ClaimRequest{Limit: 256, Worker: "w", Now: now, LeaseFor: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if len(c) == 0 {
			break
		}
		outs := make([]backend.Outcome, len(c))
		for i, j := range c {
			outs[i] = backend.Outcome{Lease: j.Lease(), State: backend.StateFailed, FinishedAt: now, Error: "boom"}
		}
		if _, err := b.Complete(ctx, outs); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.Bulk(ctx, backend.BulkRetry, backend.Selection{State: backend.StateFailed, Task: "t"}, now)
	if err != nil || got != n {
		t.Fatalf("bulk retry of the failed jobs of t = %d, %v; want %d", got, err, n)
	}
	p, err := b.Search(ctx, backend.JobQuery{States: []backend.State{backend.StateFailed}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Jobs) != len(other) {
		t.Fatalf("failed jobs left: %d, want the %d of task other", len(p.Jobs), len(other))
	}
	for _, j := range p.Jobs {
		if j.Task != "other" {
			t.Fatalf("a failed job of task %s was left", j.Task)
		}
	}
}

// A search by argument text reads at most backend.TextScanLimit jobs per
// page: a match older than that is found on a later page, through Next.
func TestTextSearchScansABoundedPage(t *testing.T) {
	b := openTest(t)
	ctx := context.Background()
	n := backend.TextScanLimit + 10
	jobs := make([]*backend.Job, n)
	for i := range jobs {
		jobs[i] = backendtest.NewJob(backendtest.ID(uint64(i+1)), "t", t0)
	}
	jobs[0].Args = []byte("the needle")
	for i := 0; i < n; i += 5000 {
		mustEnqueue(t, b, jobs[i:min(i+5000, n)])
	}
	p, err := b.Search(ctx, backend.JobQuery{Text: "needle"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Jobs) != 0 || !p.Scanned || p.Next == "" {
		t.Fatalf("first page = %d jobs, scanned %t, next %q; want none, scanned, a cursor", len(p.Jobs), p.Scanned, p.Next)
	}
	p, err = b.Search(ctx, backend.JobQuery{Text: "needle", After: p.Next})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Jobs) != 1 || p.Jobs[0].ID != jobs[0].ID || p.Next != "" {
		t.Fatalf("second page = %v, next %q; want the needle and the end", p.Jobs, p.Next)
	}
}
