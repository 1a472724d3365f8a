package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom/runtime/backend"
)

// BenchmarkGetWorkflow reads a workflow of 1,000 steps (a fan-out of 999
// and its fan-in), as `nuvom workflow show` and the dashboard do.
func BenchmarkGetWorkflow(b *testing.B) {
	be, _ := openBench(b)
	ctx := context.Background()
	now := time.Now()
	const n = 1000
	steps := make([]backend.Step, 0, n)
	var edges []backend.Edge
	for i := range n - 1 {
		j := &backend.Job{ID: ulid.Make().String(), Task: fmt.Sprintf("t%d", i%3), Queue: "flow", State: backend.StateQueued,
			MaxAttempts: 1, RunAt: now, CreatedAt: now}
		steps = append(steps, backend.Step{Job: j})
		edges = append(edges, backend.Edge{Parent: j.ID})
	}
	in := &backend.Job{ID: ulid.Make().String(), Task: "merge", Queue: "flow", State: backend.StatePending,
		MaxAttempts: 1, RunAt: now, CreatedAt: now}
	steps = append(steps, backend.Step{Job: in, Parents: edges, Input: backend.InputResults})
	wf := &backend.Workflow{ID: ulid.Make().String(), Name: "big", CreatedAt: now, Steps: steps}
	if err := be.EnqueueWorkflow(ctx, wf); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		info, err := be.GetWorkflow(ctx, wf.ID)
		if err != nil || len(info.Steps) != n {
			b.Fatalf("GetWorkflow = %d steps, %v", len(info.Steps), err)
		}
	}
}
