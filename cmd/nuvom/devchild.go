package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/nuvom/nuvom/internal/stopsignal"
)

// devWorker is one run of the worker binary under nuvom dev; it dies with
// nuvom dev (see startChild).
type devWorker struct {
	cmd    *exec.Cmd
	ready  chan struct{} // closed when the worker logged that it started
	exited chan struct{} // closed when the process has exited and its output is copied
	code   int           // exit status, valid after exited
	err    error         // a failure to wait, valid after exited
	spacer stopsignal.Spacer
}

// readyMark is what the worker logs once it fetches jobs (in every log format).
const readyMark = "worker started"

// startDevWorker starts bin with args in dir, copying its stdout to stdout and
// its stderr to stderr line by line, watching for the worker's start line.
func startDevWorker(bin string, args []string, dir string, stdin io.Reader, stdout, stderr io.Writer) (*devWorker, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout = stdin, stdout
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	cmd.Stderr = pw
	devChildAttr(cmd)
	c, err := startChild(cmd)
	if err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	pw.Close() // the child holds its own copy
	w := &devWorker{cmd: cmd, ready: make(chan struct{}), exited: make(chan struct{})}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		var once sync.Once
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(stderr, line)
			if strings.Contains(line, readyMark) {
				once.Do(func() { close(w.ready) })
			}
		}
		_, _ = io.Copy(stderr, pr) // a line longer than the buffer: pass the rest on
	}()
	go func() {
		err := c.wait()
		<-copied
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			w.code = exit.ExitCode()
		default:
			w.code, w.err = exitFailure, err
		}
		close(w.exited)
	}()
	return w, nil
}

// waitReady waits until the worker logged its start, exited, or d passed; it
// reports whether the worker is up.
func (w *devWorker) waitReady(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.ready:
		return true
	case <-w.exited:
		return false
	case <-t.C:
		return false
	}
}

// stop asks the worker to shut down gracefully (it stops fetching, lets running
// jobs finish within its grace period and hands back the rest) and waits for it
// to exit. A value on again (a second Ctrl-C) makes it stop at once.
func (w *devWorker) stop(again <-chan os.Signal) {
	w.signal()
	for {
		select {
		case <-w.exited:
			return
		case <-again:
			w.signal() // a second stop signal means "at once"
		}
	}
}

// signal sends the worker a stop signal, spaced from the previous one so the
// worker does not count both as one (see package stopsignal).
func (w *devWorker) signal() {
	select {
	case <-time.After(w.spacer.Delay()):
	case <-w.exited:
		return
	}
	if err := devStopChild(w.cmd); err != nil {
		_ = w.cmd.Process.Kill()
	}
	w.spacer.Sent()
}
