package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// TestQuarantinedStepSettlesItsChildren: a workflow step whose row a claim
// (or a lease recovery) quarantines as unreadable ends like a failed step:
// its dependents are cancelled, in the same transaction, instead of staying
// pending for ever.
func TestQuarantinedStepSettlesItsChildren(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit bool // through the claim of limited tasks
	}{{"claim", false}, {"limited claim", true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := openTest(t)
			ctx := context.Background()
			now := backendtest.Epoch()
			a := backendtest.NewJob(backendtest.ID(1), "t", now)
			c := backendtest.NewJob(backendtest.ID(2), "u", now)
			c.State = backend.StatePending
			wf := &backend.Workflow{ID: backendtest.ID(3), CreatedAt: now, Steps: []backend.Step{
				{Job: a}, {Job: c, Parents: []backend.Edge{{Parent: a.ID}}},
			}}
			if err := b.EnqueueWorkflow(ctx, wf); err != nil {
				t.Fatal(err)
			}
			if tc.limit {
				if err := b.DeclareLimits(ctx, map[string]backend.Limit{"t": {MaxConcurrency: 5}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := b.write.Exec(`UPDATE jobs SET meta = x'ff' WHERE id = ?`, a.ID); err != nil {
				t.Fatal(err)
			}
			jobs, err := b.Claim(ctx, backend.ClaimRequest{Tasks: []string{"t"}, Limit: 10, Worker: "w", Now: now, LeaseFor: time.Minute})
			if err != nil || len(jobs) != 0 {
				t.Fatalf("claim = %v, %v; want none (the step is unreadable)", jobs, err)
			}
			if got := b.mustGet(t, a.ID).State; got != backend.StateQuarantined {
				t.Fatalf("step a is %s, want quarantined", got)
			}
			if got := b.mustGet(t, c.ID).State; got != backend.StateCancelled {
				t.Fatalf("child of the quarantined step is %s, want cancelled", got)
			}
		})
	}
}

func (b *Backend) mustGet(t *testing.T, id string) *backend.Job {
	t.Helper()
	j, err := b.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}
