package analyzer

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"os"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

// Loading. go/packages type-checks the candidate packages from source but,
// asked for types, also has the go command compile them to export data that
// nothing reads: a full compile of every task package on every run. The
// analyzer instead loads in three steps, all through go/packages:
//
//  1. list the candidate packages, their files and imports (no compile);
//  2. load export data for what they import outside the candidate set (the
//     go command builds it, or finds it in its cache);
//  3. parse and type-check the candidates itself, bodies included, in import
//     order, so every compiler error a candidate has is still reported.
//
// Packages that use cgo fall back to the one-call load.

// errCgo makes load fall back to the one-call loader.
var errCgo = errors.New("a candidate package uses cgo")

// load type-checks the candidate packages.
func load(ctx context.Context, mod Module, cfg Config, dirs []string, overlay map[string][]byte) ([]*packages.Package, error) {
	paths := make([]string, len(dirs))
	for i, d := range dirs {
		paths[i] = mod.importPath(d)
	}
	pkgs, err := loadSplit(ctx, mod, cfg, paths, overlay)
	if errors.Is(err, errCgo) {
		return loadCompiled(ctx, mod, cfg, paths, overlay)
	}
	return pkgs, err
}

func baseConfig(ctx context.Context, mod Module, cfg Config, overlay map[string][]byte) packages.Config {
	pc := packages.Config{Context: ctx, Dir: mod.Root, Env: cfg.Env, Overlay: overlay}
	if len(cfg.Tags) > 0 {
		pc.BuildFlags = []string{"-tags=" + strings.Join(cfg.Tags, ",")}
	}
	return pc
}

// loadCompiled is the one-call load: go/packages type-checks the candidates
// (their declarations only) with export data the go command compiles.
func loadCompiled(ctx context.Context, mod Module, cfg Config, paths []string, overlay map[string][]byte) ([]*packages.Package, error) {
	pc := baseConfig(ctx, mod, cfg, overlay)
	pc.Mode = loadMode
	pc.ParseFile = parseDeclarations
	pkgs, err := packages.Load(&pc, paths...)
	if err != nil {
		return nil, fmt.Errorf("analyzer: load %d packages of %s: %w", len(paths), mod.Path, err)
	}
	return pkgs, nil
}

func loadSplit(ctx context.Context, mod Module, cfg Config, paths []string, overlay map[string][]byte) ([]*packages.Package, error) {
	// 1. The candidates, their files and imports.
	lc := baseConfig(ctx, mod, cfg, overlay)
	lc.Mode = packages.NeedName | packages.NeedFiles | packages.NeedImports | packages.NeedModule
	roots, err := packages.Load(&lc, paths...)
	if err != nil {
		return nil, fmt.Errorf("analyzer: list %d packages of %s: %w", len(paths), mod.Path, err)
	}
	isRoot := map[string]*packages.Package{}
	for _, r := range roots {
		isRoot[r.PkgPath] = r
	}
	depSet := map[string]bool{}
	for _, r := range roots {
		for _, imp := range r.Imports {
			if isRoot[imp.PkgPath] == nil && imp.PkgPath != "unsafe" && imp.PkgPath != "C" {
				depSet[imp.PkgPath] = true
			}
			if imp.PkgPath == "C" {
				return nil, errCgo
			}
		}
	}

	// 2. Export data of everything else they import.
	deps := map[string]*packages.Package{}
	if len(depSet) > 0 {
		dc := baseConfig(ctx, mod, cfg, overlay)
		dc.Mode = packages.NeedName | packages.NeedTypes
		list := make([]string, 0, len(depSet))
		for p := range depSet {
			list = append(list, p)
		}
		sort.Strings(list)
		loaded, err := packages.Load(&dc, list...)
		if err != nil {
			return nil, fmt.Errorf("analyzer: load the imports of %d packages of %s: %w", len(paths), mod.Path, err)
		}
		for _, p := range loaded {
			deps[p.PkgPath] = p
		}
	}

	// 3. The candidates from source, each after the candidates it imports.
	fset := token.NewFileSet()
	checked := map[string]*packages.Package{}
	var check func(r *packages.Package, stack map[string]bool) error
	check = func(r *packages.Package, stack map[string]bool) error {
		if checked[r.PkgPath] != nil {
			return nil
		}
		stack[r.PkgPath] = true
		defer delete(stack, r.PkgPath)
		for _, imp := range sortedImports(r) {
			if dep := isRoot[imp.PkgPath]; dep != nil && !stack[dep.PkgPath] {
				if err := check(dep, stack); err != nil {
					return err
				}
			}
		}
		p, err := checkPackage(fset, r, overlay, deps, checked)
		if err != nil {
			return err
		}
		checked[r.PkgPath] = p
		return nil
	}
	out := make([]*packages.Package, 0, len(roots))
	for _, r := range roots {
		if err := check(r, map[string]bool{}); err != nil {
			return nil, err
		}
		out = append(out, checked[r.PkgPath])
	}
	return out, nil
}

