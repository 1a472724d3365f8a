//go:build windows

package main

import (
	"fmt"
	"os/exec"
	"syscall"
)

// ctrlBreakEvent is CTRL_BREAK_EVENT; Go turns it into os.Interrupt in the worker.
const ctrlBreakEvent = 1

// devChildAttr starts the worker in a new process group. A reload must stop the
// old worker without stopping nuvom dev, and a console event can only be aimed
// at a process group. The new group ignores the console's Ctrl-C; nuvom dev
// receives it and passes it on as a Ctrl-Break (see devStopChild), so the
// worker sees each stop request once.
func devChildAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// devStopChild sends a Ctrl-Break to the worker's process group: a graceful stop.
func devStopChild(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	proc := syscall.NewLazyDLL("kernel32.dll").NewProc("GenerateConsoleCtrlEvent")
	if err := proc.Find(); err != nil {
		return fmt.Errorf("stop worker: %w", err)
	}
	if r, _, err := proc.Call(ctrlBreakEvent, uintptr(cmd.Process.Pid)); r == 0 {
		return fmt.Errorf("stop worker: GenerateConsoleCtrlEvent: %w", err)
	}
	return nil
}
