// Package locktest helps tests check locks across goroutines and real
// processes: a child process of the test binary, file barriers that start
// contenders at one moment, and an owner marker that catches two holders of
// one lock. Waits are bounded by HangGuard, which only turns a hang into a
// failure; nothing here expects anything to happen within a time.
package locktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// HangGuard bounds every wait.
const HangGuard = 2 * time.Minute

// Barrier marks name as arrived in dir and waits until n contenders have
// arrived, so that they all go on at about the same moment.
func Barrier(ctx context.Context, dir, name string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("barrier %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
		return fmt.Errorf("barrier %s: %w", dir, err)
	}
	for {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("barrier %s: %w", dir, err)
		}
		if len(entries) >= n {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("barrier %s: %d of %d arrived: %w", dir, len(entries), n, err)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// Critical is the body of a critical section of round r guarded by the lock
// under test. It creates the round's owner marker in syncDir with O_EXCL:
// finding it there means another contender holds the lock too, which it
// returns as a violation. Otherwise it stays a moment (so that an overlapping
// holder would find the marker), removes the marker and appends "r name" to
// syncDir/entries.
func Critical(syncDir string, r int, name string) (violation string, err error) {
	marker := filepath.Join(syncDir, fmt.Sprintf("owner-%03d", r))
	f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Sprintf("round %d: %s holds the lock while another contender holds it", r, name), nil
	}
	if err != nil {
		return "", err
	}
	err = f.Close()
	time.Sleep(200 * time.Microsecond)
	err = errors.Join(err, os.Remove(marker))
	log, lerr := os.OpenFile(filepath.Join(syncDir, "entries"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if lerr != nil {
		return "", errors.Join(err, lerr)
	}
	_, werr := fmt.Fprintf(log, "%d %s\n", r, name)
	return "", errors.Join(err, werr, log.Close())
}

// Entries counts the entries Critical logged in syncDir per round.
func Entries(t *testing.T, syncDir string, rounds int) []int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(syncDir, "entries"))
	if err != nil {
		t.Fatal(err)
	}
	per := make([]int, rounds)
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var r int
		var name string
		if _, err := fmt.Sscanf(string(line), "%d %s", &r, &name); err != nil || r < 0 || r >= rounds {
			t.Fatalf("bad line %q in the entries log", line)
		}
		per[r]++
	}
	return per
}

// Signal creates dir/name holding text, atomically: a poller never sees it
// half written.
func Signal(dir, name, text string) error {
	tmp := filepath.Join(dir, "."+name)
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return fmt.Errorf("signal %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("signal %s: %w", name, err)
	}
	return nil
}

// Proc is a child process of a test: the test binary run again with env.
type Proc struct {
	Cmd    *exec.Cmd
	Stdin  io.WriteCloser // closing it tells the child to finish
	Stdout bytes.Buffer
	Stderr bytes.Buffer
	done   chan struct{}
	err    error // Wait's result, set before done closes
}

// Start runs the test binary (running no tests) with env added to the
// environment. The child is killed at the end of the test if still running.
func Start(t *testing.T, env ...string) *Proc {
	t.Helper()
	p := &Proc{done: make(chan struct{})}
	p.Cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout, p.Cmd.Stderr = &p.Stdout, &p.Stderr
	var err error
	if p.Stdin, err = p.Cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.Cmd.Process.Kill()
		<-p.done
	})
	return p
}

// Wait waits for the child to exit (killing it and failing the test after
// HangGuard) and returns Wait's error.
func (p *Proc) Wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(HangGuard):
		_ = p.Cmd.Process.Kill()
		<-p.done
		t.Fatalf("child did not exit within the hang guard; stderr:\n%s", p.Stderr.String())
		return nil
	}
}

// Kill kills the child (SIGKILL on Unix, TerminateProcess on Windows) and
// waits until it is gone.
func (p *Proc) Kill(t *testing.T) {
	t.Helper()
	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// WaitSignal waits for the file dir/name that the child creates with Signal
// and returns its content. It fails the test when the child exits first.
func (p *Proc) WaitSignal(t *testing.T, dir, name string) string {
	t.Helper()
	deadline := time.Now().Add(HangGuard)
	for {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			return string(data)
		}
		select {
		case <-p.done:
			t.Fatalf("child exited (%v) before signalling %s; stderr:\n%s", p.err, name, p.Stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no signal %s from the child within the hang guard", name)
		}
		time.Sleep(time.Millisecond)
	}
}
