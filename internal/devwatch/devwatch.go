// Package devwatch watches a Go module's source for nuvom dev: every folder
// below the module root (folders created later too) through fsnotify, with the
// same skips as the analyzer (.nuvomignore, vendor, testdata, folders starting
// with '.' or '_', nested modules) and without the generated files. A burst of
// changes (an editor's temp file, rename and write; a branch switch) comes out
// as one Batch once the tree has been quiet for the debounce interval.
package devwatch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	ignore "github.com/sabhiram/go-gitignore"
)

// DefaultDebounce is how long the tree must be quiet before a batch is sent.
const DefaultDebounce = 150 * time.Millisecond

// maxDelay bounds how long a steady stream of changes can hold a batch back.
const maxDelay = 2 * time.Second

// IgnoreFile is the module's ignore file, in gitignore syntax.
const IgnoreFile = ".nuvomignore"

// GeneratedFile is the base name of the stub files nuvomgen writes; changes to
// them never start a reload.
const GeneratedFile = "nuvom_gen.go"

// rootFiles are the files at the module root, besides Go source, that matter.
var rootFiles = map[string]bool{"go.mod": true, "go.sum": true, IgnoreFile: true, ".nuvom_plugins.toml": true}

// ErrTooManyWatches is wrapped by the error New (or Errors) reports when the
// platform refuses another watch.
var ErrTooManyWatches = errors.New("too many watched folders")

// Options configure a Watcher.
type Options struct {
	// Root is the module root (the folder holding go.mod).
	Root string
	// Debounce is the quiet time that ends a burst (0: DefaultDebounce).
	Debounce time.Duration
	// Skip reports paths (slash, relative to Root) that are never watched or
	// reported, such as the generated registry folder; nil skips nothing more.
	Skip func(rel string, isDir bool) bool
}

// Batch is every relevant change of one burst.
type Batch struct {
	// Files are the changed, created or removed files (slash paths relative
	// to the root), sorted and without duplicates.
	Files []string
	// Dirs are the folders created or removed, sorted and without duplicates.
	Dirs []string
	// Overflow is true when events were lost (the platform's queue overflowed):
	// anything may have changed.
	Overflow bool
}

// Watcher watches a module tree. Its methods are safe for concurrent use.
type Watcher struct {
	opts    Options
	fw      *fsnotify.Watcher
	batches chan Batch
	errs    chan error
	done    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	ign     *ignore.GitIgnore
	watched map[string]bool // slash rel folder -> watched
	files   map[string]bool // relevant files seen by the walks (slash rel)
}

// New starts watching every folder below opts.Root. It fails when a folder
// cannot be watched; with ErrTooManyWatches when the platform limit is reached.
func New(opts Options) (*Watcher, error) {
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("devwatch: resolve %s: %w", opts.Root, err)
	}
	opts.Root = root
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("devwatch: %w", watchErr(root, err))
	}
	w := &Watcher{
		opts: opts, fw: fw,
		batches: make(chan Batch),
		errs:    make(chan error, 16),
		done:    make(chan struct{}),
		watched: map[string]bool{},
		files:   map[string]bool{},
	}
	if err := w.loadIgnore(); err != nil {
		fw.Close()
		return nil, err
	}
	if _, err := w.addTree("."); err != nil {
		fw.Close()
		return nil, err
	}
	w.wg.Add(1)
	go w.loop()
	return w, nil
}

// Batches delivers one Batch per burst of changes. A batch not yet received
// keeps growing with later changes, so none is lost while the reader is busy.
func (w *Watcher) Batches() <-chan Batch { return w.batches }

// Errors delivers problems that do not stop the watcher, such as a new folder
// that could not be watched.
func (w *Watcher) Errors() <-chan error { return w.errs }

// Dirs returns the watched folders (slash, relative to the root), sorted.
func (w *Watcher) Dirs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return sortedKeys(w.watched)
}

// Files returns the relevant files found in the watched folders when they were
// added (slash, relative to the root), sorted.
func (w *Watcher) Files() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return sortedKeys(w.files)
}

// Close stops watching and waits for the watcher's goroutine to end.
func (w *Watcher) Close() error {
	select {
	case <-w.done:
		return nil
	default:
	}
	close(w.done)
	err := w.fw.Close()
	w.wg.Wait()
	return err
}

// loadIgnore (re)reads the module's .nuvomignore.
func (w *Watcher) loadIgnore() error {
	p := filepath.Join(w.opts.Root, IgnoreFile)
	var gi *ignore.GitIgnore
	if _, err := os.Stat(p); err == nil {
		if gi, err = ignore.CompileIgnoreFile(p); err != nil {
			return fmt.Errorf("devwatch: read %s: %w", p, err)
		}
	}
	w.mu.Lock()
	w.ign = gi
	w.mu.Unlock()
	return nil
}

// skipDir reports whether the folder rel (not the root) is never watched.
func (w *Watcher) skipDir(rel string) bool {
	name := path.Base(rel)
	if name == "vendor" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
		return true
	}
	if w.opts.Skip != nil && w.opts.Skip(rel, true) {
		return true
	}
	w.mu.Lock()
	gi := w.ign
	w.mu.Unlock()
	return gi != nil && gi.MatchesPath(rel+"/")
}

// relevantFile reports whether a change to the file rel can change the worker.
func (w *Watcher) relevantFile(rel string) bool {
	dir, name := path.Split(rel)
	if dir == "" && rootFiles[name] {
		return true
	}
	if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") ||
		strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == GeneratedFile {
		return false
	}
	if w.opts.Skip != nil && w.opts.Skip(rel, false) {
		return false
	}
	w.mu.Lock()
	gi := w.ign
	w.mu.Unlock()
	return gi == nil || !gi.MatchesPath(rel)
}

