package redis

import (
	"context"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// BenchmarkGetWorkflow reads a workflow of 1,000 steps (a fan-out of 999
// and its fan-in), as `nuvom workflow show` and the dashboard do.
func BenchmarkGetWorkflow(b *testing.B) {
	be, _ := openBench(b)
	ctx := context.Background()
	now := time.Now()
	const n = 1000
	wf := backendtest.FanIn(n, now)
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
