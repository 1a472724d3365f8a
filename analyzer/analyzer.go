// Package analyzer finds the //nuvom:task functions of a Go module: it walks
// the folders the patterns cover (honouring .nuvomignore), keeps the files a
// cheap byte prefilter marks as candidates, type-checks only their packages
// with golang.org/x/tools/go/packages in one load, parses each annotation and
// checks each signature, and returns the tasks plus every diagnostic. It
// writes nothing. _test.go files are never read, so a directive in one is
// ignored without a diagnostic; generated files are loaded but never scanned.
package analyzer

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

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
	// GeneratedFile is the base name of the files nuvomgen writes into task
	// packages ("nuvom_gen.go"). When a load fails in such a file (it is stale),
	// those files are hidden and the packages loaded again. Empty: never hidden.
	GeneratedFile string
	// StubNames returns the top-level names the generator declares for a task
	// function (for Resize: ResizeTask, ResizeTaskHandle). Code may use them
	// before they exist, so "undefined" errors for them are ignored.
	StubNames func(funcName string) []string
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
	// ScanDuration is the wall time of the walk and the prefilter (not deterministic).
	ScanDuration time.Duration
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
	start := time.Now()
	disc, err := discover(ctx, mod, scopes, cfg.Tags, ign)
	if err != nil {
		return nil, fmt.Errorf("analyzer: %w", err)
	}
	disc.stats.ScanDuration = time.Since(start)
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
		pkgs, err := load(ctx, mod, cfg, dirs, nil)
		if err != nil {
			return nil, err
		}
		if mentionsGenerated(pkgs, cfg.GeneratedFile) {
			overlay, declared, err := hiddenStubs(mod.Root, ign, cfg.GeneratedFile)
			if err != nil {
				return nil, fmt.Errorf("analyzer: %w", err)
			}
			if pkgs, err = load(ctx, mod, cfg, dirs, overlay); err != nil {
				return nil, err
			}
			dropUndefined(pkgs, declared)
		}
		dropUndefined(pkgs, plannedStubNames(pkgs, cfg.StubNames))
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
		if e.Kind == packages.ListError && strings.HasPrefix(e.Msg, "# ") {
			// The go command's compiler output: it repeats the type errors, and
			// reports the errors inside function bodies, which the analyzer skips.
			if !typeErrs {
				compilerErrors(e.Msg, root, dir, c)
				any = true
			}
			continue
		}
		if e.Kind == packages.TypeError && unusedImportRE.MatchString(e.Msg) {
			continue // an artefact of dropping function bodies
		}
		any = true
		c.errorf(parseErrorPos(e.Pos, root, dir), "%s", e.Msg)
	}
	return any
}

// compilerErrors turns the go command's compiler output ("# pkg" and then
// "file:line:col: message" lines) into one diagnostic per error.
func compilerErrors(out, root, dir string, c *collector) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")[1:]
	for i := 0; i < len(lines); i++ {
		m := compilerLineRE.FindStringSubmatch(lines[i])
		if m == nil {
			c.errorf(token0(filepath.Join(root, filepath.FromSlash(dir))), "%s", strings.TrimSpace(lines[i]))
			continue
		}
		msg := m[2]
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "\t") {
			i++
			msg += "\n" + lines[i]
		}
		c.errorf(parseErrorPos(m[1], root, dir), "%s", msg)
	}
}

var compilerLineRE = regexp.MustCompile(`^(\S+\.go:\d+(?::\d+)?): (.*)$`)

// parseDeclarations parses a Go file keeping comments and declarations but not
// function bodies.
func parseDeclarations(fset *token.FileSet, filename string, src []byte) (*ast.File, error) {
	f, err := parser.ParseFile(fset, filename, src, parser.ParseComments|parser.SkipObjectResolution|parser.AllErrors)
	if f != nil {
		for _, d := range f.Decls {
			// Generic functions must keep a body to type-check; they are rare.
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Type.TypeParams == nil {
				fd.Body = nil
			}
		}
	}
	return f, err
}

// unusedImportRE matches the type checker's unused-import error, which any
// import used only inside function bodies raises once bodies are dropped.
var unusedImportRE = regexp.MustCompile(`^"[^"]*" imported (as [\pL_][\pL\pN_]* )?and not used$`)

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
