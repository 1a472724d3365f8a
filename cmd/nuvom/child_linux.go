//go:build linux

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// pinStartThread: Pdeathsig follows the thread that started the child.
const pinStartThread = true

// guardChild asks the kernel to kill the child when nuvom dies.
func guardChild(cmd *exec.Cmd) (childGuard, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	return noGuard{}, nil
}

// noGuard has nothing to do after the start.
type noGuard struct{}

func (noGuard) started(*os.Process) error { return nil }
func (noGuard) close()                    {}
