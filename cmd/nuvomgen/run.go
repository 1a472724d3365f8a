package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/pflag"

	"github.com/nuvom/nuvom/internal/generate"
	"github.com/nuvom/nuvom/internal/goflags"
)

const usage = `Usage: nuvomgen [flags] [packages]

nuvomgen finds the functions marked //nuvom:task and writes, at the module root,
the task manifest .nuvom_tasks.json; in each package with tasks, nuvom_gen.go
(typed Delay and Schedule stubs); and the registry package (nuvomtasks/) with its
worker main. Files are written only when their content changes. With errors,
nothing is written.

Packages are directory patterns relative to the working directory: ./... (that
folder and below), ./images, ./media/... . With none, the whole module, wherever
it runs. A run over part of the module updates only that part's entries.
Flags may be written Go style too (-check, -tags=x).

Examples:
  //go:generate go run github.com/nuvom/nuvom/cmd/nuvomgen ./...
  nuvomgen -check ./...        # in CI: exit 1 and list what is stale

Flags:
`

// noticeAfter is how long package loading runs before nuvomgen says what it is
// doing: on a fresh machine the first run compiles every dependency's export
// data, which takes a minute in silence otherwise.
const noticeAfter = 3 * time.Second

// run is the whole command; main only exits with its status. The
// slow-loading notice is progress for a person watching, so it goes only to a
// terminal: in CI logs and scripts stderr carries diagnostics alone, whatever
// the machine's speed.
func run(args []string, stdout, stderr io.Writer) int {
	notice := time.Duration(-1)
	if isTerminal(stderr) {
		notice = noticeAfter
	}
	return runWith(args, stdout, stderr, notice)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// runWith is run with the delay of the slow-loading notice (negative: none).
func runWith(args []string, stdout, stderr io.Writer, notice time.Duration) int {
	fs := pflag.NewFlagSet("nuvomgen", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	checkOnly := fs.Bool("check", false, "write nothing; exit 1 when a generated file or the manifest is stale")
	tags := fs.StringSlice("tags", nil, "comma-separated build tags to honour when loading packages")
	dir := fs.StringP("dir", "C", "", "run as if started in `dir`")
	verbose := fs.BoolP("verbose", "v", false, "list every file written or found fresh")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(goflags.Normalize(args, fs)); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "nuvomgen: %v\n", err)
		return 2
	}
	wd := *dir
	if wd == "" {
		var err error
		if wd, err = os.Getwd(); err != nil {
			fmt.Fprintf(stderr, "nuvomgen: %v\n", err)
			return 1
		}
	}
	stopNotice := noticeIfSlow(stderr, notice,
		"nuvomgen: loading packages (the first run on a machine compiles the dependencies and can take a minute)...")
	p, err := generate.Run(context.Background(), generate.Options{Dir: wd, Patterns: fs.Args(), Tags: *tags})
	stopNotice()
	if !report(p, err, wd, stderr) {
		return 1
	}
	if *checkOnly {
		return check(p, *verbose, stdout, stderr)
	}
	// go generate (which sets $GOFILE) reads every file of its packages in
	// turn: a stub file deleted under it would fail it.
	p.KeepEmptied = os.Getenv("GOFILE") != ""
	return write(p, *verbose, stdout, stderr)
}

// noticeIfSlow prints msg on w after d unless the returned stop is called
// first; a negative d prints nothing.
func noticeIfSlow(w io.Writer, d time.Duration, msg string) (stop func()) {
	if d < 0 {
		return func() {}
	}
	var mu sync.Mutex
	stopped := false
	t := time.AfterFunc(d, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			fmt.Fprintln(w, msg)
		}
	})
	return func() {
		t.Stop()
		mu.Lock()
		stopped = true
		mu.Unlock()
	}
}
