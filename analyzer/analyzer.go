// Package analyzer finds the //nuvom:task functions of a Go module: it walks
// the folders the patterns cover (honouring .nuvomignore), keeps the files a
// cheap byte prefilter marks as candidates, type-checks only their packages
// with golang.org/x/tools/go/packages in one load, parses each annotation and
// checks each signature, and returns the tasks plus every diagnostic. It
// writes nothing.
package analyzer

import (
	"context"
	"fmt"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/tools/go/packages"

	"github.com/nuvom/nuvom/manifest"
)

// Config says what to analyze.
type Config struct {
	// Dir is the working directory ("" = the process's); the module root is the nearest go.mod upward.
	Dir string
	// Patterns are "./...", "./images", "./media/...", ".", or import-path forms of
	// module packages; empty means the whole module.
	Patterns []string
	// Tags are build tags, as for go build -tags.
	Tags []string
	// Env is the environment of the go command (nil = the process's).
	Env []string
}

// Package is a loaded package that holds at least one task.
type Package struct {
	ImportPath string
	Name       string
	// Dir is slash-separated and relative to the module root, "." for the root.
	Dir string
}

// Stats count the work done.
type Stats struct {
	FilesScanned   int   // Go files read by the prefilter
	CandidateFiles int   // files kept as possible task sources
	PackagesLoaded int   // packages type-checked
	BytesScanned   int64 // bytes read by the prefilter
}

// Result is what Analyze found.
type Result struct {
	Module Module
	// Tasks are sorted by Name, with defaulted options and computed signatures.
	// A task with an error diagnostic of its own is left out.
	Tasks []manifest.Task
	// Packages are the loaded packages holding at least one task, sorted by Dir.
	Packages []Package
	// Covered lists every package folder (slash, relative) the patterns covered, sorted.
	Covered []string
	// Scopes are the folders the patterns named, so a caller can also prune
	// packages that no longer exist.
	Scopes []Scope
	// Whole is true when the patterns covered the whole module.
	Whole bool
	// Diagnostics are sorted by file, line, column and message.
	Diagnostics []Diagnostic
	Stats       Stats
}

// loadMode is what the analyzer needs of each candidate package.
const loadMode = packages.NeedName | packages.NeedFiles | packages.NeedSyntax |
	packages.NeedTypes | packages.NeedTypesInfo | packages.NeedModule

func token0(filename string) token.Position { return token.Position{Filename: filename} }

