package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nuvom/nuvom/internal/testmod"
)

var update = flag.Bool("update", false, "rewrite the golden files that scripts compare with cmp")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"nuvomgen": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs testdata/script/nuvomgen/*.txtar: each in a temporary module
// that depends on this checkout, running go generate, go build, go vet and
// nuvomgen for real.
func TestScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("script tests build Go code; skipped in -short mode")
	}
	setup, err := testmod.Setup(".")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("..", "..", "testdata", "script", "nuvomgen"),
		Setup:               setup,
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"snapshot":  cmdSnapshot,
			"unchanged": cmdUnchanged,
		},
	})
}

// snapshot FILE...: remember the modification time and content of each file
// (in $WORK/.snapshot-<n>), for a later "unchanged".
func cmdSnapshot(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! snapshot")
	}
	for i, f := range args {
		st, err := os.Stat(ts.MkAbs(f))
		ts.Check(err)
		data, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(snapName(i)), data, 0o644))
		ts.Check(os.Chtimes(ts.MkAbs(snapName(i)), st.ModTime(), st.ModTime()))
	}
}

// unchanged FILE...: each file has the same content and modification time as
// at the last snapshot of the same list.
func cmdUnchanged(ts *testscript.TestScript, neg bool, args []string) {
	for i, f := range args {
		st, err := os.Stat(ts.MkAbs(f))
		ts.Check(err)
		data, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		snap, err := os.Stat(ts.MkAbs(snapName(i)))
		ts.Check(err)
		old, err := os.ReadFile(ts.MkAbs(snapName(i)))
		ts.Check(err)
		same := bytes.Equal(data, old) && st.ModTime().Equal(snap.ModTime())
		if same == neg {
			ts.Fatalf("%s: content or mtime changed=%v (mtime %s, was %s)", f, !same,
				st.ModTime().Format(time.RFC3339Nano), snap.ModTime().Format(time.RFC3339Nano))
		}
	}
}

func snapName(i int) string { return ".snapshot-" + string(rune('a'+i)) }
