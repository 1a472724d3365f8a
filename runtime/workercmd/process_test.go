//go:build unix

package workercmd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
)

// hangGuard bounds every wait of these tests; it only catches a hang.
const hangGuard = 120 * time.Second

// workerProc is the test binary running as a worker process (see TestMain).
type workerProc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	dir    string
	exited chan struct{}
	code   int
}

// startWorker starts a worker process on the file queue fileQueue set up, with
// the given signal window and flags; extra files become fds 3, 4, ...
func startWorker(t *testing.T, window time.Duration, extra []*os.File, env []string, args ...string) *workerProc {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], append([]string{"--concurrency", "1", "--log-format", "json", "--no-scheduler"}, args...)...)
	cmd.Env = append(os.Environ(), childEnv+"=1", childDirEnv+"="+dir, childWindowEnv+"="+window.String())
	cmd.Env = append(cmd.Env, env...)
	cmd.ExtraFiles = extra
	p := &workerProc{cmd: cmd, stderr: &lockedBuffer{}, dir: dir, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// waitFor waits until cond holds, failing on a hang or when the worker exits first.
func (p *workerProc) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		select {
		case <-p.exited:
			if cond() {
				return
			}
			t.Fatalf("the worker exited with status %d before %s:\n%s", p.code, what, p.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("hang: no %s after %v:\n%s", what, hangGuard, p.stderr)
		}
	}
}

func (p *workerProc) waitLog(t *testing.T, text string) {
	t.Helper()
	p.waitFor(t, "log "+text, func() bool { return strings.Contains(p.stderr.String(), text) })
}

func (p *workerProc) waitStarted(t *testing.T) {
	t.Helper()
	p.waitFor(t, "job start", func() bool {
		_, err := os.Stat(filepath.Join(p.dir, "started"))
		return err == nil
	})
}

func (p *workerProc) release(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (p *workerProc) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(hangGuard):
		t.Fatalf("hang: the worker did not exit:\n%s", p.stderr)
	}
	return -1
}

func (p *workerProc) signal(t *testing.T, s os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatal(err)
	}
}

// TestRepeatedSignalIsOneGracefulStop: under "go tool", one Ctrl-C reaches the
// worker twice (the terminal's SIGINT and the go command's copy). Two SIGINTs
// within the window are one request: the running job finishes and its outcome
// is stored. A signal after the window still stops at once.
func TestRepeatedSignalIsOneGracefulStop(t *testing.T) {
	c := fileQueue(t)
	ctx := context.Background()
	res, err := c.Enqueue(ctx, slowSpec, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A long window, so the second signal falls in it however slow the machine.
	p := startWorker(t, time.Hour, nil, nil, "--grace", "1h")
	p.waitStarted(t)
	p.signal(t, os.Interrupt)
	p.waitLog(t, "shutting down gracefully")
	p.signal(t, os.Interrupt) // the first was taken: the kernel cannot merge them
	p.waitLog(t, "counted once")
	p.release(t)
	if code := p.waitExit(t); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, p.stderr)
	}
	if strings.Contains(p.stderr.String(), "stopping at once") {
		t.Fatalf("the repeated signal stopped the worker at once:\n%s", p.stderr)
	}
	if j, err := c.Get(ctx, res.ID); err != nil || j.State != nuvom.StateSucceeded {
		t.Fatalf("job after a graceful stop: %+v %v", j, err)
	}

	// A second signal after the window stops at once: the job is handed back.
	res, err = c.Enqueue(ctx, slowSpec, nil)
	if err != nil {
		t.Fatal(err)
	}
	const window = 100 * time.Millisecond
	p = startWorker(t, window, nil, nil, "--grace", "1h")
	p.waitStarted(t)
	p.signal(t, os.Interrupt)
	p.waitLog(t, "shutting down gracefully")
	// The log line comes after the worker took the signal, so the next one
	// arrives at least this long after it: outside the window.
	time.Sleep(3 * window)
	p.signal(t, os.Interrupt)
	if code := p.waitExit(t); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "stopping at once") {
		t.Fatalf("no hard stop:\n%s", p.stderr)
	}
	if j, err := c.Get(ctx, res.ID); err != nil || j.State != nuvom.StateQueued || j.Attempt != 0 {
		t.Fatalf("job after a hard stop: %+v %v", j, err)
	}
}

// TestLifelineStopsTheWorkerWhenTheParentDies: a parent that hands the worker
// a pipe (LifelineEnv) and dies closes it; the worker then shuts down
// gracefully: the running job finishes.
func TestLifelineStopsTheWorkerWhenTheParentDies(t *testing.T) {
	c := fileQueue(t)
	ctx := context.Background()
	res, err := c.Enqueue(ctx, slowSpec, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startWorker(t, time.Second, []*os.File{r}, []string{LifelineEnv + "=3"}, "--grace", "1h")
	r.Close()
	p.waitStarted(t)
	w.Close() // what the kernel does when the parent dies
	p.waitLog(t, "shutting down gracefully")
	p.release(t)
	if code := p.waitExit(t); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, p.stderr)
	}
	if j, err := c.Get(ctx, res.ID); err != nil || j.State != nuvom.StateSucceeded {
		t.Fatalf("job: %+v %v", j, err)
	}
}
