// Package generate is what nuvomgen does, callable from other commands (nuvom
// dev): analyze the module, merge the result into the existing manifest,
// generate code, and compare with or write to the disk, writing only files
// whose content changed.
package generate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/nuvom/nuvom/analyzer"
	"github.com/nuvom/nuvom/codegen"
	"github.com/nuvom/nuvom/manifest"
)

// Options say what to generate.
type Options struct {
	// Dir is the working directory; the module root is the nearest go.mod upward.
	Dir string
	// Patterns select packages ("./...", "./images"); empty means the whole module.
	Patterns []string
	// Tags are build tags.
	Tags []string
	// Env is the go command's environment (nil: the process's).
	Env []string
}

// Plan is the outcome of one run: the manifests before and after, every
// output's wanted content, and the analyzer's diagnostics.
type Plan struct {
	// Root is the module root.
	Root string
	// Old is the manifest on disk before the run (nil when there was none).
	Old *manifest.Manifest
	// New is the manifest after the run.
	New *manifest.Manifest
	// Files maps slash paths relative to Root to their wanted content; nil means delete.
	Files map[string][]byte
	// Diagnostics are every problem found, errors and warnings, sorted.
	Diagnostics []analyzer.Diagnostic
	// Notes are warnings of the run itself (an unreadable manifest that a whole-module run replaces).
	Notes []string
	// Emptied maps each stub file planned for deletion (its package lost
	// its last task) to the empty stub that may stand in for it
	// (codegen.EmptyStub). That stub counts as fresh.
	Emptied map[string][]byte
	// KeepEmptied makes Write replace such a file with its empty stub
	// instead of deleting it; without it, Write deletes the empty stubs too.
	// Set it under go generate, which fails on a file of its packages
	// deleted while it runs.
	KeepEmptied bool
}

// ErrDiagnostics is returned (wrapped) by Run when an error diagnostic stops
// generation; the Plan still holds the diagnostics.
var ErrDiagnostics = errors.New("errors found; nothing written")

