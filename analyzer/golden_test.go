package analyzer_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/tools/txtar"

	"github.com/nuvom/nuvom/analyzer"
	"github.com/nuvom/nuvom/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/analyzer")

const goldenDir = "../testdata/analyzer"

// run is one "run [-tags=a,b] [-dir=sub] patterns..." line of a case's comment.
type run struct {
	line     string
	tags     []string
	dir      string
	patterns []string
	names    bool // print only the task names, not the manifest
}

func parseRuns(t *testing.T, comment []byte) []run {
	var runs []run
	for _, line := range strings.Split(string(comment), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "run") {
			continue
		}
		r := run{line: line}
		for _, f := range strings.Fields(line)[1:] {
			switch {
			case strings.HasPrefix(f, "-tags="):
				r.tags = strings.Split(strings.TrimPrefix(f, "-tags="), ",")
			case f == "-names":
				r.names = true
			case strings.HasPrefix(f, "-dir="):
				r.dir = strings.TrimPrefix(f, "-dir=")
			case strings.HasPrefix(f, "-"):
				t.Fatalf("unknown flag %s in %q", f, line)
			default:
				r.patterns = append(r.patterns, f)
			}
		}
		runs = append(runs, r)
	}
	if len(runs) == 0 {
		runs = append(runs, run{line: "run ./...", patterns: []string{"./..."}})
	}
	return runs
}

// render prints a result deterministically, with the module folder as $WORK.
func render(t *testing.T, res *analyzer.Result, work string, namesOnly bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "whole: %v\n", res.Whole)
	fmt.Fprintf(&b, "covered: %s\n", strings.Join(res.Covered, " "))
	fmt.Fprintf(&b, "stats: files=%d candidates=%d packages=%d\n", res.Stats.FilesScanned, res.Stats.CandidateFiles, res.Stats.PackagesLoaded)
	b.WriteString("packages:\n")
	for _, p := range res.Packages {
		fmt.Fprintf(&b, "  %s %s %s\n", p.Dir, p.Name, p.ImportPath)
	}
	b.WriteString("diagnostics:\n")
	for _, d := range res.Diagnostics {
		b.WriteString("  " + d.Format(res.Module.Root) + "\n")
	}
	if namesOnly {
		b.WriteString("tasks:\n")
		for _, task := range res.Tasks {
			fmt.Fprintf(&b, "  %s (%s)\n", task.Name, task.File)
		}
		return strings.ReplaceAll(b.String(), work, "$WORK")
	}
	m := manifest.New(res.Module.Path)
	m.Tasks = res.Tasks
	if err := m.Validate(); err != nil {
		t.Errorf("the tasks do not make a valid manifest: %v", err)
	}
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString("manifest:\n")
	b.Write(enc)
	return strings.ReplaceAll(b.String(), work, "$WORK")
}

func TestGolden(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join(goldenDir, "*.txtar"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases in %s (%v)", goldenDir, err)
	}
	for _, file := range cases {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			work := writeArchive(t, ar)
			var out bytes.Buffer
			for _, r := range parseRuns(t, ar.Comment) {
				fmt.Fprintf(&out, "=== %s\n", r.line)
				res, err := analyzer.Analyze(context.Background(), analyzer.Config{
					Dir:      filepath.Join(work, filepath.FromSlash(r.dir)),
					Patterns: r.patterns,
					Tags:     r.tags,
					Env:      goEnv(),
				})
				if err != nil {
					fmt.Fprintf(&out, "setup error: %s\n", strings.ReplaceAll(err.Error(), work, "$WORK"))
					continue
				}
				if res.Module.Root != work {
					t.Errorf("module root %s, want %s", res.Module.Root, work)
				}
				out.WriteString(render(t, res, work, r.names))
			}
			golden := filepath.Join(goldenDir, name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", golden, diff)
			}
		})
	}
}
