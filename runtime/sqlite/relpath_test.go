package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// A Backend opened with a relative path keeps using the file it opened after
// the process changes its working directory: SQLite resolved the path when it
// opened it, so neither the replaced-file check nor a connection opened
// later may look the path up again from the new directory.
func TestRelativePathSurvivesChdir(t *testing.T) {
	ctx := context.Background()
	dir, elsewhere := t.TempDir(), t.TempDir()
	t.Chdir(dir)
	b, err := sqlite.Open("nuvom.db")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	job := func() *backend.Job {
		now := time.Now()
		return &backend.Job{ID: ulid.Make().String(), Task: "t", Signature: "sha256:0011223344556677",
			Args: []byte{0x90}, Queue: "default", State: backend.StateQueued, MaxAttempts: 1, RunAt: now,
			TimeoutPolicy: backend.TimeoutFail, CreatedAt: now}
	}
	first := job()
	if _, err := b.Enqueue(ctx, []*backend.Job{first}); err != nil {
		t.Fatal(err)
	}
	t.Chdir(elsewhere)
	time.Sleep(20 * time.Millisecond) // past the last check's checkEvery (10 ms): the next call looks
	if _, err := b.Enqueue(ctx, []*backend.Job{job(), job()}); err != nil {
		t.Fatalf("enqueue after a change of working directory: %v", err)
	}
	if _, err := b.Get(ctx, first.ID); err != nil { // the read pool's first connection
		t.Fatalf("get after a change of working directory: %v", err)
	}
	got, err := b.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Now: time.Now().Add(time.Second), LeaseFor: time.Minute})
	if err != nil {
		t.Fatalf("claim after a change of working directory: %v", err)
	}
	if len(got) != 3 {
		t.Errorf("claimed %d jobs, want the 3 enqueued", len(got))
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "nuvom.db")); err == nil {
		t.Errorf("a database file was created in the new working directory")
	}
}
