//go:build !windows

package reliability

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
)

// TestShutdown sends SIGTERM to the production worker main (workercmd.Main,
// configured by NUVOM_* variables) while 4 of 8 long jobs run. Jobs that end
// within the grace period finish and succeed at their first attempt; jobs
// still running when it ends are handed back without spending an attempt;
// the 4 never started stay queued with attempt count 0; the process exits 0
// promptly. A second SIGTERM hands the running jobs back at once.
func TestShutdown(t *testing.T) {
	cases := []struct {
		name  string
		sleep time.Duration // each job's run time (the task honours its context)
		grace time.Duration
		// finish: the running jobs complete within the grace period; otherwise
		// they are handed back when it ends.
		finish bool
		second bool   // send a second SIGTERM shortly after the first
		logMsg string // a line the worker must log
	}{
		{name: "running jobs finish within grace", sleep: 2 * time.Second, grace: 5 * time.Second, finish: true,
			logMsg: "shutting down gracefully"},
		{name: "running jobs handed back after grace", sleep: 10 * time.Second, grace: 500 * time.Millisecond,
			logMsg: "handed back running jobs after the grace period"},
		{name: "second signal stops at once", sleep: 10 * time.Second, grace: 30 * time.Second, second: true,
			logMsg: "stopping at once"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const (
				total       = 8
				concurrency = 4
			)
			dir := t.TempDir()
			db := filepath.Join(dir, "nuvom.db")
			b := openSQLite(t, db)
			ids := enqueueWork(t, b, total, 2, func(int) int { return int(c.sleep / time.Millisecond) })

			cfg := workerConfig{ExecLog: filepath.Join(dir, "executions.log")}
			w := startWorker(t, "worker", "workercmd", cfg,
				"NUVOM_BACKEND=sqlite", "NUVOM_DB="+db, "NUVOM_CONCURRENCY=4",
				"NUVOM_GRACE="+c.grace.String(), "NUVOM_LOG_LEVEL=info")
			waitFor(t, 5*time.Minute, "4 jobs to start", func() (bool, error) {
				n, err := countLines(cfg.ExecLog)
				return n >= concurrency, err
			})
			states, err := countStates(b)
			if err != nil {
				t.Fatal(err)
			}
			if states[nuvom.StateRunning] != concurrency || states[nuvom.StateQueued] != total-concurrency {
				t.Fatalf("before the signal: states %v, want %d running and %d queued", states, concurrency, total-concurrency)
			}
			sent := time.Now()
			if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatalf("send SIGTERM: %v", err)
			}
			if c.second {
				// Signals less than 1s apart count as one stop request (one
				// keypress can arrive twice): send the second one well after the
				// worker took the first.
				waitFor(t, 5*time.Minute, "the worker to take the first signal", func() (bool, error) {
					_, ok := lineWith(w.output(), "shutting down gracefully")
					return ok, nil
				})
				time.Sleep(1500 * time.Millisecond)
				if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatalf("send the second SIGTERM: %v", err)
				}
			}
			// A hang guard, not a budget: what the worker did is read from the
			// jobs below (finished within the grace period, or handed back
			// unfinished, which it could not be had it waited for them).
			w.mustExitOK(5 * time.Minute)
			took := time.Since(sent)
			t.Logf("exited 0 %s after SIGTERM (grace %s, jobs of %s)", took.Round(time.Millisecond), c.grace, c.sleep)
			if line, ok := lineWith(w.output(), c.logMsg); !ok {
				t.Errorf("the worker did not log %q; its output:\n%s", c.logMsg, w.output())
			} else {
				t.Logf("log: %s", line)
			}

			runs := runsPerJob(readExecutions(t, cfg.ExecLog))
			if len(runs) != concurrency {
				t.Errorf("%d jobs ran, want %d: %v", len(runs), concurrency, runs)
			}
			for _, id := range ids {
				j, err := b.Get(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case runs[id] > 1:
					t.Errorf("job %s ran %d times", id, runs[id])
				case runs[id] == 1 && c.finish:
					if j.State != nuvom.StateSucceeded || j.Attempt != 1 || len(j.Attempts) != 1 {
						t.Errorf("running job %s ended %s at attempt %d (%s), history %+v; want succeeded at attempt 1",
							id, j.State, j.Attempt, j.Error, j.Attempts)
					}
				default: // handed back, or never started
					if j.State != nuvom.StateQueued || j.Attempt != 0 || j.LeaseOwner != "" {
						t.Errorf("job %s (ran %d times) is %s at attempt %d leased by %q; want queued at attempt 0 with no lease",
							id, runs[id], j.State, j.Attempt, j.LeaseOwner)
					}
				}
			}
		})
	}
}
