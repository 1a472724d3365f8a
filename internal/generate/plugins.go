package generate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"github.com/nuvom/nuvom/analyzer"
	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/runtime/plugin/pluginconf"
)

// PluginSet is what the module's .nuvom_plugins.toml says, checked against
// the plugin packages' source.
type PluginSet struct {
	// File is the file's content, nil when the module has none.
	File []byte
	// Parsed is the parsed file (nil when there is none or it did not parse).
	Parsed *pluginconf.File
	// Plugins are the manifest entries, in file order.
	Plugins []manifest.Plugin
	// Diagnostics are the problems found, positioned in the file.
	Diagnostics []analyzer.Diagnostic
}

// LoadPlugins reads root/.nuvom_plugins.toml, finds each plugin's package
// with the go command (env is its environment; nil means the process's),
// reads the package's Plugin variable and Settings type from its source
// (without compiling it) and checks each plugin's settings against that
// schema. ${NAME} references are left alone: they are expanded when the
// worker starts. A missing file gives an empty set.
func LoadPlugins(ctx context.Context, root string, env []string) (*PluginSet, error) {
	abs := filepath.Join(root, pluginconf.FileName)
	data, err := os.ReadFile(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return &PluginSet{}, nil
	}
	if err != nil {
		return nil, err
	}
	ps := &PluginSet{File: data}
	diag := func(err error) {
		for _, e := range flatten(err) {
			var pe *pluginconf.Error
			if errors.As(e, &pe) {
				ps.Diagnostics = append(ps.Diagnostics, analyzer.Diagnostic{
					Pos: token.Position{Filename: abs, Line: pe.Pos.Line, Column: pe.Pos.Col}, Severity: analyzer.Error, Message: pe.Msg})
				continue
			}
			ps.Diagnostics = append(ps.Diagnostics, analyzer.Diagnostic{Pos: token.Position{Filename: abs}, Severity: analyzer.Error, Message: e.Error()})
		}
	}
	f, err := pluginconf.Parse(abs, data)
	if err != nil {
		diag(err)
		return ps, nil
	}
	ps.Parsed = f
	if len(f.Entries) == 0 {
		return ps, nil
	}
	paths := make([]string, len(f.Entries))
	for i, e := range f.Entries {
		paths[i] = e.Import
	}
	dirs, err := findPackages(ctx, root, env, paths)
	if err != nil {
		return nil, err
	}
	for i := range f.Entries {
		e := &f.Entries[i]
		pos := e.FieldPos("import")
		d := dirs[e.Import]
		if d.err != "" {
			hint := "add its module with go get"
			if e.Builtin {
				hint = "upgrade github.com/nuvom/nuvom"
			}
			diag(&pluginconf.Error{Pos: pos, Msg: fmt.Sprintf("plugin %s: cannot find package %s (%s): %s", e.Name, e.Import, hint, d.err)})
			continue
		}
		schema, hasPlugin, err := readPackage(d.dir)
		if err != nil {
			diag(&pluginconf.Error{Pos: pos, Msg: fmt.Sprintf("plugin %s: read %s: %v", e.Name, e.Import, err)})
			continue
		}
		if !hasPlugin {
			diag(&pluginconf.Error{Pos: pos, Msg: fmt.Sprintf("package %s declares no Plugin variable: it is not a Nuvom plugin", e.Import)})
			continue
		}
		if err := e.Check(e.Name, schema); err != nil {
			diag(err)
			continue
		}
		mp := manifest.Plugin{Name: e.Name, Import: e.Import, Builtin: e.Builtin, Settings: []manifest.Setting{}}
		for _, fld := range schema {
			mp.Settings = append(mp.Settings, manifest.Setting{Key: fld.Key, Type: string(fld.Kind), Doc: fld.Doc})
		}
		ps.Plugins = append(ps.Plugins, mp)
	}
	return ps, nil
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

type pkgDir struct{ dir, err string }

// findPackages locates packages with one go list call.
func findPackages(ctx context.Context, root string, env []string, paths []string) (map[string]pkgDir, error) {
	args := []string{"list", "-e", "-find"}
	if _, err := os.Stat(filepath.Join(root, "vendor")); err != nil {
		// Never reach for the network: a package not in the build list is
		// reported (add it with go get), not downloaded.
		args = append(args, "-mod=readonly")
	}
	args = append(append(args, "-f", "{{.ImportPath}}\t{{.Dir}}\t{{if .Error}}{{.Error.Err}}{{end}}"), paths...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if env != nil {
		cmd.Env = env
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %v: %s", strings.Join(paths, " "), err, strings.TrimSpace(stderr.String()))
	}
	res := map[string]pkgDir{}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimRight(line, "\r")
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) != 3 {
			continue
		}
		d := pkgDir{dir: parts[1], err: strings.TrimSpace(strings.ReplaceAll(parts[2], "\n", " "))}
		if d.dir == "" && d.err == "" {
			d.err = "no such package"
		}
		res[parts[0]] = d
	}
	for _, p := range paths {
		if _, ok := res[p]; !ok {
			res[p] = pkgDir{err: "no such package"}
		}
	}
	return res, nil
}

