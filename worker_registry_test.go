package nuvom_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// waitFor polls cond until it holds; the deadline is only a hang guard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A running worker keeps its row in the store's registry and removes it when
// it stops; a paused queue's jobs wait while the worker runs others, and run
// once the queue is resumed.
func TestWorkerRegistryAndPausedQueue(t *testing.T) {
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "nuvom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	s := spec("work", nuvom.TaskOptions{})
	reg := registry(t, def(s, ok))
	w := newWorker(t, b, reg, nuvom.WorkerOptions{ID: "reg-w", Concurrency: 3, Version: "v9", ManifestHash: "mh",
		PollInterval: 10 * time.Millisecond})
	if err := b.SetPaused(ctx, "slow", true); err != nil {
		t.Fatal(err)
	}
	// The paused queue's job has the higher priority: a claim that took the
	// other one skipped it.
	held := enqueue(t, b, s, nuvom.Queue("slow"), nuvom.Priority(9))
	free := enqueue(t, b, s)
	stop := start(t, w)

	var row backend.WorkerInfo
	waitFor(t, "the worker's registry row", func() bool {
		ws, err := b.Workers(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ws {
			if r.ID == "reg-w" {
				row = r
				return true
			}
		}
		return false
	})
	host, _ := os.Hostname()
	if row.Host != host || row.PID != os.Getpid() || row.Version != "v9" || row.ManifestHash != "mh" ||
		row.Concurrency != 3 || row.Gone || row.StartedAt.IsZero() {
		t.Fatalf("registry row = %+v", row)
	}

	if j := waitFinal(t, b, free); j.State != nuvom.StateSucceeded {
		t.Fatalf("job of an active queue: %s", j.State)
	}
	if j := getJob(t, b, held); j.State != nuvom.StateQueued {
		t.Fatalf("job of the paused queue is %s, want queued (skipped)", j.State)
	}
	if err := b.SetPaused(ctx, "slow", false); err != nil {
		t.Fatal(err)
	}
	if j := waitFinal(t, b, held); j.State != nuvom.StateSucceeded {
		t.Fatalf("job of the resumed queue: %s", j.State)
	}
	stop()
	ws, err := b.Workers(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ws {
		if r.ID == "reg-w" {
			t.Fatalf("a stopped worker's row is still registered: %+v", r)
		}
	}
}
