//go:build !unix

package main

import "errors"

// execWorker is not possible here (Windows has no exec): runworker runs the
// worker as a child instead.
func execWorker(bin string, args []string) error { return errors.ErrUnsupported }
