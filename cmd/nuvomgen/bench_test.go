package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/synth"
	"github.com/nuvom/nuvom/internal/testmod"
)

// BenchmarkGenerateVsVet builds the synthetic module of the toolchain issue
// (2,000 files in 200 packages, 100 tasks in 20 of them) and times, per
// iteration: a full nuvomgen ./... after every source file changed (every
// output written), a second unchanged run that writes nothing, and go vet
// ./... after every source file changed again. Changing the files (a comment
// line each, untimed) keeps either tool from replaying cached results for the
// module's own packages; the standard library stays cached for both. The
// ratio metric is nuvomgen's full run over go vet's.
func BenchmarkGenerateVsVet(b *testing.B) {
	dir := b.TempDir()
	if err := synth.Write(dir, synth.Options{}); err != nil {
		b.Fatal(err)
	}
	repo, err := testmod.RepoRoot(".")
	if err != nil {
		b.Fatal(err)
	}
	if err := testmod.Link(dir, repo); err != nil {
		b.Fatal(err)
	}
	env, err := testmod.GoEnv()
	if err != nil {
		b.Fatal(err)
	}
	goCmd := func(args ...string) {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
	gen := func() {
		if code := run([]string{"-C", dir, "./..."}, io.Discard, io.Discard); code != 0 {
			b.Fatalf("nuvomgen exit %d", code)
		}
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		b.Setenv(k, v)
	}
	goCmd("mod", "tidy")
	gen()                 // warm the build cache for the loader
	goCmd("vet", "./...") // and for vet
	manifestPath := filepath.Join(dir, ".nuvom_tasks.json")

	var full, unchanged, vet time.Duration
	edit := 0
	for b.Loop() {
		b.StopTimer()
		edit++
		touchSources(b, dir, edit)
		// A full run: every output missing.
		if err := os.Remove(manifestPath); err != nil {
			b.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, "nuvomtasks")); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		gen()
		t1 := time.Now()
		before, err := os.Stat(manifestPath)
		if err != nil {
			b.Fatal(err)
		}
		gen()
		t2 := time.Now()
		after, err := os.Stat(manifestPath)
		if err != nil {
			b.Fatal(err)
		}
		if !after.ModTime().Equal(before.ModTime()) {
			b.Fatal("the unchanged run rewrote the manifest")
		}
		b.StopTimer()
		edit++
		touchSources(b, dir, edit)
		b.StartTimer()
		t3 := time.Now()
		goCmd("vet", "./...")
		t4 := time.Now()
		full += t1.Sub(t0)
		unchanged += t2.Sub(t1)
		vet += t4.Sub(t3)
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d) / n / float64(time.Millisecond) }
	b.ReportMetric(ms(full), "nuvomgen-ms")
	b.ReportMetric(ms(unchanged), "unchanged-ms")
	b.ReportMetric(ms(vet), "govet-ms")
	b.ReportMetric(float64(full)/float64(vet), "nuvomgen/govet")
	b.ReportMetric(0, "ns/op")
}

// touchSources gives every hand-written Go file of the module new content (a
// trailing comment naming the edit), so no tool can reuse cached results.
func touchSources(b *testing.B, dir string, edit int) {
	b.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".go" || filepath.Base(p) == "nuvom_gen.go" ||
			filepath.Base(filepath.Dir(p)) == "nuvomtasks" || filepath.Base(filepath.Dir(p)) == "worker" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if i := bytes.LastIndex(data, []byte("\n// edit ")); i >= 0 {
			data = data[:i+1]
		}
		return os.WriteFile(p, fmt.Appendf(data, "// edit %d\n", edit), 0o644)
	})
	if err != nil {
		b.Fatal(err)
	}
}
