//go:build !windows

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// ownProcessGroup puts the worker in its own process group, so a Ctrl-C in the
// terminal reaches it once, through nuvom, and not twice (which would mean
// "stop at once").
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// forwardSignal passes a stop signal on to the worker.
func forwardSignal(cmd *exec.Cmd, s os.Signal) {
	if cmd.Process != nil {
		_ = cmd.Process.Signal(s)
	}
}
