package reliability

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
)

// TestContentionSQLite runs 4 worker processes on one SQLite database holding
// 20,000 jobs: every job succeeds at its first attempt and runs exactly once.
func TestContentionSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 4 worker processes over 20,000 jobs")
	}
	const (
		total = 20000
		procs = 4
	)
	dir := t.TempDir()
	db := filepath.Join(dir, "nuvom.db")
	b := openSQLite(t, db)
	ids := enqueueWork(t, b, total, 0, func(i int) int { return 1 + i%2 })

	// Exactly once needs leases that outlast the longest stall of a heartbeat.
	// Four processes taking turns at one SQLite write lock, under the race
	// detector on a loaded 2-core machine, can starve a heartbeat past the
	// default 5 s lease (at-least-once then runs the job again, as it should);
	// this test is about contention, not recovery, so it holds leases longer.
	cfg := workerConfig{
		Backend: "sqlite", Path: db, ExecLog: filepath.Join(dir, "executions.log"),
		Concurrency: 8, Burst: true, LogLevel: "warn", LeaseFor: time.Minute,
	}
	start := time.Now()
	ws := make([]*proc, procs)
	for i := range ws {
		ws[i] = startWorker(t, fmt.Sprintf("worker%d", i+1), "worker", cfg)
	}
	pids := map[int]string{}
	for _, w := range ws {
		w.mustExitOK(10 * time.Minute) // a hang guard, not a budget: a loaded machine may be slow
		pids[w.cmd.Process.Pid] = w.name
	}
	elapsed := time.Since(start)

	n, err := countStates(b)
	if err != nil {
		t.Fatal(err)
	}
	if n[nuvom.StateSucceeded] != total {
		t.Errorf("states after the burst: %v; want %d succeeded", n, total)
	}
	execs := readExecutions(t, cfg.ExecLog)
	runs := runsPerJob(execs)
	for _, id := range ids {
		if runs[id] != 1 {
			t.Errorf("job %s ran %d times, want exactly once", id, runs[id])
		}
	}
	if len(execs) != total || len(runs) != total {
		t.Errorf("%d executions of %d distinct jobs, want %d of %d", len(execs), len(runs), total, total)
	}
	for id, j := range listAll(t, b, total) {
		if j.Attempt != 1 || len(j.Attempts) != 1 {
			t.Errorf("job %s: attempt %d with history %+v; want one attempt", id, j.Attempt, j.Attempts)
		}
	}
	perProc := map[string]int{}
	for _, e := range execs {
		name, ok := pids[e.pid]
		if !ok {
			t.Fatalf("job %s was run by pid %d, which is none of the workers %v", e.job, e.pid, pids)
		}
		perProc[name]++
	}
	var share []string
	for name, c := range perProc {
		share = append(share, fmt.Sprintf("%s=%d", name, c))
	}
	sort.Strings(share)
	t.Logf("%d jobs in %s (%.0f jobs/s) across %d processes: %s", total, elapsed.Round(time.Millisecond),
		float64(total)/elapsed.Seconds(), procs, strings.Join(share, " "))
	if len(perProc) < 2 {
		t.Errorf("only %d of %d processes ran jobs: there was no contention to test", len(perProc), procs)
	}
}
