package main

import (
	"crypto/sha256"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"

	"github.com/nuvom/nuvom/manifest"
)

// declCache lets nuvom dev skip the analysis of packages whose edits cannot
// change a task. The analyzer reads only declarations (it type-checks without
// function bodies), so an edit confined to function bodies changes no task,
// no option and no diagnostic: the cache keeps, per Go file, a hash of the
// file's bytes outside its functions' bodies. Directives, doc comments,
// signatures, types, constants and build constraints all lie outside bodies.
// The comparison is conservative: a comment or blank line between declarations
// counts as a change.
type declCache struct {
	root   string
	hashes map[string][sha256.Size]byte // slash path relative to root -> declaration hash
}

// newDeclCache hashes the files (slash, relative to root) in parallel.
func newDeclCache(root string, files []string) *declCache {
	c := &declCache{root: root, hashes: make(map[string][sha256.Size]byte, len(files))}
	sums := make([][sha256.Size]byte, len(files))
	ok := make([]bool, len(files))
	var wg sync.WaitGroup
	next := make(chan int)
	for range goruntime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sums[i], ok[i] = c.hashFile(files[i])
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, f := range files {
		if ok[i] {
			c.hashes[f] = sums[i]
		}
	}
	return c
}

// hashFile returns the declaration hash of the file rel; ok is false when it
// cannot be read (removed).
func (c *declCache) hashFile(rel string) (sum [sha256.Size]byte, ok bool) {
	src, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(rel)))
	if err != nil {
		return sum, false
	}
	return declHash(src), true
}

// changed records the file's current state and reports whether its
// declarations differ from the recorded ones. A file seen for the first time,
// or removed, counts as changed.
func (c *declCache) changed(rel string) bool {
	sum, ok := c.hashFile(rel)
	old, had := c.hashes[rel]
	if !ok {
		delete(c.hashes, rel)
		return true
	}
	c.hashes[rel] = sum
	return !had || old != sum
}

// declHash hashes src without the bodies of its top-level functions and
// methods. Source that does not parse is hashed whole (and the analyzer will
// report the syntax error).
func declHash(src []byte) [sha256.Size]byte {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, parser.SkipObjectResolution)
	if err != nil {
		return sha256.Sum256(src)
	}
	h := sha256.New()
	tf := fset.File(f.Pos())
	prev := 0
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		open, end := tf.Offset(fd.Body.Lbrace)+1, tf.Offset(fd.Body.Rbrace)
		h.Write(src[prev:open])
		prev = end
	}
	h.Write(src[prev:])
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// dependents returns the folders of the tasks in m whose params or result use
// a named type declared in one of the packages (import paths), sorted. When a
// package's declarations change, those tasks' schemas may change too.
func dependents(m *manifest.Manifest, pkgs map[string]bool) []string {
	if m == nil || len(pkgs) == 0 {
		return nil
	}
	dirs := map[string]bool{}
	for _, t := range m.Tasks {
		uses := false
		for _, p := range t.Params {
			uses = uses || typeUses(&p.Type, pkgs)
		}
		if t.Result != nil {
			uses = uses || typeUses(t.Result, pkgs)
		}
		if uses {
			dirs[t.Dir] = true
		}
	}
	out := make([]string, 0, len(dirs))
	for d := range dirs {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// typeUses reports whether t names a type of one of the packages, at any depth.
func typeUses(t *manifest.Type, pkgs map[string]bool) bool {
	if t == nil {
		return false
	}
	if i := strings.LastIndexByte(t.Name, '.'); i > 0 && pkgs[t.Name[:i]] {
		return true
	}
	if typeUses(t.Elem, pkgs) || typeUses(t.Key, pkgs) {
		return true
	}
	for i := range t.Fields {
		if typeUses(&t.Fields[i].Type, pkgs) {
			return true
		}
	}
	return false
}

// importPathOf is the import path of the package folder dir (slash, relative).
func importPathOf(module, dir string) string {
	if dir == "." {
		return module
	}
	return path.Join(module, dir)
}
