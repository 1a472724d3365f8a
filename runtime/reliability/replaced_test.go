package reliability

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// TestReplacedDatabaseSQLite deletes a worker's database file while the
// worker runs and creates a new one at its path, with jobs of its own (an
// operator "starting over", or restoring a copy). SQLite keeps writing to the
// file it opened, so the worker used to go on silently with the deleted
// file, never running the new file's jobs; it now says so in its log, claims
// nothing from the deleted file, and a worker started afresh runs the new
// file's jobs.
func TestReplacedDatabaseSQLite(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "nuvom.db")
	old, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	enqueueWork(t, old, 200, 0, func(int) int { return 20 })
	cfg := workerConfig{
		Backend: "sqlite", Path: db, ExecLog: filepath.Join(dir, "executions.log"),
		Concurrency: 2, LeaseFor: 20 * time.Second, Poll: 50 * time.Millisecond, LogLevel: "warn",
	}
	w := startWorker(t, "worker", "worker", cfg)
	waitFor(t, 5*time.Minute, "the worker to run 5 jobs", func() (bool, error) {
		n, err := countLines(cfg.ExecLog)
		return n >= 5, err
	})
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(db + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			if runtime.GOOS == "windows" {
				t.Skipf("an open file cannot be deleted here: %v", err)
			}
			t.Fatal(err)
		}
	}
	fresh := openSQLite(t, db)
	ids := enqueueWork(t, fresh, 3, 0, func(int) int { return 1 })

	waitFor(t, 5*time.Minute, "the worker to log that its database file was replaced", func() (bool, error) {
		_, ok := lineWith(w.output(), "claim jobs", "deleted or replaced")
		return ok, nil
	})
	ranBefore := len(runsPerJob(readExecutions(t, cfg.ExecLog)))
	w.stop()
	if err := w.exited(5 * time.Minute); err != nil {
		t.Logf("the first worker exited with %v", err)
	}

	cfg2 := cfg
	cfg2.Burst = true
	w2 := startWorker(t, "worker2", "worker", cfg2)
	w2.mustExitOK(5 * time.Minute)
	for _, id := range ids {
		j, err := fresh.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != nuvom.StateSucceeded || len(j.Attempts) != 1 {
			t.Errorf("job %s of the new file: %s after attempts %+v, want succeeded at its first", id, j.State, j.Attempts)
		}
	}
	t.Logf("the first worker ran %d jobs of the deleted file", ranBefore)
}
