package reliability

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
)

// TestExternalWriteLockSQLite holds a SQLite database's write lock from
// another process (BEGIN IMMEDIATE, as the sqlite3 shell or a backup tool
// does) while a worker runs jobs, until the leases of every job the worker
// holds have ended in the database and its heartbeat has failed; then it lets
// go. The worker had kept those jobs and their outcomes all along, so every
// job succeeds at its first attempt and runs once: none is recorded as lost.
// Before, the worker's own recovery pass could get through first once the
// lock was gone and take the jobs from it.
func TestExternalWriteLockSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("holds a database locked past the busy timeout")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "nuvom.db")
	b := openSQLite(t, path)
	// 50 short jobs, which the test waits for, then 100 of 400 ms: about 5 s
	// of work left when the test takes the lock, so that the lock catches
	// the worker holding jobs however slowly the test itself is scheduled.
	const total = 150
	ids := enqueueWork(t, b, total, 2, func(i int) int {
		if i < 50 {
			return 20 + i%30
		}
		return 400
	})
	cfg := workerConfig{
		Backend: "sqlite", Path: path, ExecLog: filepath.Join(dir, "executions.log"),
		Concurrency: 8, LeaseFor: 2 * time.Second, LogLevel: "info",
		// Each write the lock blocks fails after this; the leases end meanwhile.
		BusyTimeout: 500 * time.Millisecond,
		// Frequent recovery passes: one is likely to be what waits for the
		// lock when it goes.
		RecoverEvery: 10 * time.Millisecond,
	}
	w := startWorker(t, "worker", "worker", cfg)
	waitFor(t, 5*time.Minute, "the worker to run 50 jobs", func() (bool, error) {
		n, err := countLines(cfg.ExecLog)
		return n >= 50, err
	})

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 60000"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("take the write lock: %v", err)
	}
	locked := true
	defer func() {
		if locked {
			_, _ = conn.ExecContext(ctx, "ROLLBACK")
		}
	}()
	// Reads go on under the lock (WAL): wait until the worker has failed to
	// extend its leases and every lease it holds has ended in the database.
	var held int
	waitFor(t, 5*time.Minute, "the worker's leases to end under the lock", func() (bool, error) {
		if _, ok := lineWith(w.output(), "extend leases", "locked"); !ok {
			return false, nil
		}
		running, err := b.List(ctx, nuvom.ListFilter{States: []nuvom.State{nuvom.StateRunning}, Limit: total})
		if err != nil {
			return false, err
		}
		now := time.Now()
		for _, j := range running {
			if !j.LeaseUntil.Before(now) {
				return false, nil
			}
		}
		held = len(running)
		return true, nil
	})
	if held == 0 {
		t.Fatal("the lock caught the worker holding no job: the test proves nothing")
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatalf("let go of the write lock: %v", err)
	}
	locked = false
	t.Logf("the worker held %d jobs whose leases ended under the lock", held)

	waitFor(t, 5*time.Minute, "every job to reach a final state", allFinal(b, total))
	w.stop()
	w.mustExitOK(5 * time.Minute)
	jobs := listAll(t, b, total)
	runs := runsPerJob(readExecutions(t, cfg.ExecLog))
	for _, id := range ids {
		j := jobs[id]
		if j == nil {
			t.Errorf("job %s is missing", id)
			continue
		}
		if j.State != nuvom.StateSucceeded || len(j.Attempts) != 1 || runs[id] != 1 {
			t.Errorf("job %s: %s, ran %d times, attempts %s; want succeeded, run once", id, j.State, runs[id], describeAttempts(j.Attempts))
		}
	}
}

// describeAttempts lists each attempt's number, outcome and error.
func describeAttempts(as []nuvom.Attempt) string {
	s := ""
	for _, a := range as {
		s += fmt.Sprintf("[%d %s %s]", a.Number, a.Outcome, a.Error)
	}
	return s
}