// addTree watches the folder rel and every folder below it that is not
// skipped, and returns the relevant files found in them.
func (w *Watcher) addTree(rel string) ([]string, error) {
	var found []string
	err := w.walk(rel, &found)
	return found, err
}

func (w *Watcher) walk(rel string, found *[]string) error {
	abs := filepath.Join(w.opts.Root, filepath.FromSlash(rel))
	if rel != "." {
		if _, err := os.Stat(filepath.Join(abs, "go.mod")); err == nil {
			return nil // a nested module is not part of this one
		}
	}
	w.mu.Lock()
	already := w.watched[rel]
	w.mu.Unlock()
	if !already {
		if err := w.fw.Add(abs); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return fmt.Errorf("devwatch: %w", watchErr(abs, err))
		}
		w.mu.Lock()
		w.watched[rel] = true
		w.mu.Unlock()
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("devwatch: read folder %s: %w", abs, err)
	}
	for _, e := range entries {
		child := e.Name()
		if rel != "." {
			child = rel + "/" + e.Name()
		}
		if e.IsDir() {
			if !w.skipDir(child) {
				if err := w.walk(child, found); err != nil {
					return err
				}
			}
			continue
		}
		if w.relevantFile(child) {
			*found = append(*found, child)
			w.mu.Lock()
			w.files[child] = true
			w.mu.Unlock()
		}
	}
	return nil
}

// watchErr explains a failure to add a watch, with what to do when the
// platform's limit was reached.
func watchErr(abs string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EMFILE) {
		return fmt.Errorf("watch %s: %w (%v): raise the limit (Linux: sudo sysctl fs.inotify.max_user_watches=524288 "+
			"and fs.inotify.max_user_instances=1024; macOS: ulimit -n 10240) or list folders that need no "+
			"watching in %s", abs, ErrTooManyWatches, err, IgnoreFile)
	}
	return fmt.Errorf("watch %s: %w", abs, err)
}

// pending collects one burst.
type pending struct {
	files, dirs map[string]bool
	overflow    bool
	first       time.Time
}

func (p *pending) empty() bool { return len(p.files) == 0 && len(p.dirs) == 0 && !p.overflow }

func (p *pending) batch() Batch {
	return Batch{Files: sortedKeys(p.files), Dirs: sortedKeys(p.dirs), Overflow: p.overflow}
}

// loop turns fsnotify events into debounced batches.
func (w *Watcher) loop() {
	defer w.wg.Done()
	p := &pending{files: map[string]bool{}, dirs: map[string]bool{}}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	ready := false
	for {
		var out chan Batch
		var b Batch
		if ready {
			out, b = w.batches, p.batch()
		}
		select {
		case <-w.done:
			timer.Stop()
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			if w.handle(ev, p) {
				if p.first.IsZero() {
					p.first = time.Now()
				}
				ready = false
				wait := w.opts.Debounce
				if rest := maxDelay - time.Since(p.first); rest < wait {
					wait = max(rest, 0)
				}
				timer.Reset(wait)
			}
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				p.overflow = true
				if p.first.IsZero() {
					p.first = time.Now()
				}
				timer.Reset(w.opts.Debounce)
				continue
			}
			w.report(fmt.Errorf("devwatch: %w", err))
		case <-timer.C:
			ready = !p.empty()
		case out <- b:
			p = &pending{files: map[string]bool{}, dirs: map[string]bool{}}
			ready = false
		}
	}
}

// report passes a non-fatal error on without ever blocking the loop.
func (w *Watcher) report(err error) {
	select {
	case w.errs <- err:
	default:
	}
}

// handle records one event and reports whether it was relevant.
func (w *Watcher) handle(ev fsnotify.Event, p *pending) bool {
	rel, err := filepath.Rel(w.opts.Root, ev.Name)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return false
	}
	rel = filepath.ToSlash(rel)
	w.mu.Lock()
	wasDir := w.watched[rel]
	w.mu.Unlock()

	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if wasDir {
			w.forget(rel)
			p.dirs[rel] = true
			return true
		}
		if w.relevantFile(rel) {
			w.mu.Lock()
			delete(w.files, rel)
			w.mu.Unlock()
			p.files[rel] = true
			if rel == IgnoreFile {
				w.reloadIgnore()
			}
			return true
		}
		return false
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
			if w.skipDir(rel) {
				return false
			}
			// Files may have landed in the folder before its watch was added,
			// so everything relevant found in it counts as changed.
			found, err := w.addTree(rel)
			if err != nil {
				w.report(err)
			}
			p.dirs[rel] = true
			for _, f := range found {
				p.files[f] = true
			}
			return true
		}
	}
	if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) {
		return false // chmod alone changes nothing the build sees
	}
	if !w.relevantFile(rel) {
		return false
	}
	w.mu.Lock()
	w.files[rel] = true
	w.mu.Unlock()
	p.files[rel] = true
	if rel == IgnoreFile {
		w.reloadIgnore()
	}
	return true
}

// reloadIgnore rereads .nuvomignore after it changed; an unreadable file is
// reported and the old rules stay.
func (w *Watcher) reloadIgnore() {
	if err := w.loadIgnore(); err != nil {
		w.report(err)
	}
}

// forget drops the watches of a removed folder and of every folder below it.
func (w *Watcher) forget(rel string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for d := range w.watched {
		if d == rel || strings.HasPrefix(d, rel+"/") {
			delete(w.watched, d)
			_ = w.fw.Remove(filepath.Join(w.opts.Root, filepath.FromSlash(d))) // gone already on most platforms
		}
	}
	for f := range w.files {
		if strings.HasPrefix(f, rel+"/") {
			delete(w.files, f)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
