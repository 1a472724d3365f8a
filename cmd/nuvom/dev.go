package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/nuvom/nuvom/internal/devwatch"
	"github.com/nuvom/nuvom/internal/generate"
	"github.com/nuvom/nuvom/internal/goflags"
	"github.com/nuvom/nuvom/internal/stopsignal"
	"github.com/nuvom/nuvom/manifest"
)

func (a *app) cmdDev(args []string) int {
	fs := a.flags("dev", "",
		"Runs the module's worker and reloads it whenever the source changes. It watches every\n"+
			"folder of the module (honouring .nuvomignore; skipping vendor, testdata, folders starting\n"+
			"with '.' or '_', and the generated files) and go.mod, go.sum, .nuvomignore and\n"+
			".nuvom_plugins.toml. After a burst of saves it regenerates the manifest and stubs of the\n"+
			"changed packages (a package whose edits are confined to function bodies is not analysed\n"+
			"again), prints the task changes, builds the worker and restarts it gracefully: the old\n"+
			"worker stops fetching, finishes or hands back its running jobs, then the new one starts.\n"+
			"A diagnostic or a compile error is printed and the old worker keeps serving until a good\n"+
			"save. The flags are the worker's (as for runworker). The worker dies with nuvom dev.\n"+
			"Ctrl-C stops the watcher and the worker gracefully; a second Ctrl-C stops the worker at\n"+
			"once. Signals less than 1s apart count as one (under \"go tool nuvom\" one Ctrl-C arrives\n"+
			"twice).",
		"nuvom dev --concurrency 2 --queues default,images --grace 5s")
	workerFlags(fs)
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	if err := a.checkWorkerFlags(fs); err != nil {
		return a.usageErr("dev: %v", err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	return a.dev(goflags.Normalize(args, fs), sigs) // the worker takes only the --name spelling
}

// devSession is one run of nuvom dev.
type devSession struct {
	a        *app
	root     string
	args     []string         // the worker's flags
	stop     <-chan os.Signal // stop requests (Ctrl-C)
	out, err io.Writer        // serialized: the worker's output is copied concurrently
	colour   bool
	cur      *manifest.Manifest // the manifest as last generated
	cache    *declCache
	retry    map[string]bool // package folders whose last analysis failed
	modSums  map[string][sha256.Size]byte
	worker   *devWorker
	binSum   [sha256.Size]byte // the running worker's binary
}

// lockedWriter serializes writes to w with mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// dev runs the watch-and-reload loop until a value arrives on stop. Values
// less than a.signalWindow apart count as one (one keypress can arrive twice).
func (a *app) dev(workerArgs []string, stop <-chan os.Signal) int {
	root, err := a.moduleRoot()
	if err != nil {
		return a.fail(err)
	}
	var mu sync.Mutex
	s := &devSession{
		a: a, root: root, args: workerArgs, stop: stop,
		out: lockedWriter{&mu, a.stdout}, err: lockedWriter{&mu, a.stderr},
		colour: isTerminal(a.stdout), retry: map[string]bool{},
	}
	done := make(chan struct{})
	defer close(done)
	stop = stopsignal.Coalesce(stop, &stopsignal.Filter{Window: a.signalWindow}, done, func(os.Signal) {
		fmt.Fprintln(s.err, "nuvom dev: stop signal repeated within 1s: counted as one Ctrl-C")
	})
	s.stop = stop
	registry := manifest.DefaultRegistry
	if m, err := manifest.Load(filepath.Join(root, manifest.FileName)); err == nil && m.Registry != "" {
		registry = m.Registry
	}
	w, err := devwatch.New(devwatch.Options{Root: root, Skip: func(rel string, isDir bool) bool {
		return rel == registry || strings.HasPrefix(rel, registry+"/")
	}})
	if err != nil {
		return a.fail(err)
	}
	defer w.Close()
	s.cache = newDeclCache(root, goFiles(w.Files()))
	s.modSums = s.moduleFileSums()
	fmt.Fprintf(s.out, "nuvom dev: watching %d folders of %s; Ctrl-C stops\n", len(w.Dirs()), root)

	// The first round analyses the whole module, as go generate would.
	if s.reload(nil, true) {
		return s.shutdown()
	}
	for {
		var exited <-chan struct{}
		if s.worker != nil {
			exited = s.worker.exited
		}
		select {
		case <-stop:
			return s.shutdown()
		case e := <-w.Errors():
			fmt.Fprintf(s.err, "nuvom dev: %v\n", e)
		case <-exited:
			fmt.Fprintf(s.err, "nuvom dev: the worker exited with status %d; save a change to start it again\n", s.worker.code)
			s.worker, s.binSum = nil, [sha256.Size]byte{}
		case b := <-w.Batches():
			if s.reload(&b, false) {
				return s.shutdown()
			}
		}
	}
}

// shutdown stops the worker gracefully and returns nuvom dev's exit status.
func (s *devSession) shutdown() int {
	if s.worker != nil {
		fmt.Fprintln(s.out, "nuvom dev: stopping the worker gracefully; Ctrl-C again stops it at once")
		s.worker.stop(s.stop)
		s.worker = nil
	}
	fmt.Fprintln(s.out, "nuvom dev: stopped")
	return exitOK
}

// work is what one batch of changes asks for.
type work struct {
	whole    bool     // analyse the whole module
	patterns []string // else these package folders ("./dir")
	build    bool     // rebuild the worker
	changed  []string // the files that changed, for the message
}

// classify turns a batch into work, updating the declaration cache.
func (s *devSession) classify(b *devwatch.Batch) work {
	var wk work
	if b.Overflow {
		wk.whole, wk.build = true, true
		return wk
	}
	dirs := map[string]bool{}
	for d := range s.retry {
		dirs[d] = true
	}
	sums := s.moduleFileSums()
	for _, f := range b.Files {
		switch f {
		case "go.mod", "go.sum":
			// go build -mod=mod may rewrite them with the same content.
			if sums[f] != s.modSums[f] {
				wk.build, wk.whole = true, wk.whole || f == "go.mod"
				wk.changed = append(wk.changed, f)
			}
			continue
		case devwatch.IgnoreFile, ".nuvom_plugins.toml":
			wk.whole, wk.build = true, true
			wk.changed = append(wk.changed, f)
			continue
		}
		wk.build = true
		wk.changed = append(wk.changed, f)
		if s.cache.changed(f) {
			dirs[path.Dir(f)] = true
		}
	}
	s.modSums = sums
	for _, d := range b.Dirs {
		wk.build = true
		dirs[d] = true
	}
	// A package whose declarations changed can change the schemas of tasks
	// elsewhere that use its types.
	if s.cur != nil {
		pkgs := map[string]bool{}
		for d := range dirs {
			pkgs[importPathOf(s.cur.Module, d)] = true
		}
		for _, d := range dependents(s.cur, pkgs) {
			dirs[d] = true
		}
	}
	for _, d := range sortedSet(dirs) {
		if fi, err := os.Stat(filepath.Join(s.root, filepath.FromSlash(d))); err != nil || !fi.IsDir() {
			wk.whole = true // a removed package: its tasks must go
			break
		}
		wk.patterns = append(wk.patterns, "./"+d)
	}
	if wk.whole {
		wk.patterns = nil
	}
	return wk
}

// reload runs one round: generate, build, restart. first is the startup round
// (always a whole-module analysis). It reports whether a stop was requested
// while it waited for the old worker.
func (s *devSession) reload(b *devwatch.Batch, first bool) (stopped bool) {
	start := time.Now()
	wk := work{whole: true, build: true}
	if !first {
		wk = s.classify(b)
		if !wk.build && !wk.whole && len(wk.patterns) == 0 {
			return false
		}
		fmt.Fprintf(s.out, "nuvom dev: changed %s\n", summarize(wk.changed, b.Dirs))
	}

	// Analysis and code generation.
	if wk.whole || len(wk.patterns) > 0 {
		if !s.generate(wk) {
			return false
		}
	}
	genTime := time.Since(start)

	// Build, while the old worker keeps serving.
	t := time.Now()
	if first {
		fmt.Fprintln(s.err, "nuvom dev: building the worker (the first build can take a minute)...")
	}
	bin, err := s.a.buildWorker(false)
	buildTime := time.Since(t)
	s.modSums = s.moduleFileSums() // go build -mod=mod may have added go.sum lines
	if err != nil {
		fmt.Fprintf(s.err, "nuvom dev: %s\n", s.paint(colourRed, err.Error()))
		fmt.Fprintln(s.err, s.keepMessage())
		return false
	}
	sum, err := fileSum(bin)
	if err != nil {
		fmt.Fprintf(s.err, "nuvom dev: %v\n", err)
		return false
	}
	if s.worker != nil && sum == s.binSum {
		fmt.Fprintf(s.out, "nuvom dev: worker unchanged, not restarted (generate %s, build %s)\n",
			fmtDur(genTime), fmtDur(buildTime))
		return false
	}

	// Restart: the old worker hands back or finishes its jobs, then the new one starts.
	t = time.Now()
	if s.worker != nil {
		interrupted := s.stopWorker()
		s.worker = nil
		if interrupted {
			return true
		}
	}
	nw, err := startDevWorker(bin, s.args, s.a.wd, nil, s.out, s.err)
	if err != nil {
		fmt.Fprintf(s.err, "nuvom dev: %v\n", err)
		return false
	}
	s.worker, s.binSum = nw, sum
	up := nw.waitReady(30 * time.Second)
	restartTime := time.Since(t)
	if !up { // no "started in": it did not (it exited, or it is still starting)
		fmt.Fprintln(s.err, "nuvom dev: the new worker did not report that it started; see its output above")
		return false
	}
	verb := "reloaded"
	if first {
		verb = "started"
	}
	fmt.Fprintf(s.out, "nuvom dev: %s in %s (generate %s, build %s, restart %s)\n", verb,
		fmtDur(time.Since(start)), fmtDur(genTime), fmtDur(buildTime), fmtDur(restartTime))
	return false
}

// stopWorker stops the running worker gracefully and reports whether a stop
// request (Ctrl-C) arrived meanwhile; the worker is then stopped at once.
func (s *devSession) stopWorker() (interrupted bool) {
	again := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() {
		s.worker.stop(again)
		close(done)
	}()
	for {
		select {
		case <-done:
			return interrupted
		case sig := <-s.stop:
			interrupted = true
			again <- sig
		}
	}
}

// generate runs the analysis and writes what changed; it reports whether the
// round can go on to the build.
func (s *devSession) generate(wk work) bool {
	plan, err := generate.Run(context.Background(), generate.Options{Dir: s.root, Patterns: wk.patterns})
	if plan != nil {
		for _, n := range plan.Notes {
			fmt.Fprintf(s.err, "nuvom dev: warning: %s\n", n)
		}
		for _, d := range plan.Diagnostics {
			fmt.Fprintln(s.err, s.paint(colourRed, d.Format(s.root)))
		}
	}
	if err != nil {
		if !errors.Is(err, generate.ErrDiagnostics) {
			fmt.Fprintf(s.err, "nuvom dev: %s\n", s.paint(colourRed, err.Error()))
		}
		for _, p := range wk.patterns {
			s.retry[strings.TrimPrefix(p, "./")] = true
		}
		fmt.Fprintln(s.err, s.keepMessage())
		return false
	}
	if _, err := plan.Write(); err != nil {
		fmt.Fprintf(s.err, "nuvom dev: %s\n", s.paint(colourRed, err.Error()))
		fmt.Fprintln(s.err, s.keepMessage())
		return false
	}
	if wk.whole {
		clear(s.retry)
	}
	for _, p := range wk.patterns {
		delete(s.retry, strings.TrimPrefix(p, "./"))
	}
	for _, c := range plan.Changes() {
		col := colourYellow
		switch c.Kind {
		case manifest.Added:
			col = colourGreen
		case manifest.Removed:
			col = colourRed
		}
		fmt.Fprintf(s.out, "  %s\n", s.paint(col, c.String()))
		if c.SignatureChanged {
			fmt.Fprintf(s.out, "    note: signature changed; queued jobs of the old version will be refused\n")
		}
	}
	s.cur = plan.New
	return true
}

// keepMessage says what happens after a failed round.
func (s *devSession) keepMessage() string {
	if s.worker != nil {
		return "nuvom dev: the old worker keeps running; save a fix to reload"
	}
	return "nuvom dev: no worker is running; save a fix to start it"
}

// moduleFileSums hashes go.mod and go.sum.
func (s *devSession) moduleFileSums() map[string][sha256.Size]byte {
	out := map[string][sha256.Size]byte{}
	for _, f := range []string{"go.mod", "go.sum"} {
		if sum, err := fileSum(filepath.Join(s.root, f)); err == nil {
			out[f] = sum
		}
	}
	return out
}

func fileSum(p string) ([sha256.Size]byte, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("read %s: %w", p, err)
	}
	return sha256.Sum256(data), nil
}

// goFiles keeps the .go files of a list of paths.
func goFiles(paths []string) []string {
	var out []string
	for _, p := range paths {
		if strings.HasSuffix(p, ".go") {
			out = append(out, p)
		}
	}
	return out
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// summarize names up to three changed paths.
func summarize(files, dirs []string) string {
	all := append(append([]string{}, files...), dirs...)
	if len(all) == 0 {
		return "files"
	}
	if len(all) <= 3 {
		return strings.Join(all, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(all[:3], ", "), len(all)-3)
}

// fmtDur prints a duration as "80ms" or "1.2s".
func fmtDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// ANSI colours for the task diff and errors on a terminal.
const (
	colourRed    = "31"
	colourGreen  = "32"
	colourYellow = "33"
)

func (s *devSession) paint(colour, text string) string {
	if !s.colour {
		return text
	}
	return "\x1b[" + colour + "m" + text + "\x1b[0m"
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