func sortedImports(r *packages.Package) []*packages.Package {
	keys := make([]string, 0, len(r.Imports))
	for k := range r.Imports {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*packages.Package, len(keys))
	for i, k := range keys {
		out[i] = r.Imports[k]
	}
	return out
}

// checkPackage parses and type-checks one candidate listed by step 1.
func checkPackage(fset *token.FileSet, r *packages.Package, overlay map[string][]byte,
	deps, checked map[string]*packages.Package) (*packages.Package, error) {
	p := &packages.Package{
		ID: r.ID, Name: r.Name, PkgPath: r.PkgPath, GoFiles: r.GoFiles, Module: r.Module,
		Fset: fset, Errors: append([]packages.Error(nil), r.Errors...), Imports: map[string]*packages.Package{},
	}
	for _, f := range r.GoFiles {
		src, ok := overlay[f]
		if !ok {
			var err error
			if src, err = os.ReadFile(f); err != nil {
				return nil, fmt.Errorf("analyzer: %w", err)
			}
		}
		file, err := parser.ParseFile(fset, f, src, parser.ParseComments|parser.SkipObjectResolution|parser.AllErrors)
		var list scanner.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				p.Errors = append(p.Errors, packages.Error{Pos: e.Pos.String(), Msg: e.Msg, Kind: packages.ParseError})
			}
		}
		if file != nil {
			p.Syntax = append(p.Syntax, file)
		}
	}
	for path, imp := range r.Imports {
		if dep := deps[imp.PkgPath]; dep != nil {
			p.Imports[path] = dep
		} else if c := checked[imp.PkgPath]; c != nil {
			p.Imports[path] = c
		}
	}
	p.TypesInfo = &types.Info{
		Types:      map[ast.Expr]types.TypeAndValue{},
		Defs:       map[*ast.Ident]types.Object{},
		Uses:       map[*ast.Ident]types.Object{},
		Implicits:  map[ast.Node]types.Object{},
		Instances:  map[*ast.Ident]types.Instance{},
		Selections: map[*ast.SelectorExpr]*types.Selection{},
		Scopes:     map[ast.Node]*types.Scope{},
	}
	conf := types.Config{
		Importer: importerFunc(func(path string) (*types.Package, error) {
			if path == "unsafe" {
				return types.Unsafe, nil
			}
			imp := p.Imports[path]
			if imp == nil || imp.Types == nil {
				return nil, fmt.Errorf("could not import %s", path)
			}
			return imp.Types, nil
		}),
		Sizes: types.SizesFor("gc", build.Default.GOARCH),
		Error: func(err error) {
			if te, ok := err.(types.Error); ok {
				p.Errors = append(p.Errors, packages.Error{Pos: te.Fset.Position(te.Pos).String(), Msg: te.Msg, Kind: packages.TypeError})
			}
		},
	}
	if r.Module != nil && r.Module.GoVersion != "" {
		conf.GoVersion = "go" + r.Module.GoVersion
	}
	p.Types, _ = conf.Check(r.PkgPath, fset, p.Syntax, p.TypesInfo)
	return p, nil
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
