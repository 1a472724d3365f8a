package file

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/nuvom/nuvom/runtime/backend"
)

// claimerEnv, when set to a folder, turns the test binary into a claimer
// process for TestProcesses: it claims and completes jobs until the queue is
// empty and prints one line per claimed job id.
const claimerEnv = "NUVOM_FILE_TEST_CLAIMER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(claimerEnv); dir != "" {
		os.Exit(claimer(dir, os.Stdout))
	}
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(child(role, os.Getenv(argsEnv)))
	}
	os.Exit(m.Run())
}

// claimer claims jobs from dir until none is left and completes them,
// writing each claimed id to w. It returns the process exit code.
func claimer(dir string, w *os.File) int {
	b, err := Open(dir, WithSync(false))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer b.Close()
	out := bufio.NewWriter(w)
	defer out.Flush()
	worker := fmt.Sprintf("pid-%d", os.Getpid())
	if err := claimLoop(context.Background(), b, worker, func(id string) { fmt.Fprintln(out, id) }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// claimLoop claims (5 at a time) and completes jobs until Claim finds none.
func claimLoop(ctx context.Context, b *Backend, worker string, seen func(id string)) error {
	for {
		jobs, err := b.Claim(ctx, claimReq(worker, 5))
		if err != nil {
			return err
		}
		if len(jobs) == 0 {
			return nil
		}
		outs := make([]backend.Outcome, len(jobs))
		for i, j := range jobs {
			seen(j.ID)
			outs[i] = backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: epoch}
		}
		errs, err := b.Complete(ctx, outs)
		if err != nil {
			return err
		}
		for _, e := range errs {
			if e != nil {
				return e
			}
		}
	}
}

// TestProcesses runs three claimer processes (this test binary, re-executed)
// and this process on one folder: every job is claimed exactly once.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	b := openTest(t, WithSync(false))
	const total = 400
	mustEnqueue(t, b, testJobs(1, total)...)

	counts := map[string]int{}
	var mu sync.Mutex
	note := func(id string) {
		mu.Lock()
		counts[id]++
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for p := range 3 {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), claimerEnv+"="+b.Dir())
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				t.Errorf("claimer process %d: %v\n%s", p, err, stderr.String())
				return
			}
			n := 0
			for _, id := range strings.Fields(stdout.String()) {
				note(id)
				n++
			}
			t.Logf("process %d claimed %d jobs", p, n)
		})
	}
	if err := claimLoop(t.Context(), b, "parent", note); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(counts) != total {
		t.Errorf("%d distinct jobs claimed, want %d", len(counts), total)
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("job %s claimed %d times", id, n)
		}
	}
	stats, err := b.Stats(t.Context(), epoch)
	if err != nil || len(stats) != 1 || stats[0].State != backend.StateSucceeded || stats[0].Count != total {
		t.Fatalf("Stats = %+v, %v; want %d succeeded", stats, err, total)
	}
}
