//go:build !unix && !windows

package main

import (
	"os"
	"os/exec"
)

// pinStartThread: nothing here depends on the starting thread.
const pinStartThread = false

// guardChild cannot tie the child to nuvom on this system.
func guardChild(cmd *exec.Cmd) (childGuard, error) { return noGuard{}, nil }

// noGuard has nothing to do after the start.
type noGuard struct{}

func (noGuard) started(*os.Process) error { return nil }
func (noGuard) close()                    {}
