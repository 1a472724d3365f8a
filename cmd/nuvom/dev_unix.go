//go:build !windows

package main

import (
	"os/exec"
	"syscall"
)

// devChildAttr puts the worker in its own process group, as runworker does,
// so that a Ctrl-C in the terminal reaches it once, through nuvom dev.
func devChildAttr(cmd *exec.Cmd) { ownProcessGroup(cmd) }

// devStopChild asks the worker to stop gracefully with SIGTERM.
func devStopChild(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return cmd.Process.Signal(syscall.SIGTERM)
}
