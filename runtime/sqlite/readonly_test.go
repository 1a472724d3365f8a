package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nuvom/nuvom/runtime/backend"
)

// TestReadOnly: WithReadOnly reads an existing database, refuses writes, and
// creates nothing when the database is missing.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub dir#1", "nuvom.db")
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	jobs := newJobs(0, 3, "default")
	mustEnqueue(t, b, jobs)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := Open(path, WithReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	j, err := ro.Get(ctx, jobs[1].ID)
	if err != nil || j.ID != jobs[1].ID {
		t.Fatalf("Get: %v %v", j, err)
	}
	stats, err := ro.Stats(ctx, t0)
	if err != nil || len(stats) != 1 || stats[0].Count != 3 {
		t.Fatalf("Stats: %+v %v", stats, err)
	}
	if _, err := ro.Enqueue(ctx, newJobs(10, 1, "default")); err == nil {
		t.Fatal("a read-only backend enqueued")
	}
	if _, err := ro.Purge(ctx, backend.PurgeFilter{}); err == nil {
		t.Fatal("a read-only backend purged")
	}

	missing := filepath.Join(t.TempDir(), "none", "nuvom.db")
	if _, err := Open(missing, WithReadOnly()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing database: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a read-only open created %s", filepath.Dir(missing))
	}
}