// readPackage parses the package's non-test Go files for a top-level var
// Plugin and a struct type Settings, and returns the settings schema.
func readPackage(dir string) (pluginconf.Schema, bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false, err
	}
	fset := token.NewFileSet()
	var schema pluginconf.Schema
	hasPlugin := false
	for _, de := range entries {
		name := de.Name()
		if de.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, false, err
		}
		for _, decl := range file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				switch sp := spec.(type) {
				case *ast.ValueSpec:
					for _, n := range sp.Names {
						if n.Name == "Plugin" && gd.Tok == token.VAR {
							hasPlugin = true
						}
					}
				case *ast.TypeSpec:
					if sp.Name.Name != "Settings" {
						continue
					}
					st, ok := sp.Type.(*ast.StructType)
					if !ok {
						return nil, false, fmt.Errorf("type Settings is not a struct")
					}
					schema = structSchema(st)
				}
			}
		}
	}
	return schema, hasPlugin, nil
}

func structSchema(st *ast.StructType) pluginconf.Schema {
	s := pluginconf.Schema{}
	for _, f := range st.Fields.List {
		tag := ""
		if f.Tag != nil {
			if v, err := strconv.Unquote(f.Tag.Value); err == nil {
				tag, _, _ = strings.Cut(reflect.StructTag(v).Get("toml"), ",")
			}
		}
		if tag == "-" {
			continue
		}
		doc := ""
		if f.Doc != nil {
			doc = firstSentence(f.Doc.Text())
		}
		for _, n := range f.Names {
			if !n.IsExported() {
				continue
			}
			key := n.Name
			if tag != "" {
				key = tag
			}
			s = append(s, pluginconf.Field{Key: key, Kind: kindOfExpr(f.Type), Doc: doc})
		}
	}
	return s
}

func firstSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

func kindOfExpr(e ast.Expr) pluginconf.Kind {
	switch t := e.(type) {
	case *ast.Ident:
		switch t.Name {
		case "string":
			return pluginconf.KindString
		case "bool":
			return pluginconf.KindBool
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
			return pluginconf.KindInt
		case "float32", "float64":
			return pluginconf.KindFloat
		}
	case *ast.SelectorExpr:
		if x, ok := t.X.(*ast.Ident); ok && x.Name == "time" && t.Sel.Name == "Duration" {
			return pluginconf.KindDuration
		}
	case *ast.ArrayType:
		if id, ok := t.Elt.(*ast.Ident); ok && id.Name == "string" && t.Len == nil {
			return pluginconf.KindStrings
		}
	case *ast.MapType:
		k, ok1 := t.Key.(*ast.Ident)
		v, ok2 := t.Value.(*ast.Ident)
		if ok1 && ok2 && k.Name == "string" && v.Name == "string" {
			return pluginconf.KindMap
		}
	}
	return pluginconf.KindOther
}
