package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// workerRoleEnv makes the test binary a worker process over the SQLite
// database it names (see TestMain).
const workerRoleEnv = "NUVOM_BENCH_WORKER_DB"

func TestMain(m *testing.M) {
	if db := os.Getenv(workerRoleEnv); db != "" {
		os.Exit(runWorkerProcess(db))
	}
	os.Exit(m.Run())
}

// noopSpec is the task the cross-process benchmark enqueues.
var noopSpec = nuvom.TaskSpec{Name: "bench.crossnoop", Signature: "x", Options: nuvom.TaskOptions{Queue: "cross", StoreResult: true}}

// runWorkerProcess runs an idle-ready worker until SIGINT/SIGTERM.
func runWorkerProcess(db string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := sqlite.Open(db)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer b.Close()
	reg, err := nuvom.NewRegistry(nuvom.TaskDef{TaskSpec: noopSpec,
		Invoke: func(context.Context, []byte) ([]byte, error) { return nil, nil }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w, err := nuvom.NewWorker(b, reg, nuvom.WorkerOptions{Concurrency: 4})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// BenchmarkPickupCrossProcess measures, with a worker in another process on
// one SQLite database: the pickup latency of jobs enqueued one at a time into
// the idle worker (claim time minus enqueue time, p50/p95/p99), and the CPU
// the idle worker uses (percent of one core over an idle window; Linux only).
func BenchmarkPickupCrossProcess(b *testing.B) {
	db := filepath.Join(b.TempDir(), "pickup.db")
	be, err := sqlite.Open(db)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerRoleEnv+"="+db)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	client := nuvom.NewClient(be)
	ctx := b.Context()
	// Wait for the worker to be up: its first job proves it.
	p, err := client.Enqueue(ctx, noopSpec, nil)
	if err != nil {
		b.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := client.Wait(wctx, p.ID); err != nil {
		b.Fatalf("worker process did not start: %v", err)
	}

	idle, cpuErr := idleCPU(cmd.Process.Pid, 3*time.Second)

	var lat []time.Duration
	for b.Loop() {
		time.Sleep(20 * time.Millisecond) // let the worker go idle
		res, err := client.Enqueue(ctx, noopSpec, nil)
		if err != nil {
			b.Fatal(err)
		}
		j, err := client.Wait(wctx, res.ID)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, j.StartedAt.Sub(j.CreatedAt))
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.95), "p95-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	if cpuErr == nil {
		b.ReportMetric(idle, "idle-cpu-%")
	} else {
		b.Logf("idle CPU not measured: %v", cpuErr)
	}
	b.ReportMetric(0, "ns/op")
}
