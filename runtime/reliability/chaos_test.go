package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
)

// TestChaosSQLite runs jobs with default options (no retries) on three worker
// processes sharing one SQLite database, kills one of them with SIGKILL every
// 1–2 s and restarts it, then runs a final burst worker. Nothing may be lost
// or left running, and a job may run twice only when an attempt was cut by a
// kill. NUVOM_CHAOS=full runs the size: 20,000 jobs for 30 s.
func TestChaosSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("kills worker processes for seconds")
	}
	total, chaosFor, sleepMillis := 3000, 8*time.Second, 80
	if os.Getenv("NUVOM_CHAOS") == "full" {
		total, chaosFor, sleepMillis = 20000, 30*time.Second, 40
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "nuvom.db")
	b := openSQLite(t, db)
	ids := enqueueWork(t, b, total, 0, func(int) int { return sleepMillis })

	// Default lease, heartbeat and recovery settings: what a user gets.
	cfg := workerConfig{Backend: "sqlite", Path: db, ExecLog: filepath.Join(dir, "executions.log"),
		Concurrency: 8, LogLevel: "warn"}
	workers := make([]*proc, 3)
	starts := 0
	startOne := func(i int) {
		starts++
		workers[i] = startWorker(t, fmt.Sprintf("worker%d-%d", i, starts), "worker", cfg)
	}
	for i := range workers {
		startOne(i)
	}
	killed := map[int]bool{} // pids killed with SIGKILL
	rng := rand.New(rand.NewPCG(1, 2))
	end := time.Now().Add(chaosFor)
	kills := 0
	for time.Now().Before(end) {
		time.Sleep(time.Second + time.Duration(rng.Int64N(int64(time.Second))))
		i := rng.IntN(len(workers))
		killed[workers[i].cmd.Process.Pid] = true
		workers[i].kill9()
		kills++
		startOne(i)
	}
	for _, w := range workers {
		w.stop()
	}
	for _, w := range workers {
		w.mustExitOK(5 * time.Minute) // hang guard
	}
	atEnd, err := countStates(b)
	if err != nil {
		t.Fatal(err)
	}
	// The final burst waits for the leases of the killed workers to expire,
	// recovers their jobs and runs whatever is left.
	final := cfg
	final.Burst = true
	fw := startWorker(t, "final-burst", "worker", final)
	fw.mustExitOK(10 * time.Minute) // hang guard

	n, err := countStates(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kills in %s; states when the chaos ended %v; after the final burst %v", kills, chaosFor, atEnd, n)
	if n[nuvom.StateSucceeded] != total {
		t.Errorf("after the final burst: %v; want all %d succeeded (none lost, none left running)", n, total)
	}
	execs := readExecutions(t, cfg.ExecLog)
	byJob := map[string][]int{}
	for _, e := range execs {
		byJob[e.job] = append(byJob[e.job], e.pid)
	}
	dups, cut := 0, 0
	for _, id := range ids {
		runs := byJob[id]
		if len(runs) == 0 {
			t.Errorf("job %s never ran", id)
			continue
		}
		if len(runs) > 1 {
			dups++
		}
		uncut := 0
		for _, pid := range runs {
			if killed[pid] {
				cut++
			} else {
				uncut++
			}
		}
		if uncut > 1 {
			t.Errorf("job %s ran %d times in processes that were never killed (pids %v, killed %v): a duplicate no crash explains",
				id, uncut, runs, killed)
		}
	}
	t.Logf("%d executions of %d jobs; %d jobs ran more than once, all after a kill (%d executions in killed processes)",
		len(execs), total, dups, cut)
}
