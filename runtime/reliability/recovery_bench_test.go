package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
)

// BenchmarkCrashRecovery measures, with default worker settings, how long a
// job held by a worker process killed with SIGKILL takes to start again in
// another worker process: from the kill to the second execution's start.
// Each iteration kills, at a random moment, one worker holding one job. Metrics: p50-s and max-s
// over the iterations (run with -benchtime 10x for a distribution).
func BenchmarkCrashRecovery(b *testing.B) {
	dir := b.TempDir()
	db := filepath.Join(dir, "nuvom.db")
	be := openSQLite(b, db)
	cfg := workerConfig{Backend: "sqlite", Path: db, ExecLog: filepath.Join(dir, "executions.log"),
		Concurrency: 1, LogLevel: "warn"}
	client := nuvom.NewClient(be)
	var took []time.Duration
	i := 0
	for b.Loop() {
		i++
		ids := enqueueWork(b, be, 1, 0, func(int) int { return int(time.Hour / time.Millisecond) })
		before, err := countLines(cfg.ExecLog)
		if err != nil {
			b.Fatal(err)
		}
		victim := startWorker(b, "victim", "worker", cfg)
		waitFor(b, 5*time.Minute, "the victim to start the job", func() (bool, error) {
			n, err := countLines(cfg.ExecLog)
			return n > before, err
		})
		// The rescuer starts only now, so that the victim alone could claim the job.
		rescuer := startWorker(b, fmt.Sprintf("rescuer%d", i), "worker", cfg)
		// Kill at a random moment of the victim's heartbeat cycle, as a crash would.
		time.Sleep(time.Duration(rand.Int64N(int64(2 * time.Second))))
		killed := time.Now()
		victim.kill9()
		waitFor(b, 5*time.Minute, "the rescuer to start the job again", func() (bool, error) {
			n, err := countLines(cfg.ExecLog)
			return n > before+1, err
		})
		took = append(took, time.Since(killed))
		// The rescuer runs the hour-long job: cancel it, so it is free for the next round.
		if err := client.Cancel(context.Background(), ids[0]); err != nil {
			b.Fatal(err)
		}
		rescuer.stop()
		rescuer.mustExitOK(5 * time.Minute)
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(took[len(took)/2].Seconds(), "p50-s")
	b.ReportMetric(took[len(took)-1].Seconds(), "max-s")
	b.Logf("recovery after SIGKILL over %d kills: %v", len(took), took)
}
