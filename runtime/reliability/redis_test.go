package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/redis"
)

func openRedis(t testing.TB, url string) *redis.Backend {
	t.Helper()
	b, err := redis.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestRedisTwoHosts: two worker processes, each in its own working
// directory, sharing nothing but the Redis address, run 600 jobs: every job
// exactly once, and both processes take part.
func TestRedisTwoHosts(t *testing.T) {
	srv := redistest.Start(t)
	b := openRedis(t, srv.URL(0))
	const total = 600
	ids := enqueueWork(t, b, total, 0, func(int) int { return 5 })
	cfg := workerConfig{Backend: "redis", Path: srv.URL(0), ExecLog: filepath.Join(t.TempDir(), "executions.log"),
		Concurrency: 4, LogLevel: "warn", Burst: true}
	w1 := startWorker(t, "host1", "worker", cfg)
	w2 := startWorker(t, "host2", "worker", cfg)
	w1.mustExitOK(10 * time.Minute) // hang guard
	w2.mustExitOK(10 * time.Minute)
	n, err := countStates(b)
	if err != nil {
		t.Fatal(err)
	}
	if n[nuvom.StateSucceeded] != total {
		t.Fatalf("states %v, want all %d succeeded", n, total)
	}
	byJob := map[string]int{}
	byPid := map[int]int{}
	for _, e := range readExecutions(t, cfg.ExecLog) {
		byJob[e.job]++
		byPid[e.pid]++
	}
	for _, id := range ids {
		if byJob[id] != 1 {
			t.Errorf("job %s ran %d times, want once", id, byJob[id])
		}
	}
	if len(byPid) != 2 {
		t.Errorf("executions by process %v, want both processes to run jobs", byPid)
	}
	t.Logf("executions by process: %v", byPid)
}

// TestChaosRedis is TestChaosSQLite on Redis: three worker processes (own
// working directories), one killed with SIGKILL every 1–2 s, then a final
// burst. Nothing lost or left running; duplicates only of attempts cut by a
// kill. NUVOM_CHAOS=full runs the size (20,000 jobs, 30 s).
func TestChaosRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("kills worker processes for seconds")
	}
	srv := redistest.Start(t)
	total, chaosFor, sleepMillis := 3000, 8*time.Second, 80
	if os.Getenv("NUVOM_CHAOS") == "full" {
		total, chaosFor, sleepMillis = 20000, 30*time.Second, 40
	}
	b := openRedis(t, srv.URL(0))
	ids := enqueueWork(t, b, total, 0, func(int) int { return sleepMillis })
	cfg := workerConfig{Backend: "redis", Path: srv.URL(0), ExecLog: filepath.Join(t.TempDir(), "executions.log"),
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
	killed := map[int]bool{}
	rng := rand.New(rand.NewPCG(3, 4))
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
	final := cfg
	final.Burst = true
	fw := startWorker(t, "final-burst", "worker", final)
	fw.mustExitOK(10 * time.Minute) // hang guard
	n, err := countStates(b)
	if err != nil {
		t.Fatal(err)
	}
	if n[nuvom.StateSucceeded] != total {
		t.Errorf("after the final burst: %v; want all %d succeeded (none lost, none left running)", n, total)
	}
	byJob := map[string][]int{}
	execs := readExecutions(t, cfg.ExecLog)
	for _, e := range execs {
		byJob[e.job] = append(byJob[e.job], e.pid)
	}
	dups := 0
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
			if !killed[pid] {
				uncut++
			}
		}
		if uncut > 1 {
			t.Errorf("job %s ran %d times in processes never killed (pids %v): a duplicate no crash explains", id, uncut, runs)
		}
	}
	t.Logf("%d kills in %s; %d executions of %d jobs; %d jobs ran more than once, all after a kill", kills, chaosFor, len(execs), total, dups)
}
