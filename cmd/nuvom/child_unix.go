//go:build unix && !linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

// pinStartThread: nothing here depends on the starting thread.
const pinStartThread = false

// guardChild hands the worker the read end of a pipe (its lifeline, see
// lifelineEnv); nuvom keeps the write end open until the worker
// exits. If nuvom dies, the kernel closes it and the worker stops gracefully.
// This system cannot kill a child with its parent, so this is best effort: a
// worker other than nuvom's own (built from an older module) ignores it.
func guardChild(cmd *exec.Cmd) (childGuard, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("lifeline pipe: %w", err)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, r)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, lifelineEnv+"="+strconv.Itoa(2+len(cmd.ExtraFiles)))
	return &lifeline{r: r, w: w}, nil
}

// lifeline is the pipe a worker watches.
type lifeline struct{ r, w *os.File }

// started closes nuvom's copy of the read end: only the worker holds it.
func (l *lifeline) started(*os.Process) error { return l.r.Close() }

func (l *lifeline) close() {
	_ = l.r.Close()
	_ = l.w.Close()
}
