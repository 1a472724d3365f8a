package reliability

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/file"
)

// TestCrashSQLite kills a worker process with kill -9 in the middle of a
// SQLite queue of 5,000 jobs and starts another: every job succeeds, none is
// lost, only the jobs that were running at the kill run twice, and none runs
// more than twice.
func TestCrashSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes over 5,000 jobs")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "nuvom.db")
	crashTest(t, openSQLite(t, db), "sqlite", db, 5000, 1000)
}

// TestCrashFile is TestCrashSQLite on the file backend, with fewer jobs.
func TestCrashFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes over 1,000 jobs")
	}
	dir := t.TempDir()
	qdir := filepath.Join(dir, "queue")
	// The test's own writes need no fsync; the workers use the default.
	b, err := file.Open(qdir, file.WithSync(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	// The locks the killed process held are free at once: there is no
	// stale-lock age to shorten.
	crashTest(t, b, "file", qdir, 1000, 250)
}

// crashTest enqueues total jobs in b (the backend kind at path), kills a
// worker process once killAfter executions are logged, starts another and
// checks that every job succeeded, none was lost and only the jobs running
// at the kill ran twice.
func crashTest(t *testing.T, b nuvom.Backend, kind, path string, total, killAfter int) {
	dir := t.TempDir()
	// Retries permit a run lost at the kill to be retried (twice, so that a
	// third run would show up as such rather than as a failed job).
	ids := enqueueWork(t, b, total, 2, func(i int) int { return 1 + i%5 })

	cfg := workerConfig{
		Backend: kind, Path: path, ExecLog: filepath.Join(dir, "executions.log"),
		Concurrency: 16, LeaseFor: 2 * time.Second, Poll: 100 * time.Millisecond, LogLevel: "warn",
	}
	w1 := startWorker(t, "worker1", "worker", cfg)
	waitFor(t, 5*time.Minute, fmt.Sprintf("the first worker to log %d executions", killAfter), func() (bool, error) {
		n, err := countLines(cfg.ExecLog)
		return n >= killAfter, err
	})
	w1.kill9()

	// Nothing has touched the database since the kill: the jobs in state
	// running now are exactly those the dead worker held.
	runningJobs, err := b.List(context.Background(), nuvom.ListFilter{States: []nuvom.State{nuvom.StateRunning}, Limit: total})
	if err != nil {
		t.Fatalf("list running jobs after the kill: %v", err)
	}
	running := make(map[string]bool, len(runningJobs))
	for _, j := range runningJobs {
		running[j.ID] = true
	}
	atKill, err := countStates(b)
	if err != nil {
		t.Fatal(err)
	}
	ranBeforeKill := len(readExecutions(t, cfg.ExecLog))
	t.Logf("at the kill: %d executions logged, states %v", ranBeforeKill, atKill)
	if len(running) == 0 || atKill[nuvom.StateSucceeded] >= total {
		t.Fatalf("the kill landed when no job was running (states %v): the test proves nothing", atKill)
	}

	// The second worker holds its own leases longer (a stall of this machine
	// must not make its jobs look lost) and looks for expired ones often, so
	// it recovers the dead worker's jobs soon after their 2 s leases end.
	cfg2 := cfg
	cfg2.LeaseFor, cfg2.RecoverEvery = 20*time.Second, 250*time.Millisecond
	start := time.Now()
	w2 := startWorker(t, "worker2", "worker", cfg2)
	waitFor(t, 5*time.Minute, "every job to reach a final state after the restart", allFinal(b, total))
	t.Logf("the second worker finished the queue in %s", time.Since(start).Round(time.Millisecond))
	w2.stop()
	w2.mustExitOK(5 * time.Minute)

	jobs := listAll(t, b, total)
	runs := runsPerJob(readExecutions(t, cfg.ExecLog))
	var twice []string
	for _, id := range ids {
		j := jobs[id]
		switch {
		case j == nil:
			t.Errorf("job %s is missing from the database", id)
			continue
		case j.State != nuvom.StateSucceeded:
			t.Errorf("job %s ended %s (attempt %d): %s", id, j.State, j.Attempt, j.Error)
		}
		n := runs[id]
		switch {
		case n == 0:
			t.Errorf("job %s is %s but never ran: lost", id, j.State)
		case n > 2:
			t.Errorf("job %s ran %d times; at most twice is allowed", id, n)
		case n == 2:
			twice = append(twice, id)
			if !running[id] {
				t.Errorf("job %s ran twice but was not running at the kill", id)
			}
		}
		// The history tells the same story: one lost attempt exactly for the
		// jobs the dead worker held.
		lost := 0
		for _, a := range j.Attempts {
			if a.Outcome == nuvom.OutcomeLost {
				lost++
			}
		}
		if want := map[bool]int{true: 1, false: 0}[running[id]]; lost != want {
			t.Errorf("job %s has %d lost attempts in its history, want %d (running at the kill: %v): %+v", id, lost, want, running[id], j.Attempts)
		}
	}
	if len(runs) != total {
		t.Errorf("%d distinct jobs ran, want %d", len(runs), total)
	}
	t.Logf("%d jobs were running at the kill; %d of them had started and ran twice", len(running), len(twice))
}