// Analyze finds and checks the tasks of the packages cfg covers. It returns an
// error only when it cannot start (no go.mod, a pattern outside the module, an
// unreadable folder, a failing go command); every problem in the source is a
// Diagnostic of the Result.
func Analyze(ctx context.Context, cfg Config) (*Result, error) {
	cwd := cfg.Dir
	if cwd == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("analyzer: working directory: %w", err)
		}
		cwd = wd
	}
	cwd, err := filepath.Abs(cwd)
	if err != nil {
		return nil, fmt.Errorf("analyzer: resolve %s: %w", cfg.Dir, err)
	}
	mod, err := findModule(cwd)
	if err != nil {
		return nil, fmt.Errorf("analyzer: %w", err)
	}
	scopes, err := resolvePatterns(mod, cwd, cfg.Patterns)
	if err != nil {
		return nil, fmt.Errorf("analyzer: %w", err)
	}
	ign, err := loadIgnore(mod.Root)
	if err != nil {
		return nil, fmt.Errorf("analyzer: %w", err)
	}
	disc, err := discover(ctx, mod, scopes, cfg.Tags, ign)
	if err != nil {
		return nil, fmt.Errorf("analyzer: %w", err)
	}
	res := &Result{
		Module:   mod,
		Tasks:    []manifest.Task{},
		Packages: []Package{},
		Covered:  sortedKeys(disc.covered),
		Scopes:   scopes,
		Stats:    disc.stats,
	}
	for _, s := range scopes {
		if s.Dir == "." && s.Recursive {
			res.Whole = true
		}
	}
	c := &collector{diags: disc.diags}

	dirs := make([]string, 0, len(disc.candidates))
	for d := range disc.candidates {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	var all []found
	if len(dirs) > 0 {
		pkgs, err := load(ctx, mod, cfg, dirs)
		if err != nil {
			return nil, err
		}
		res.Stats.PackagesLoaded = len(pkgs)
		byPath := map[string]*packages.Package{}
		for _, p := range pkgs {
			byPath[p.PkgPath] = p
		}
		for _, dir := range dirs {
			p := byPath[mod.importPath(dir)]
			if p == nil {
				continue
			}
			if loadErrors(p, mod.Root, dir, c) {
				continue
			}
			scan := &pkgScan{mod: mod, dir: dir, pkg: p, files: disc.candidates[dir], c: c}
			scan.scan()
			all = append(all, scan.found...)
		}
	}
	checkDuplicates(all, mod.Root, c)
	counts := map[string]int{}
	for _, f := range all {
		counts[f.name]++
	}
	withTasks := map[string]Package{}
	for _, f := range all {
		if f.task == nil || counts[f.name] > 1 {
			continue
		}
		res.Tasks = append(res.Tasks, *f.task)
		withTasks[f.task.Dir] = Package{ImportPath: f.task.Package, Name: f.pkgName, Dir: f.task.Dir}
	}
	sort.Slice(res.Tasks, func(i, j int) bool { return res.Tasks[i].Name < res.Tasks[j].Name })
	for _, d := range sortedKeysPkg(withTasks) {
		res.Packages = append(res.Packages, withTasks[d])
	}
	sortDiagnostics(c.diags)
	res.Diagnostics = dedupDiagnostics(c.diags)
	if res.Diagnostics == nil {
		res.Diagnostics = []Diagnostic{}
	}
	return res, nil
}

func sortedKeysPkg(m map[string]Package) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// load type-checks the candidate packages in one go/packages call.
func load(ctx context.Context, mod Module, cfg Config, dirs []string) ([]*packages.Package, error) {
	paths := make([]string, len(dirs))
	for i, d := range dirs {
		paths[i] = mod.importPath(d)
	}
	pc := &packages.Config{
		Context: ctx,
		Mode:    loadMode,
		Dir:     mod.Root,
		Env:     cfg.Env,
	}
	if len(cfg.Tags) > 0 {
		pc.BuildFlags = []string{"-tags=" + strings.Join(cfg.Tags, ",")}
	}
	pkgs, err := packages.Load(pc, paths...)
	if err != nil {
		return nil, fmt.Errorf("analyzer: load %d packages of %s: %w", len(paths), mod.Path, err)
	}
	return pkgs, nil
}

// loadErrors turns a package's load and type errors into diagnostics and
// reports whether there were any.
func loadErrors(p *packages.Package, root, dir string, c *collector) bool {
	typeErrs := false
	for _, e := range p.Errors {
		typeErrs = typeErrs || e.Kind == packages.TypeError
	}
	any := false
	for _, e := range p.Errors {
		if strings.Contains(e.Msg, "build constraints exclude all Go files") {
			continue
		}
		if typeErrs && e.Kind == packages.ListError && strings.HasPrefix(e.Msg, "# ") {
			continue // the go command's compiler output repeats the type errors
		}
		any = true
		c.errorf(parseErrorPos(e.Pos, root, dir), "%s", e.Msg)
	}
	return any
}

// parseErrorPos reads a packages.Error position: "file:line:col", "file:line",
// "file", "" or "-"; relative file names are relative to the module root.
func parseErrorPos(pos, root, dir string) token.Position {
	if pos == "" || pos == "-" {
		return token0(filepath.Join(root, filepath.FromSlash(dir)))
	}
	var line, col int
	rest := pos
	for k := 0; k < 2; k++ {
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			break
		}
		n, err := strconv.Atoi(rest[i+1:])
		if err != nil {
			break
		}
		line, col = n, line
		rest = rest[:i]
	}
	if !filepath.IsAbs(rest) {
		rest = filepath.Join(root, rest)
	}
	return token.Position{Filename: rest, Line: line, Column: col}
}