// Run analyzes the packages, merges them into the module's manifest and
// generates code. With error diagnostics it returns the plan (for its
// Diagnostics) and an error wrapping ErrDiagnostics. Other errors mean the run
// could not start or read what it needs.
func Run(ctx context.Context, opts Options) (*Plan, error) {
	res, err := analyzer.Analyze(ctx, analyzer.Config{Dir: opts.Dir, Patterns: opts.Patterns, Tags: opts.Tags,
		Env: opts.Env, GeneratedFile: codegen.FileName, StubNames: codegen.StubNames})
	if err != nil {
		return nil, err
	}
	p := &Plan{Root: res.Module.Root, Diagnostics: res.Diagnostics}
	old, err := manifest.Load(filepath.Join(p.Root, manifest.FileName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	case err != nil && res.Whole:
		// A whole-module run rebuilds the manifest from the source alone.
		p.Notes = append(p.Notes, fmt.Sprintf("replacing unreadable manifest: %v", err))
		old = nil
	case err != nil:
		return nil, fmt.Errorf("%w (run nuvomgen ./... from the module root to rebuild it from the source)", err)
	}
	p.Old = old

	merged, clashes := merge(old, res)
	p.New = merged
	p.Diagnostics = append(p.Diagnostics, clashes...)
	plugins, err := LoadPlugins(ctx, p.Root, opts.Env)
	if err != nil {
		return nil, err
	}
	merged.Plugins = plugins.Plugins
	p.Diagnostics = append(p.Diagnostics, plugins.Diagnostics...)
	if analyzer.HasErrors(p.Diagnostics) {
		return p, fmt.Errorf("generate: %w", ErrDiagnostics)
	}

	pkgs := make([]codegen.Package, len(res.Packages))
	for i, pk := range res.Packages {
		pkgs[i] = codegen.Package{ImportPath: pk.ImportPath, Name: pk.Name, Dir: pk.Dir}
	}
	files, err := codegen.Generate(codegen.Input{Manifest: merged, Packages: pkgs, PluginsFile: plugins.File})
	if err != nil {
		return p, fmt.Errorf("generate: %w", err)
	}
	data, err := merged.Encode()
	if err != nil {
		return p, err
	}
	files[manifest.FileName] = data

	// A covered package that no longer has tasks loses its stub file, but only
	// when that file really is a generated one and codegen did not just make it.
	withTasks := map[string]bool{}
	for _, pk := range res.Packages {
		withTasks[pk.Dir] = true
	}
	for _, dir := range res.Covered {
		rel := path.Join(dir, codegen.FileName)
		if _, generated := files[rel]; generated || withTasks[dir] {
			continue
		}
		src, err := os.ReadFile(filepath.Join(p.Root, filepath.FromSlash(rel)))
		if err == nil && codegen.IsGenerated(src) {
			files[rel] = nil
			if f, err := parser.ParseFile(token.NewFileSet(), rel, src, parser.PackageClauseOnly); err == nil {
				if p.Emptied == nil {
					p.Emptied = map[string][]byte{}
				}
				p.Emptied[rel] = codegen.EmptyStub(f.Name.Name)
			}
		}
	}
	p.Files = files
	return p, nil
}

// merge replaces the old manifest's tasks of the covered packages with the
// analysed ones, keeping every other task, and reports name clashes between
// the two sets as error diagnostics.
func merge(old *manifest.Manifest, res *analyzer.Result) (*manifest.Manifest, []analyzer.Diagnostic) {
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
	var diags []analyzer.Diagnostic
	if old != nil && !res.Whole {
		for _, t := range old.Tasks {
			if covered[t.Dir] {
				continue
			}
			if f, clash := fresh[t.Name]; clash {
				diags = append(diags, analyzer.Diagnostic{
					Pos:      analyzerPos(res.Module.Root, f.File),
					Severity: analyzer.Error,
					Message: fmt.Sprintf("task name %q is already used by %s.%s in %s (see %s)",
						t.Name, t.Package, t.Func, t.File, manifest.FileName),
				})
				continue
			}
			m.Tasks = append(m.Tasks, t)
		}
	}
	m.Tasks = append(m.Tasks, res.Tasks...)
	m.Sort()
	return m, diags
}

// Changes lists the task-level changes the plan makes to the manifest.
func (p *Plan) Changes() []manifest.Change { return manifest.Diff(p.Old, p.New) }

// Stale returns the paths whose wanted content differs from the disk, sorted.
func (p *Plan) Stale() ([]string, error) {
	var out []string
	for rel, want := range p.Files {
		have, err := os.ReadFile(filepath.Join(p.Root, filepath.FromSlash(rel)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if want != nil {
				out = append(out, rel)
			}
		case err != nil:
			return nil, err
		case want == nil && bytes.Equal(have, p.Emptied[rel]):
			// The empty stub a run under go generate left: fresh.
		case want == nil || !bytes.Equal(have, want):
			out = append(out, rel)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Write writes every stale file (deleting those planned for deletion) and
// returns their paths. Files whose content is unchanged are not touched.
func (p *Plan) Write() ([]string, error) {
	stale, err := p.Stale()
	if err != nil {
		return nil, err
	}
	if !p.KeepEmptied {
		// Empty stubs left by go generate go too.
		for rel, stub := range p.Emptied {
			have, err := os.ReadFile(filepath.Join(p.Root, filepath.FromSlash(rel)))
			if err == nil && bytes.Equal(have, stub) {
				stale = append(stale, rel)
			}
		}
		sort.Strings(stale)
	}
	for i, rel := range stale {
		abs := filepath.Join(p.Root, filepath.FromSlash(rel))
		switch {
		case p.Files[rel] == nil && p.KeepEmptied && p.Emptied[rel] != nil:
			err = writeAtomic(abs, p.Emptied[rel])
		case p.Files[rel] == nil:
			err = os.Remove(abs)
		default:
			err = writeAtomic(abs, p.Files[rel])
		}
		if err != nil {
			return stale[:i], err
		}
	}
	return stale, nil
}

// StaleReason says why a stale path is stale: "missing", "changed" or "to delete".
func (p *Plan) StaleReason(rel string) string {
	if p.Files[rel] == nil {
		return "to delete"
	}
	if _, err := os.Stat(filepath.Join(p.Root, filepath.FromSlash(rel))); err != nil {
		return "missing"
	}
	return "changed"
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

// analyzerPos is the position of a whole file, from a slash path relative to root.
func analyzerPos(root, rel string) token.Position {
	return token.Position{Filename: filepath.Join(root, filepath.FromSlash(rel))}
}
