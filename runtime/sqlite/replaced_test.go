package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// removeDatabase deletes the database file and its WAL and index while it
// is open; Windows does not allow that, so the test is skipped there.
func removeDatabase(t *testing.T, path string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			if runtime.GOOS == "windows" {
				t.Skipf("an open file cannot be deleted here: %v", err)
			}
			t.Fatal(err)
		}
	}
}

// A Backend whose database file was deleted, or replaced by another file,
// refuses to enqueue and to claim, saying so: SQLite would write on to the
// deleted file, so an enqueue it acknowledged would be lost, and a worker
// would never see the jobs of the file now at the path.
func TestDeletedOrReplacedFileIsRefused(t *testing.T) {
	ctx := context.Background()
	for _, replace := range []bool{false, true} {
		name := map[bool]string{false: "deleted", true: "replaced"}[replace]
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "nuvom.db")
			old, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close()
			job := func() *backend.Job {
				now := time.Now()
				return &backend.Job{ID: ulid.Make().String(), Task: "t", Signature: "sha256:0011223344556677",
					Args: []byte{0x90}, Queue: "default", State: backend.StateQueued, MaxAttempts: 1, RunAt: now,
					TimeoutPolicy: backend.TimeoutFail, CreatedAt: now}
			}
			if _, err := old.Enqueue(ctx, []*backend.Job{job()}); err != nil {
				t.Fatal(err)
			}
			removeDatabase(t, path)
			time.Sleep(20 * time.Millisecond) // past the last check's checkEvery (10 ms): the next call looks
			if replace {
				fresh, err := sqlite.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer fresh.Close()
			}
			for _, jobs := range [][]*backend.Job{{job()}, {job(), job()}} { // one fresh job takes a path of its own
				if _, err := old.Enqueue(ctx, jobs); !errors.Is(err, sqlite.ErrFileReplaced) {
					t.Errorf("enqueue of %d jobs into the %s file: err %v, want ErrFileReplaced", len(jobs), name, err)
				}
			}
			_, err = old.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Now: time.Now(), LeaseFor: time.Minute})
			if !errors.Is(err, sqlite.ErrFileReplaced) {
				t.Errorf("claim from the %s file: err %v, want ErrFileReplaced", name, err)
			}
		})
	}
}
