package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/nuvom/nuvom/internal/generate"
)

// report prints a run's notes and diagnostics; it returns false when the run
// cannot go on.
func report(p *generate.Plan, err error, wd string, stderr io.Writer) bool {
	if p != nil {
		for _, n := range p.Notes {
			fmt.Fprintf(stderr, "nuvomgen: warning: %s\n", n)
		}
		for _, d := range p.Diagnostics {
			fmt.Fprintln(stderr, d.Format(wd))
		}
	}
	switch {
	case errors.Is(err, generate.ErrDiagnostics):
		fmt.Fprintln(stderr, "nuvomgen: errors found; nothing written")
		return false
	case err != nil:
		fmt.Fprintf(stderr, "nuvomgen: %v\n", err)
		if p != nil {
			fmt.Fprintln(stderr, "nuvomgen: errors found; nothing written")
		}
		return false
	}
	return true
}

// check prints what is stale and the task-level changes; exit 1 when anything is.
func check(p *generate.Plan, verbose bool, stdout, stderr io.Writer) int {
	stale, err := p.Stale()
	if err != nil {
		fmt.Fprintf(stderr, "nuvomgen: %v\n", err)
		return 1
	}
	if len(stale) == 0 {
		if verbose {
			fmt.Fprintf(stdout, "nuvomgen: %d tasks, all generated files fresh\n", len(p.New.Tasks))
		}
		return 0
	}
	fmt.Fprintln(stderr, "nuvomgen: stale generated files (run go generate ./...):")
	for _, rel := range stale {
		fmt.Fprintf(stderr, "  %s (%s)\n", rel, p.StaleReason(rel))
	}
	if changes := p.Changes(); len(changes) > 0 {
		fmt.Fprintln(stderr, "task changes:")
		for _, c := range changes {
			fmt.Fprintf(stderr, "  %s\n", c)
		}
	}
	return 1
}

// write writes what is stale and prints the task-level changes.
func write(p *generate.Plan, verbose bool, stdout, stderr io.Writer) int {
	written, err := p.Write()
	if verbose {
		for _, rel := range written {
			fmt.Fprintf(stdout, "wrote %s\n", rel)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "nuvomgen: %v\n", err)
		return 1
	}
	for _, c := range p.Changes() {
		fmt.Fprintf(stdout, "nuvomgen: %s\n", c)
	}
	if verbose {
		fmt.Fprintf(stdout, "nuvomgen: %d tasks, %d files written\n", len(p.New.Tasks), len(written))
	}
	return 0
}
