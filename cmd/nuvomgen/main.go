// Command nuvomgen finds the functions marked //nuvom:task in a Go module and
// writes the module's task manifest (.nuvom_tasks.json), a typed stub file per
// package with tasks, and the registry package with its worker main.
//
// Run it from go generate:
//
//	//go:generate go run github.com/nuvom/nuvom/cmd/nuvomgen ./...
//
// or check in CI that everything generated is fresh:
//
//	nuvomgen -check ./...
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
