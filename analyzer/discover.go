package analyzer

import (
	"bytes"
	"context"
	"fmt"
	"go/build"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"

	ignore "github.com/sabhiram/go-gitignore"
)

// IgnoreFile is the file at the module root, in gitignore syntax, whose matches
// are never read for tasks.
const IgnoreFile = ".nuvomignore"

// marker is what the byte prefilter looks for; it also catches "// nuvom:task"
// and "//Nuvom:task" so that the misspelt forms can be warned about.
var marker = []byte("uvom:task")

// discovery is what walking the covered folders found.
type discovery struct {
	covered    map[string]bool            // package dirs (slash, rel) covered by the patterns
	candidates map[string]map[string]bool // dir -> absolute file names that may hold tasks
	diags      []Diagnostic
	stats      Stats
}

// skipDirName reports whether a folder of this name is never walked.
func skipDirName(name string) bool {
	return name == "vendor" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

func isSourceFile(name string) bool {
	return strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") &&
		!strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "_")
}

// loadIgnore reads the module's .nuvomignore, or returns nil when there is none.
func loadIgnore(root string) (*ignore.GitIgnore, error) {
	p := filepath.Join(root, IgnoreFile)
	if _, err := os.Stat(p); os.IsNotExist(err) {
		return nil, nil
	}
	gi, err := ignore.CompileIgnoreFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return gi, nil
}

type walker struct {
	root    string
	ign     *ignore.GitIgnore
	visited map[string]bool
	files   []walkedFile
	disc    *discovery
}

type walkedFile struct {
	dir string // slash, rel
	abs string
}

func (w *walker) ignored(rel string, dir bool) bool {
	if w.ign == nil || rel == "." {
		return false
	}
	if dir {
		rel += "/"
	}
	return w.ign.MatchesPath(rel)
}

// excludedReason says why a pattern's own folder is not read for tasks, or "".
func (w *walker) excludedReason(rel string) string {
	if rel == "." {
		return ""
	}
	for _, part := range strings.Split(rel, "/") {
		if skipDirName(part) {
			return "folders named vendor or testdata, or starting with '.' or '_', are skipped"
		}
	}
	for d := rel; d != "."; d = path.Dir(d) {
		if w.ignored(d, true) {
			return "it is excluded by " + IgnoreFile
		}
	}
	return ""
}

func (w *walker) walk(ctx context.Context, rel string, isRoot, recursive bool) error {
	if w.visited[rel] {
		if !recursive {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	abs := filepath.Join(w.root, filepath.FromSlash(rel))
	entries, err := os.ReadDir(abs)
	if err != nil {
		return fmt.Errorf("read folder %s: %w", abs, err)
	}
	if !isRoot {
		for _, e := range entries {
			if e.Name() == "go.mod" && !e.IsDir() {
				return nil // a nested module is not part of this one
			}
		}
	}
	first := !w.visited[rel]
	w.visited[rel] = true
	for _, e := range entries {
		name := e.Name()
		childRel := name
		if rel != "." {
			childRel = rel + "/" + name
		}
		if e.IsDir() {
			if recursive && !skipDirName(name) && !w.ignored(childRel, true) {
				if err := w.walk(ctx, childRel, false, true); err != nil {
					return err
				}
			}
			continue
		}
		if !first || !isSourceFile(name) || !e.Type().IsRegular() && e.Type()&os.ModeSymlink == 0 {
			continue
		}
		w.disc.covered[rel] = true
		if w.ignored(childRel, false) {
			continue
		}
		w.files = append(w.files, walkedFile{dir: rel, abs: filepath.Join(abs, name)})
	}
	return nil
}

// hasGoFiles reports whether the folder holds a non-test Go file.
func hasGoFiles(abs string) bool {
	entries, err := os.ReadDir(abs)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !e.IsDir() && isSourceFile(e.Name()) {
			return true
		}
	}
	return false
}

// discover walks the scopes and runs the byte prefilter over every Go file found.
func discover(ctx context.Context, mod Module, scopes []Scope, tags []string, ign *ignore.GitIgnore) (*discovery, error) {
	d := &discovery{covered: map[string]bool{}, candidates: map[string]map[string]bool{}}
	w := &walker{root: mod.Root, ign: ign, visited: map[string]bool{}, disc: d}
	for _, s := range scopes {
		if reason := w.excludedReason(s.Dir); reason != "" {
			abs := filepath.Join(mod.Root, filepath.FromSlash(s.Dir))
			if hasGoFiles(abs) {
				d.covered[s.Dir] = true
			}
			d.diags = append(d.diags, Diagnostic{
				Pos: token0(abs), Severity: Warning,
				Message: "no tasks are read from " + s.Dir + ": " + reason,
			})
			continue
		}
		if err := w.walk(ctx, s.Dir, true, s.Recursive); err != nil {
			return nil, err
		}
	}
	if err := prefilter(ctx, w.files, tags, d); err != nil {
		return nil, err
	}
	return d, nil
}

// prefilter reads every file, in parallel, and keeps those that mention the
// directive, are not generated and match the build constraints.
func prefilter(ctx context.Context, files []walkedFile, tags []string, d *discovery) error {
	type verdict struct {
		size int64
		keep bool
		err  error
	}
	out := make([]verdict, len(files))
	workers := runtime.GOMAXPROCS(0) * 2
	if workers > len(files) {
		workers = len(files)
	}
	var (
		wg   sync.WaitGroup
		next = make(chan int)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				data, err := os.ReadFile(files[i].abs)
				if err != nil {
					out[i].err = fmt.Errorf("read %s: %w", files[i].abs, err)
					continue
				}
				out[i].size = int64(len(data))
				out[i].keep = bytes.Contains(data, marker) && !isGenerated(data) && matchBuild(files[i].abs, data, tags)
			}
		}()
	}
	var ctxErr error
feed:
	for i := range files {
		select {
		case next <- i:
		case <-ctx.Done():
			ctxErr = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ctxErr != nil {
		return ctxErr
	}
	for i, v := range out {
		if v.err != nil {
			return v.err
		}
		d.stats.FilesScanned++
		d.stats.BytesScanned += v.size
		if !v.keep {
			continue
		}
		d.stats.CandidateFiles++
		f := files[i]
		if d.candidates[f.dir] == nil {
			d.candidates[f.dir] = map[string]bool{}
		}
		d.candidates[f.dir][f.abs] = true
	}
	return nil
}

// Prefilter reports whether Go source data may hold a task: it mentions the
// directive and is not a generated file. It is the test the analyzer applies
// to every file before loading any package.
func Prefilter(data []byte) bool {
	return bytes.Contains(data, marker) && !isGenerated(data)
}

var generatedRE = regexp.MustCompile(`^// Code generated .* DO NOT EDIT\.$`)

// isGenerated reports whether a "// Code generated ... DO NOT EDIT." line comes
// before the package clause.
func isGenerated(data []byte) bool {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimRight(line, "\r")
		if bytes.HasPrefix(line, []byte("package ")) || bytes.HasPrefix(line, []byte("package\t")) {
			return false
		}
		if generatedRE.Match(line) {
			return true
		}
	}
	return false
}

// matchBuild reports whether the file is part of the build with these tags on
// this GOOS/GOARCH (file name suffixes and //go:build lines).
func matchBuild(abs string, data []byte, tags []string) bool {
	ctxt := build.Default
	ctxt.BuildTags = tags
	ctxt.OpenFile = func(string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	ok, err := ctxt.MatchFile(filepath.Dir(abs), filepath.Base(abs))
	return err != nil || ok // on error, let the loader report the problem
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
