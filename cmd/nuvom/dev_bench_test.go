package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/devwatch"
	"github.com/nuvom/nuvom/internal/generate"
	"github.com/nuvom/nuvom/internal/synth"
	"github.com/nuvom/nuvom/internal/testmod"
)

// The dev-mode benchmarks run a real worker and real builds; they are tests
// gated by NUVOM_DEV_BENCH=1 and report through t.Log:
//
//	NUVOM_DEV_BENCH=1 go test ./cmd/nuvom -run 'TestDevBench' -v -count=1

func benchGate(t *testing.T) {
	if os.Getenv("NUVOM_DEV_BENCH") != "1" {
		t.Skip("set NUVOM_DEV_BENCH=1 to run the dev-mode benchmarks")
	}
}

// copyTree copies src to dst, skipping the .nuvom folder (database, binaries).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if d.Name() == ".nuvom" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

var reReloadSplit = regexp.MustCompile(`reloaded in (\S+) \(generate (\S+), build (\S+), restart (\S+)\)`)

// TestDevBenchShop measures, on a copy of examples/shop with a warm build
// cache, the time from a saved edit to the new worker accepting jobs.
func TestDevBenchShop(t *testing.T) {
	benchGate(t)
	env, err := testmod.GoEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	repo, err := testmod.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyTree(t, filepath.Join(repo, "examples", "shop"), dir)
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod = regexp.MustCompile(`(?m)^replace github.com/nuvom/nuvom => .*$`).ReplaceAll(mod, nil)
	writeFile(t, dir, "go.mod", string(mod))
	if err := testmod.Link(dir, repo); err != nil {
		t.Fatal(err)
	}
	goCmd(t, dir, "mod", "tidy")
	d := startDev(t, dir, "--concurrency", "2", "--grace", "5s")
	d.waitCount(t, reStarted, 1, 180*time.Second)

	src := filepath.Join(dir, "images", "images.go")
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	edits := []struct {
		name string
		edit func(i int) string
	}{
		{"body edit", func(i int) string {
			return strings.Replace(string(orig), "must be positive", fmt.Sprintf("must be positive (v%d)", i+1), 1)
		}},
		{"task option edit", func(i int) string {
			return strings.Replace(string(orig), "retries=3", fmt.Sprintf("retries=%d", 4+i%2), 1)
		}},
	}
	n := 1
	for _, e := range edits {
		var total, gen, build, restart []time.Duration
		for i := range 5 {
			start := time.Now()
			writeFile(t, dir, "images/images.go", e.edit(i))
			n++
			d.waitCount(t, reReloaded, n-1, 120*time.Second)
			wall := time.Since(start) // includes the 150 ms debounce
			m := reReloadSplit.FindAllStringSubmatch(d.out.String(), -1)
			last := m[len(m)-1]
			total = append(total, wall)
			gen = append(gen, mustDur(t, last[2]))
			build = append(build, mustDur(t, last[3]))
			restart = append(restart, mustDur(t, last[4]))
			// The new worker serves.
			mustCLI(t, dir, "enqueue", "images.Resize", `["a.png", 64]`, "--wait", "--timeout", "60s")
		}
		t.Logf("shop %s: save->accepting min %v median %v | generate min %v median %v | build min %v median %v | restart min %v median %v",
			e.name, minDur(total), median(total), minDur(gen), median(gen), minDur(build), median(build), minDur(restart), median(restart))
	}
}

// TestDevBenchSynth measures dev's incremental analysis and code generation
// after a one-file edit in the synthetic 2,000-file module.
func TestDevBenchSynth(t *testing.T) {
	benchGate(t)
	env, err := testmod.GoEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	repo, err := testmod.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := synth.Write(dir, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := testmod.Link(dir, repo); err != nil {
		t.Fatal(err)
	}
	plan, err := generate.Run(context.Background(), generate.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Write(); err != nil {
		t.Fatal(err)
	}
	goCmd(t, dir, "mod", "tidy")

	w, err := devwatch.New(devwatch.Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	t0 := time.Now()
	files := goFiles(w.Files())
	cache := newDeclCache(dir, files)
	t.Logf("synth: %d files, %d folders watched; declaration cache built in %v", len(files), len(w.Dirs()), time.Since(t0))
	var mu sync.Mutex
	s := &devSession{root: dir, cache: cache, retry: map[string]bool{}, cur: plan.New,
		out: lockedWriter{&mu, &syncBuffer{}}, err: lockedWriter{&mu, &syncBuffer{}}}
	s.modSums = s.moduleFileSums()

	cases := []struct {
		name, file, old, new string
	}{
		{"body edit in a task file", "group00/pkg000/file00.go", "return len(ids) + len(label), nil", "return len(label) + len(ids) + %d - %d, nil"},
		{"body edit in a plain package", "group00/pkg001/file03.go", `names := make([]string, 0, len(rs))`, `names := make([]string, 0, len(rs)+%d-%d)`},
		{"declaration edit in a plain package", "group00/pkg001/file03.go", "Score float64\n", "Score float64\n\tExtra%d%d int\n"},
		{"declaration edit in a task file", "group00/pkg000/file00.go", "//nuvom:task retries=3", "//nuvom:task retries=%d%d"},
	}
	for _, c := range cases {
		p := filepath.Join(dir, filepath.FromSlash(c.file))
		orig, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var times []time.Duration
		var analysed []string
		for i := range 5 {
			edited := strings.Replace(string(orig), c.old, fmt.Sprintf(c.new, i+1, i+1), 1)
			if edited == string(orig) {
				t.Fatalf("%s: %q not found in %s", c.name, c.old, c.file)
			}
			writeFile(t, dir, c.file, edited)
			start := time.Now()
			wk := s.classify(&devwatch.Batch{Files: []string{c.file}})
			if wk.whole || len(wk.patterns) > 0 {
				if !s.generate(wk) {
					t.Fatalf("%s: generate failed", c.name)
				}
			}
			times = append(times, time.Since(start))
			analysed = wk.patterns
		}
		t.Logf("synth %s: analysis+codegen min %v median %v (packages analysed: %q)", c.name, minDur(times), median(times), analysed)
		writeFile(t, dir, c.file, string(orig))
		s.classify(&devwatch.Batch{Files: []string{c.file}})
	}
}

func mustDur(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func minDur(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
