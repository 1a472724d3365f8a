//go:build windows

package main

import (
	"os"
	"os/exec"
)

// ownProcessGroup does nothing on Windows: console control events (Ctrl-C,
// Ctrl-Break, close) reach every process attached to the console, the worker
// included.
func ownProcessGroup(cmd *exec.Cmd) {}

// forwardSignal does nothing on Windows: the worker received the console
// event itself; nuvom only keeps running until the worker exits.
func forwardSignal(cmd *exec.Cmd, s os.Signal) {}
