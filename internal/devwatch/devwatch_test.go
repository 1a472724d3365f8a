package devwatch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// write creates or overwrites root/rel, making its folder.
func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// module makes a small module tree in a temp dir.
func module(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write(t, root, "go.mod", "module example.com/m\n\ngo 1.22\n")
	write(t, root, "a/a.go", "package a\n")
	write(t, root, "b/c/c.go", "package c\n")
	return root
}

func start(t *testing.T, opts Options) *Watcher {
	t.Helper()
	w, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// next waits for a batch for up to d; ok is false when none came.
func next(w *Watcher, d time.Duration) (Batch, bool) {
	select {
	case b := <-w.Batches():
		return b, true
	case <-time.After(d):
		return Batch{}, false
	}
}

func TestBurstIsOneBatch(t *testing.T) {
	root := module(t)
	w := start(t, Options{Root: root, Debounce: 150 * time.Millisecond})
	for i := range 10 {
		// An editor's save: a temp file, then the write itself, several files.
		write(t, root, "a/.a.go.swp", "junk")
		write(t, root, "a/a.go", fmt.Sprintf("package a\n\nconst N = %d\n", i))
		write(t, root, "b/c/c.go", fmt.Sprintf("package c\n\nconst N = %d\n", i))
		time.Sleep(20 * time.Millisecond)
	}
	b, ok := next(w, 2*time.Minute)
	if !ok {
		t.Fatal("no batch after ten saves")
	}
	if want := []string{"a/a.go", "b/c/c.go"}; !slices.Equal(b.Files, want) {
		t.Errorf("batch files = %q, want %q", b.Files, want)
	}
	if b2, ok := next(w, 600*time.Millisecond); ok {
		t.Errorf("second batch %+v after one burst", b2)
	}
}

func TestNewFolderIsWatched(t *testing.T) {
	root := module(t)
	w := start(t, Options{Root: root, Debounce: 50 * time.Millisecond})
	write(t, root, "d/e/e.go", "package e\n")
	b, ok := next(w, 2*time.Minute)
	if !ok {
		t.Fatal("no batch after creating d/e/e.go")
	}
	if !slices.Contains(b.Files, "d/e/e.go") || !slices.Contains(b.Dirs, "d") {
		t.Errorf("batch = %+v, want d/e/e.go in Files and d in Dirs", b)
	}
	if !slices.Contains(w.Dirs(), "d/e") {
		t.Fatalf("watched folders %q lack d/e", w.Dirs())
	}
	// The new folder's own watch reports a later write.
	write(t, root, "d/e/more.go", "package e\n")
	b, ok = next(w, 2*time.Minute)
	if !ok || !slices.Equal(b.Files, []string{"d/e/more.go"}) {
		t.Fatalf("batch = %+v (ok %v), want d/e/more.go", b, ok)
	}
	// Removing the folder is a change too, and drops its watches.
	if err := os.RemoveAll(filepath.Join(root, "d")); err != nil {
		t.Fatal(err)
	}
	b, ok = next(w, 2*time.Minute)
	if !ok || !slices.Contains(b.Dirs, "d") {
		t.Fatalf("batch = %+v (ok %v), want d in Dirs", b, ok)
	}
	if slices.Contains(w.Dirs(), "d/e") {
		t.Errorf("removed folder d/e still watched: %q", w.Dirs())
	}
}

func TestIgnoredPathsAreSilent(t *testing.T) {
	root := module(t)
	write(t, root, IgnoreFile, "/big/\n*.pb.go\n")
	write(t, root, "big/x.go", "package big\n")
	write(t, root, "nested/go.mod", "module example.com/nested\n")
	write(t, root, "gen/main.go", "package main\n")
	w := start(t, Options{Root: root, Debounce: 50 * time.Millisecond,
		Skip: func(rel string, isDir bool) bool { return rel == "gen" }})
	for _, d := range w.Dirs() {
		if d == "big" || d == "nested" || d == "gen" {
			t.Errorf("skipped folder %s is watched", d)
		}
	}
	for _, rel := range []string{
		"big/x.go", "big/new/y.go", "a/msg.pb.go", // .nuvomignore
		"vendor/v/v.go", "testdata/t.go", "_tmp/u.go", ".git/HEAD", ".nuvom/bin/w.go",
		"a/a_test.go", "a/notes.txt", "a/.#a.go", "a/" + GeneratedFile, ".nuvom_tasks.json",
		"nested/n.go", "gen/main.go", "b/c/README.md",
	} {
		write(t, root, rel, "package x\n")
	}
	if b, ok := next(w, 700*time.Millisecond); ok {
		t.Fatalf("ignored paths produced a batch: %+v", b)
	}
	write(t, root, "a/a.go", "package a\n\nvar X int\n")
	write(t, root, "go.sum", "")
	b, ok := next(w, 2*time.Minute)
	if !ok {
		t.Fatal("no batch for a/a.go")
	}
	if want := []string{"a/a.go", "go.sum"}; !slices.Equal(b.Files, want) {
		t.Errorf("batch files = %q, want %q", b.Files, want)
	}
}

func TestIgnoreFileChangeApplies(t *testing.T) {
	root := module(t)
	w := start(t, Options{Root: root, Debounce: 50 * time.Millisecond})
	write(t, root, IgnoreFile, "/a/\n")
	b, ok := next(w, 2*time.Minute)
	if !ok || !slices.Equal(b.Files, []string{IgnoreFile}) {
		t.Fatalf("batch = %+v (ok %v), want %s", b, ok, IgnoreFile)
	}
	write(t, root, "a/a.go", "package a\n\nvar Y int\n")
	if b, ok := next(w, 600*time.Millisecond); ok {
		t.Fatalf("a/a.go is ignored now but produced %+v", b)
	}
}

func TestBatchGrowsWhileUnread(t *testing.T) {
	root := module(t)
	w := start(t, Options{Root: root, Debounce: 30 * time.Millisecond})
	write(t, root, "a/a.go", "package a\n\nvar Z int\n")
	time.Sleep(300 * time.Millisecond) // the first batch is ready but not read
	write(t, root, "b/c/c.go", "package c\n\nvar Z int\n")
	time.Sleep(300 * time.Millisecond)
	b, ok := next(w, 2*time.Minute)
	if want := []string{"a/a.go", "b/c/c.go"}; !ok || !slices.Equal(b.Files, want) {
		t.Fatalf("batch = %+v (ok %v), want files %q", b, ok, want)
	}
}

func TestWatchErrSaysWhatToDo(t *testing.T) {
	for _, errno := range []error{syscall.ENOSPC, syscall.EMFILE} {
		err := watchErr("/m/a", errno)
		if !errors.Is(err, ErrTooManyWatches) || !strings.Contains(err.Error(), "max_user_watches") ||
			!strings.Contains(err.Error(), IgnoreFile) {
			t.Errorf("watchErr(%v) = %v", errno, err)
		}
	}
	if err := watchErr("/m/a", os.ErrPermission); errors.Is(err, ErrTooManyWatches) {
		t.Errorf("permission error reported as too many watches: %v", err)
	}
}
