package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/nuvom/nuvom/analyzer"
	"github.com/nuvom/nuvom/codegen"
	"github.com/nuvom/nuvom/manifest"
)

type generator struct {
	wd      string
	stdout  io.Writer
	stderr  io.Writer
	verbose bool
}

// plan is everything one run decided: the manifests before and after, and
// every file's wanted content (nil: delete it).
type plan struct {
	root  string
	old   *manifest.Manifest
	new   *manifest.Manifest
	files map[string][]byte // slash path relative to root -> content; nil means delete
}

// plan merges the analysis into the existing manifest and generates code. It
// prints every diagnostic and returns false when any is an error.
func (g *generator) plan(res *analyzer.Result) (*plan, bool) {
	for _, d := range res.Diagnostics {
		fmt.Fprintln(g.stderr, d.Format(g.wd))
	}
	errs := analyzer.HasErrors(res.Diagnostics)

	root := res.Module.Root
	old, err := manifest.Load(filepath.Join(root, manifest.FileName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	case err != nil && res.Whole:
		// A whole-module run rebuilds the manifest from the source alone.
		fmt.Fprintf(g.stderr, "nuvomgen: warning: replacing unreadable manifest: %v\n", err)
		old = nil
	case err != nil:
		fmt.Fprintf(g.stderr, "nuvomgen: %v\n(run nuvomgen ./... from the module root to rebuild it from the source)\n", err)
		return nil, false
	}

	merged, dupErrs := merge(old, res)
	for _, e := range dupErrs {
		fmt.Fprintln(g.stderr, e)
	}
	if errs || len(dupErrs) > 0 {
		fmt.Fprintln(g.stderr, "nuvomgen: errors found; nothing written")
		return nil, false
	}

	pkgs := make([]codegen.Package, len(res.Packages))
	for i, p := range res.Packages {
		pkgs[i] = codegen.Package{ImportPath: p.ImportPath, Name: p.Name, Dir: p.Dir}
	}
	files, err := codegen.Generate(codegen.Input{Manifest: merged, Packages: pkgs})
	if err != nil {
		fmt.Fprintf(g.stderr, "nuvomgen: %v\nnuvomgen: errors found; nothing written\n", err)
		return nil, false
	}
	data, err := merged.Encode()
	if err != nil {
		fmt.Fprintf(g.stderr, "nuvomgen: %v\n", err)
		return nil, false
	}
	files[manifest.FileName] = data

	// A covered package that no longer has tasks loses its stub file, but only
	// when that file really is ours.
	withTasks := map[string]bool{}
	for _, p := range res.Packages {
		withTasks[p.Dir] = true
	}
	for _, dir := range res.Covered {
		rel := path.Join(dir, codegen.FileName)
		if _, generated := files[rel]; generated || withTasks[dir] {
			continue
		}
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err == nil && codegen.IsGenerated(src) {
			files[rel] = nil
		}
	}
	return &plan{root: root, old: old, new: merged, files: files}, true
}

// merge replaces the old manifest's tasks of the covered packages with the
// analysed ones, keeping every other task, and reports name clashes between
// the two sets.
func merge(old *manifest.Manifest, res *analyzer.Result) (*manifest.Manifest, []string) {
	m := manifest.New(res.Module.Path)
	if old != nil && old.Registry != "" {
		m.Registry = old.Registry
	}
	covered := map[string]bool{}
	for _, d := range res.Covered {
		covered[d] = true
	}
	fresh := map[string]*manifest.Task{}
	for i := range res.Tasks {
		fresh[res.Tasks[i].Name] = &res.Tasks[i]
	}
	var errs []string
	if old != nil && !res.Whole {
		for _, t := range old.Tasks {
			if covered[t.Dir] {
				continue
			}
			if f, clash := fresh[t.Name]; clash {
				errs = append(errs, fmt.Sprintf("%s: error: task name %q is already used by %s.%s in %s (see %s)",
					f.File, t.Name, t.Package, t.Func, t.File, manifest.FileName))
				continue
			}
			m.Tasks = append(m.Tasks, t)
		}
	}
	m.Tasks = append(m.Tasks, res.Tasks...)
	m.Sort()
	return m, errs
}

// stale returns the paths whose wanted content differs from the disk, sorted.
func (p *plan) stale() ([]string, error) {
	var out []string
	for rel, want := range p.files {
		have, err := os.ReadFile(filepath.Join(p.root, filepath.FromSlash(rel)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if want != nil {
				out = append(out, rel)
			}
		case err != nil:
			return nil, err
		case want == nil || !bytes.Equal(have, want):
			out = append(out, rel)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (g *generator) check(p *plan) int {
	stale, err := p.stale()
	if err != nil {
		fmt.Fprintf(g.stderr, "nuvomgen: %v\n", err)
		return 1
	}
	if len(stale) == 0 {
		if g.verbose {
			fmt.Fprintf(g.stdout, "nuvomgen: %d tasks, all generated files fresh\n", len(p.new.Tasks))
		}
		return 0
	}
	fmt.Fprintln(g.stderr, "nuvomgen: stale generated files (run go generate ./...):")
	for _, rel := range stale {
		verb := "changed"
		if p.files[rel] == nil {
			verb = "to delete"
		} else if _, err := os.Stat(filepath.Join(p.root, filepath.FromSlash(rel))); err != nil {
			verb = "missing"
		}
		fmt.Fprintf(g.stderr, "  %s (%s)\n", rel, verb)
	}
	if changes := manifest.Diff(p.old, p.new); len(changes) > 0 {
		fmt.Fprintln(g.stderr, "task changes:")
		for _, c := range changes {
			fmt.Fprintf(g.stderr, "  %s\n", c)
		}
	}
	return 1
}

func (g *generator) write(p *plan) int {
	stale, err := p.stale()
	if err != nil {
		fmt.Fprintf(g.stderr, "nuvomgen: %v\n", err)
		return 1
	}
	for _, rel := range stale {
		abs := filepath.Join(p.root, filepath.FromSlash(rel))
		if p.files[rel] == nil {
			err = os.Remove(abs)
		} else {
			err = writeAtomic(abs, p.files[rel])
		}
		if err != nil {
			fmt.Fprintf(g.stderr, "nuvomgen: %v\n", err)
			return 1
		}
		if g.verbose {
			fmt.Fprintf(g.stdout, "wrote %s\n", rel)
		}
	}
	for _, c := range manifest.Diff(p.old, p.new) {
		fmt.Fprintf(g.stdout, "nuvomgen: %s\n", c)
	}
	if g.verbose {
		fmt.Fprintf(g.stdout, "nuvomgen: %d tasks, %d files written\n", len(p.new.Tasks), len(stale))
	}
	return 0
}

// writeAtomic writes data to a temporary file beside path and renames it into
// place, so readers never see a half-written file.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".nuvomgen-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
