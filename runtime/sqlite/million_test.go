package sqlite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

const childDBEnv = "NUVOM_SQLITE_TEST_CLAIMER_DB"

// TestMillionQueuedClaimerMemory fills a database with 1,000,000 queued jobs,
// then runs a worker-like claimer in a separate process (this test binary,
// re-executed) that claims and completes batches, and checks that claiming
// does not load the queue: the child's Go heap stays small and, where the OS
// reports it, its peak RSS stays under 100 MB. Skipped in -short mode (it
// takes some seconds to build the rows).
func TestMillionQueuedClaimerMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 1,000,000 rows; skipped in -short mode")
	}
	if raceEnabled {
		t.Skip("the race detector makes SQLite too slow and inflates memory; run without -race")
	}
	const n = 1_000_000
	path := filepath.Join(t.TempDir(), "million.db")
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ctx := context.Background()
	for i := 0; i < n; i += 5000 {
		if _, err := b.Enqueue(ctx, newJobs(i+1, 5000, "default")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("enqueued %d jobs in %v", n, time.Since(start))

	cmd := exec.Command(os.Args[0], "-test.run=^TestClaimerChild$", "-test.v")
	cmd.Env = append(os.Environ(), childDBEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("claimer process: %v\n%s", err, out)
	}
	var heap, hwm int64 = -1, -1
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "CLAIMER" {
			heap, _ = strconv.ParseInt(f[1], 10, 64)
			hwm, _ = strconv.ParseInt(f[2], 10, 64)
			t.Logf("claimer: %s", f[3])
		}
	}
	if heap < 0 {
		t.Fatalf("claimer printed no report:\n%s", out)
	}
	t.Logf("claimer over %d queued jobs: Go heap in use %.1f MB, peak RSS %.1f MB (-1: not reported by this OS)",
		n, float64(heap)/1e6, float64(hwm)/1e6)
	if heap > 32<<20 {
		t.Errorf("claimer's Go heap in use is %d bytes, want < 32 MB", heap)
	}
	if hwm > 100<<20 {
		t.Errorf("claimer's peak RSS is %d bytes, want < 100 MB", hwm)
	}
}

// TestClaimerChild is the claimer process of TestMillionQueuedClaimerMemory.
func TestClaimerChild(t *testing.T) {
	path := os.Getenv(childDBEnv)
	if path == "" {
		t.Skip("runs only as the child of TestMillionQueuedClaimerMemory")
	}
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	done := 0
	start := time.Now()
	for range 100 {
		jobs, err := b.Claim(ctx, backend.ClaimRequest{Limit: 200, Worker: "child", Now: t0, LeaseFor: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		outs := make([]backend.Outcome, len(jobs))
		for i, j := range jobs {
			outs[i] = backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: t0,
				Attempt: backend.Attempt{Number: j.Attempt, Outcome: backend.OutcomeSucceeded}}
		}
		errs, err := b.Complete(ctx, outs)
		if err == nil {
			err = errors.Join(errs...)
		}
		if err != nil {
			t.Fatal(err)
		}
		done += len(jobs)
	}
	afterClaims := peakRSS()
	if _, err := b.Stats(ctx, t0); err != nil { // the counters and the claim index (a scan before them)
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("CLAIMER %d %d %s\n", ms.HeapInuse, peakRSS(), fmt.Sprintf("%d-jobs-in-%v,peak-RSS-before-Stats-%.1fMB", done, time.Since(start).Round(time.Millisecond), float64(afterClaims)/1e6))
}

// peakRSS returns the process's peak resident set size in bytes from
// /proc/self/status, or -1 where that file does not exist.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return -1
}
