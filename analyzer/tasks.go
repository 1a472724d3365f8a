package analyzer

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/tools/go/packages"

	"github.com/nuvom/nuvom/manifest"
)

// RuntimePath is the import path of the user API package (nuvom) whose JobInfo hooks take.
const RuntimePath = "github.com/nuvom/nuvom"

const (
	wantBefore = "func(context.Context, nuvom.JobInfo) error"
	wantAfter  = "func(context.Context, nuvom.JobInfo, error)"
)

// spacedRE matches the misspelt directive "// nuvom:task"; casedRE the
// directive in another case ("//Nuvom:task"), which Go's tools do not take
// as a directive either.
var (
	spacedRE = regexp.MustCompile(`^//\s+nuvom:task\b`)
	casedRE  = regexp.MustCompile(`(?i)^//\s*nuvom:task\b`)
)

// found is one annotated function, valid or not, for the duplicate-name check.
type found struct {
	name string
	pos  token.Position
	task *manifest.Task // nil when the task has errors of its own
	// pkgName is the Go package name.
	pkgName string
}

// pkgScan analyzes the candidate files of one loaded package.
type pkgScan struct {
	mod   Module
	dir   string
	pkg   *packages.Package
	files map[string]bool
	c     *collector
	found []found
}

func (p *pkgScan) pos(x token.Pos) token.Position { return p.pkg.Fset.Position(x) }

func isNamed(t types.Type, pkgPath, name string) bool {
	n, ok := types.Unalias(t).(*types.Named)
	if !ok || n.Obj().Pkg() == nil {
		return false
	}
	return n.Obj().Pkg().Path() == pkgPath && n.Obj().Name() == name
}

func isContext(t types.Type) bool { return isNamed(t, "context", "Context") }

func isError(t types.Type) bool { return types.Identical(t, types.Universe.Lookup("error").Type()) }

// isDirective reports whether a comment is a //nuvom:task line.
func isDirective(text string) bool {
	if !strings.HasPrefix(text, Directive) {
		return false
	}
	rest := text[len(Directive):]
	return rest == "" || rest[0] == ' ' || rest[0] == '\t'
}

func (p *pkgScan) scan() {
	for _, f := range p.pkg.Syntax {
		name := p.pkg.Fset.File(f.Pos()).Name()
		if !p.files[name] || ast.IsGenerated(f) {
			continue
		}
		p.scanFile(f, name)
	}
}

func (p *pkgScan) scanFile(f *ast.File, filename string) {
	// Which comment groups are whose doc.
	funcOf := map[*ast.CommentGroup]*ast.FuncDecl{}
	declKind := map[*ast.CommentGroup]string{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Doc != nil {
				funcOf[d.Doc] = d
			}
		case *ast.GenDecl:
			kind := d.Tok.String()
			if d.Doc != nil {
				declKind[d.Doc] = kind
			}
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Doc != nil {
						declKind[s.Doc] = kind
					}
				case *ast.ValueSpec:
					if s.Doc != nil {
						declKind[s.Doc] = kind
					}
				}
			}
		}
	}
	directives := map[*ast.FuncDecl][]*ast.Comment{}
	var order []*ast.FuncDecl
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			switch {
			case isDirective(c.Text):
				fd := funcOf[cg]
				if fd == nil {
					where := "a floating comment"
					if k, ok := declKind[cg]; ok {
						where = "the doc comment of a " + k + " declaration"
					}
					p.c.errorf(p.pos(c.Pos()), "%s is in %s: only top-level funcs can be tasks", Directive, where)
					continue
				}
				if len(directives[fd]) == 0 {
					order = append(order, fd)
				}
				directives[fd] = append(directives[fd], c)
			case strings.HasPrefix(c.Text, "//nuvom:"):
				word, _, _ := strings.Cut(c.Text, " ")
				p.c.warnf(p.pos(c.Pos()), "unknown directive %s: did you mean %s?", word, Directive)
			case spacedRE.MatchString(c.Text):
				p.c.warnf(p.pos(c.Pos()), "%q is not a directive: write %s with no space after //", c.Text, Directive)
			case casedRE.MatchString(c.Text):
				p.c.warnf(p.pos(c.Pos()), "%q is not a directive: write %s in lower case", c.Text, Directive)
			}
		}
	}
	for _, fd := range order {
		p.task(fd, directives[fd], filename)
	}
}

// paramPositions returns the position of each parameter (its name, or its type when unnamed).
func (p *pkgScan) paramPositions(fl *ast.FieldList) []token.Position {
	var out []token.Position
	if fl == nil {
		return out
	}
	for _, field := range fl.List {
		if len(field.Names) == 0 {
			out = append(out, p.pos(field.Type.Pos()))
			continue
		}
		for _, n := range field.Names {
			out = append(out, p.pos(n.Pos()))
		}
	}
	return out
}

