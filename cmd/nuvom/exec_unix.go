//go:build unix

package main

import (
	"os"
	"syscall"
)

// execWorker replaces nuvom with the worker binary: one process, so signals
// reach the worker directly and a killed "nuvom runworker" is a killed worker.
// The worker's messages name it "nuvom". It returns only on failure.
func execWorker(bin string, args []string) error {
	return syscall.Exec(bin, append([]string{"nuvom"}, args...), os.Environ())
}
