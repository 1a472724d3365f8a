package redis

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
)

// TestEnqueuePendingStepsStoreTheSame: a batch holding pending workflow
// steps (indexed by state only) is stored as the general script stores it,
// key for key, though its queues and tasks are registered (the lean scripts
// would otherwise take it); so is a single pending step.
func TestEnqueuePendingStepsStoreTheSame(t *testing.T) {
	srv := redistest.Start(t)
	fast, slow := openTest(t, srv), openTest(t, srv)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	mk := func(st backend.State) *backend.Job {
		return &backend.Job{ID: ulid.Make().String(), Task: "t", Signature: "s", Queue: "q", State: st, MaxAttempts: 1, RunAt: now, CreatedAt: now}
	}
	// The same jobs for both (their prefixes differ), so the dumps compare.
	warm := []*backend.Job{mk(backend.StateQueued)}
	batch := []*backend.Job{mk(backend.StateQueued), mk(backend.StatePending), mk(backend.StatePending)}
	single := []*backend.Job{mk(backend.StatePending)}
	if !plainBatch(batch) {
		t.Fatal("the batch is not plain: the test would not reach the plain script's rule")
	}
	for _, b := range []*Backend{fast, slow} {
		if _, err := b.Enqueue(ctx, warm); err != nil {
			t.Fatal(err)
		}
		forget := func() {
			if b == slow {
				b.regMu.Lock()
				clear(b.reg) // the general script
				b.regMu.Unlock()
			}
		}
		forget()
		if _, err := b.enqueue(ctx, batch, true, nil, ""); err != nil {
			t.Fatal(err)
		}
		forget()
		if _, err := b.enqueue(ctx, single, true, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	a, b := dumpKeys(t, fast), dumpKeys(t, slow)
	if !slices.Equal(a, b) {
		t.Fatalf("the fast path stored\n%v\nthe general script stored\n%v", a, b)
	}
}