// task checks one annotated func; dcs are its directive comments (one is right).
func (p *pkgScan) task(fd *ast.FuncDecl, dcs []*ast.Comment, filename string) {
	before := len(p.c.diags)
	hasErr := func() bool { return HasErrors(p.c.diags[before:]) }
	funcPos := p.pos(fd.Name.Pos())
	fn := fd.Name.Name
	dc := dcs[0]
	for _, extra := range dcs[1:] {
		p.c.errorf(p.pos(extra.Pos()), "second %s on %s: put all options on one line", Directive, fn)
	}

	// The annotation.
	dpos := p.pos(dc.Pos())
	colOf := func(col int) token.Position {
		q := dpos
		q.Column += len(Directive) + col - 1
		q.Offset += len(Directive) + col - 1
		return q
	}
	kvs, perr := ParseDirective(dc.Text[len(Directive):])
	if es, ok := perr.(DirectiveErrors); ok {
		for _, e := range es {
			p.c.errorf(colOf(e.Col), "%s", e.Msg)
		}
	}
	po, probs := applyOptions(kvs)
	for _, pr := range probs {
		p.c.errorf(colOf(pr.kv.Col), "%s", pr.msg)
	}

	// Where the function is.
	switch {
	case fd.Recv != nil:
		recv := types.ExprString(fd.Recv.List[0].Type)
		p.c.errorf(funcPos, "%s on method %s.%s: tasks must be top-level funcs", Directive, strings.TrimPrefix(recv, "*"), fn)
		return
	case fd.Type.TypeParams != nil && fd.Type.TypeParams.NumFields() > 0:
		p.c.errorf(funcPos, "%s on generic func %s: generic funcs cannot be tasks", Directive, fn)
		return
	case fn == "init" || fn == "_":
		p.c.errorf(funcPos, "%s on func %s: it cannot be called by name", Directive, fn)
		return
	}
	if p.pkg.Name == "main" {
		p.c.errorf(funcPos, "task %s is in package main: the registry must import it; move it to a non-main package", fn)
	}
	obj, _ := p.pkg.TypesInfo.Defs[fd.Name].(*types.Func)
	if obj == nil {
		p.c.errorf(funcPos, "cannot resolve func %s", fn)
		return
	}
	sig := obj.Signature()

	t := manifest.Task{
		Package: p.pkg.PkgPath,
		Dir:     p.dir,
		Func:    fn,
		File:    p.rel(filename),
		Doc:     strings.TrimSpace(fd.Doc.Text()),
		Options: po.opts,
		Params:  []manifest.Param{},
	}
	if po.name != "" {
		t.Name = po.name
	} else if p.dir == "." {
		t.Name = p.pkg.Name + "." + fn
	} else {
		t.Name = p.dir + "." + fn
	}

	// Params.
	ppos := p.paramPositions(fd.Type.Params)
	names := map[string]bool{}
	for i := 0; i < sig.Params().Len(); i++ {
		if n := sig.Params().At(i).Name(); n != "" && n != "_" {
			names[n] = true
		}
	}
	for i := 0; i < sig.Params().Len(); i++ {
		v := sig.Params().At(i)
		at := funcPos
		if i < len(ppos) {
			at = ppos[i]
		}
		if i == 0 && isContext(v.Type()) {
			t.Context = true
			continue
		}
		name := v.Name()
		if name == "" || name == "_" {
			idx := i
			if t.Context {
				idx--
			}
			name = "arg" + strconv.Itoa(idx)
			for names[name] {
				name += "_"
			}
			names[name] = true
		}
		subject := "param " + name
		if isContext(v.Type()) {
			p.c.errorf(at, "%s: context.Context is only allowed as the first parameter", subject)
			continue
		}
		if sig.Variadic() && i == sig.Params().Len()-1 {
			p.c.errorf(at, "%s is variadic: use a slice parameter instead", subject)
			continue
		}
		sb := &schemaBuilder{pkg: p.pkg.Types, subject: subject}
		ty := sb.schema(v.Type(), "")
		for _, e := range sb.errs {
			p.c.errorf(at, "%s", e)
		}
		t.Params = append(t.Params, manifest.Param{Name: name, Type: ty})
	}

	// Results.
	res := sig.Results()
	resPos := funcPos
	if fd.Type.Results != nil {
		resPos = p.pos(fd.Type.Results.Pos())
	}
	switch {
	case res.Len() == 1 && isError(res.At(0).Type()):
	case res.Len() == 2 && isError(res.At(1).Type()):
		sb := &schemaBuilder{pkg: p.pkg.Types, subject: "result"}
		ty := sb.schema(res.At(0).Type(), "")
		for _, e := range sb.errs {
			p.c.errorf(resPos, "%s", e)
		}
		t.Result = &ty
	case res.Len() == 0:
		p.c.errorf(funcPos, "task %s returns nothing: it must return error or (T, error)", fn)
	case res.Len() == 2 && isError(res.At(0).Type()):
		p.c.errorf(resPos, "task %s returns the error first: it must return error or (T, error), the error last", fn)
	case res.Len() > 2:
		p.c.errorf(resPos, "task %s returns %d values: it must return error or (T, error)", fn, res.Len())
	default:
		p.c.errorf(resPos, "task %s has no error result: it must return error or (T, error)", fn)
	}

	// A declared schedule enqueues the task with no arguments.
	if po.schedKV != nil && len(t.Params) > 0 {
		p.c.errorf(colOf(po.schedKV.Col), "%s= on %s: a scheduled task takes no params (besides context.Context), it has %d; schedule it with args from code (%s.Schedule) or nuvom schedule add",
			po.schedKV.Key, fn, len(t.Params), handleName(fn))
	}

	// Hooks.
	for _, key := range []string{"before", "after", "on_error"} {
		if kv, ok := po.hookKVs[key]; ok {
			p.checkHook(kv, colOf(kv.Col))
		}
	}

	if fd.Name.IsExported() && t.Doc == "" {
		p.c.warnf(funcPos, "exported task func %s has no doc comment: it becomes the task's description", fn)
	}

	t.Signature = t.ComputeSignature()
	fnd := found{name: t.Name, pos: funcPos, pkgName: p.pkg.Name}
	if po.nameKV != nil {
		fnd.pos = colOf(po.nameKV.Col)
	}
	if !hasErr() {
		fnd.task = &t
	}
	p.found = append(p.found, fnd)
}

