package analyzer

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
)

// Module is the Go module being analyzed.
type Module struct {
	// Path is the module path from go.mod.
	Path string
	// Root is the absolute folder holding go.mod.
	Root string
}

// findModule returns the module whose go.mod is nearest to dir, upward.
func findModule(dir string) (Module, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Module{}, fmt.Errorf("resolve %s: %w", dir, err)
	}
	for d := abs; ; {
		gomod := filepath.Join(d, "go.mod")
		data, err := os.ReadFile(gomod)
		if err == nil {
			p := modfile.ModulePath(data)
			if p == "" {
				return Module{}, fmt.Errorf("%s: no module line", gomod)
			}
			return Module{Path: p, Root: d}, nil
		}
		if !os.IsNotExist(err) {
			return Module{}, fmt.Errorf("read %s: %w", gomod, err)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return Module{}, fmt.Errorf("no go.mod found in %s or any folder above it", abs)
		}
		d = parent
	}
}

// Scope is one folder a pattern covers: Dir alone, or Dir and everything below it.
type Scope struct {
	// Dir is slash-separated and relative to the module root, "." for the root.
	Dir       string
	Recursive bool
}

// resolvePatterns turns command-line patterns into scopes inside mod.
func resolvePatterns(mod Module, cwd string, patterns []string) ([]Scope, error) {
	if len(patterns) == 0 {
		return []Scope{{Dir: ".", Recursive: true}}, nil
	}
	var scopes []Scope
	for _, pat := range patterns {
		s, err := resolvePattern(mod, cwd, pat)
		if err != nil {
			return nil, err
		}
		scopes = append(scopes, s)
	}
	return scopes, nil
}

func resolvePattern(mod Module, cwd, pat string) (Scope, error) {
	p := filepath.ToSlash(pat)
	recursive := false
	switch {
	case p == "...":
		return Scope{}, fmt.Errorf("pattern %q: use ./... for the packages of this module", pat)
	case strings.HasSuffix(p, "/..."):
		recursive = true
		p = strings.TrimSuffix(p, "/...")
	}
	if strings.Contains(p, "...") {
		return Scope{}, fmt.Errorf("pattern %q: only a trailing /... wildcard is supported", pat)
	}
	var abs string
	switch {
	case p == "." || p == ".." || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../"):
		abs = filepath.Join(cwd, filepath.FromSlash(p))
	case filepath.IsAbs(pat) || filepath.IsAbs(filepath.FromSlash(p)):
		abs = filepath.Clean(filepath.FromSlash(p))
	case p == mod.Path:
		abs = mod.Root
	case strings.HasPrefix(p, mod.Path+"/"):
		abs = filepath.Join(mod.Root, filepath.FromSlash(strings.TrimPrefix(p, mod.Path+"/")))
	default:
		return Scope{}, fmt.Errorf("pattern %q is outside module %s", pat, mod.Path)
	}
	rel, err := filepath.Rel(mod.Root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return Scope{}, fmt.Errorf("pattern %q is outside module %s at %s", pat, mod.Path, mod.Root)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return Scope{}, fmt.Errorf("pattern %q: %w", pat, err)
	}
	if !fi.IsDir() {
		return Scope{}, fmt.Errorf("pattern %q: %s is not a folder", pat, abs)
	}
	rel = filepath.ToSlash(rel)
	// A go.mod between the module root and the folder makes it another module.
	for d := rel; d != "."; d = path.Dir(d) {
		if _, err := os.Stat(filepath.Join(mod.Root, filepath.FromSlash(d), "go.mod")); err == nil {
			return Scope{}, fmt.Errorf("pattern %q is in the nested module at %s: run nuvomgen there", pat, d)
		}
	}
	return Scope{Dir: rel, Recursive: recursive}, nil
}

// importPath returns the import path of the package in dir (slash, relative).
func (m Module) importPath(dir string) string {
	if dir == "." {
		return m.Path
	}
	return m.Path + "/" + dir
}