func (p *pkgScan) rel(filename string) string {
	r, err := filepath.Rel(p.mod.Root, filename)
	if err != nil {
		return filepath.ToSlash(filename)
	}
	return filepath.ToSlash(r)
}

func (p *pkgScan) checkHook(kv KV, at token.Position) {
	want := wantBefore
	if kv.Key != "before" {
		want = wantAfter
	}
	obj := p.pkg.Types.Scope().Lookup(kv.Value)
	if obj == nil {
		p.c.errorf(at, "%s=%s: no top-level func %s in package %s (want %s)", kv.Key, kv.Value, kv.Value, p.pkg.Name, want)
		return
	}
	fn, ok := obj.(*types.Func)
	if !ok {
		p.c.errorf(at, "%s=%s: %s is not a func (want %s)", kv.Key, kv.Value, kv.Value, want)
		return
	}
	sig := fn.Signature()
	ps, rs := sig.Params(), sig.Results()
	good := sig.TypeParams().Len() == 0 && !sig.Variadic() && ps.Len() >= 2 &&
		isContext(ps.At(0).Type()) && isNamed(ps.At(1).Type(), RuntimePath, "JobInfo")
	if kv.Key == "before" {
		good = good && ps.Len() == 2 && rs.Len() == 1 && isError(rs.At(0).Type())
	} else {
		good = good && ps.Len() == 3 && isError(ps.At(2).Type()) && rs.Len() == 0
	}
	if !good {
		got := types.TypeString(sig, func(q *types.Package) string {
			if q == p.pkg.Types {
				return ""
			}
			return q.Name()
		})
		p.c.errorf(at, "%s=%s: %s has type %s, want %s", kv.Key, kv.Value, kv.Value, got, want)
	}
}

// checkDuplicates reports every task name used more than once, at each use.
func checkDuplicates(all []found, root string, c *collector) {
	byName := map[string][]found{}
	for _, f := range all {
		byName[f.name] = append(byName[f.name], f)
	}
	for _, fs := range byName {
		if len(fs) < 2 {
			continue
		}
		for i, f := range fs {
			var others []string
			for j, g := range fs {
				if j != i {
					others = append(others, shortPos(g.pos, root))
				}
			}
			sort.Strings(others)
			c.errorf(f.pos, "task name %q also used at %s", f.name, strings.Join(others, ", "))
		}
	}
}

func shortPos(p token.Position, root string) string {
	name := p.Filename
	if r, err := filepath.Rel(root, name); err == nil {
		name = r
	}
	return fmt.Sprintf("%s:%d", filepath.ToSlash(name), p.Line)
}

// handleName is the generated handle of task function fn (as codegen names it).
func handleName(fn string) string {
	if fn == "" {
		return "Task"
	}
	return strings.ToUpper(fn[:1]) + fn[1:] + "Task"
}
