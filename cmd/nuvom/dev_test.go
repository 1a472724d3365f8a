package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/generate"
	"github.com/nuvom/nuvom/internal/testmod"
)

// syncBuffer is a bytes.Buffer safe for a writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// devRun is nuvom dev running in a goroutine of the test.
type devRun struct {
	out, err *syncBuffer
	stop     chan os.Signal
	exited   chan struct{} // closed when dev returned; code is then set
	code     int
}

// count returns how often re matches dev's output so far.
func (d *devRun) count(re *regexp.Regexp) int {
	return len(re.FindAllStringIndex(d.out.String()+d.err.String(), -1))
}

// waitCount waits until re matches n times in dev's output.
func (d *devRun) waitCount(t *testing.T, re *regexp.Regexp, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for d.count(re) < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %d × %q; stdout:\n%s\nstderr:\n%s", timeout, n, re, d.out, d.err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// devModule writes a module with tasks in a temp dir, links it to this
// checkout, generates its code and tidies it, as a developer would before
// running nuvom dev. It sets the offline Go environment for the test.
func devModule(t testing.TB, files map[string]string) string {
	t.Helper()
	env, err := testmod.GoEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("NUVOM_LOG_FORMAT", "text")
	dir := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := testmod.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if err := testmod.Link(dir, repo); err != nil {
		t.Fatal(err)
	}
	plan, err := generate.Run(context.Background(), generate.Options{Dir: dir})
	if err != nil {
		t.Fatalf("generate: %v %v", err, plan)
	}
	if _, err := plan.Write(); err != nil {
		t.Fatal(err)
	}
	goCmd(t, dir, "mod", "tidy")
	return dir
}

func goCmd(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// startDev runs nuvom dev in dir until the test ends.
func startDev(t testing.TB, dir string, args ...string) *devRun {
	t.Helper()
	return startDevWindow(t, dir, 0, args...)
}

// startDevWindow is startDev with stop signals less than window apart
// counted as one.
func startDevWindow(t testing.TB, dir string, window time.Duration, args ...string) *devRun {
	t.Helper()
	d := &devRun{out: &syncBuffer{}, err: &syncBuffer{}, stop: make(chan os.Signal, 2), exited: make(chan struct{})}
	a := &app{stdin: strings.NewReader(""), stdout: d.out, stderr: d.err, getenv: os.Getenv, wd: dir, signalWindow: window}
	go func() {
		d.code = a.dev(args, d.stop)
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
			return
		default:
		}
		d.stop <- os.Interrupt
		select {
		case <-d.exited:
		case <-time.After(60 * time.Second):
			t.Errorf("nuvom dev did not stop")
		}
	})
	return d
}

// cli runs one nuvom command in dir in-process and returns its exit status and output.
func cli(dir string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: os.Getenv, wd: dir}
	code := a.dispatch(args)
	return code, out.String(), errb.String()
}

func mustCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	code, out, errs := cli(dir, args...)
	if code != 0 {
		t.Fatalf("nuvom %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// waitState polls nuvom status until the job's line matches re.
func waitState(t *testing.T, dir, id string, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, out, _ := cli(dir, "status", id)
		if re.MatchString(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: status %q never matched %q", id, out, re)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var shopModule = map[string]string{
	"go.mod": "module example.com/app\n\ngo 1.26.0\n\ntool github.com/nuvom/nuvom/cmd/nuvomgen\n",
	"shop/shop.go": `// Package shop is a test shop.
package shop

import (
	"context"
	"os"
	"time"
)

// Ping checks the shop is up.
//
//nuvom:task
func Ping() error { return nil }

// Slow runs until the file named by path exists.
//
//nuvom:task
func Slow(ctx context.Context, path string) error {
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
`,
}

var (
	reStarted  = regexp.MustCompile(`nuvom dev: started in \S+ \(generate \S+, build \S+, restart \S+\)`)
	reReloaded = regexp.MustCompile(`nuvom dev: reloaded in \S+ \(generate \S+, build \S+, restart \S+\)`)
	reKeep     = regexp.MustCompile(`nuvom dev: the old worker keeps running; save a fix to reload`)
)

// TestDev drives nuvom dev like a developer: a new task in a new file, a
// compile error that keeps the old worker serving, the fix, a job running
// across a reload, a burst of saves and Ctrl-C.
func TestDev(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a worker; skipped in -short mode")
	}
	dir := devModule(t, shopModule)
	d := startDev(t, dir, "--concurrency", "2", "--grace", "30s")
	d.waitCount(t, reStarted, 1, 10*time.Minute) // hang guard

	// A new task in a new file: the manifest gains it and the new worker runs it.
	writeFile(t, dir, "shop/double.go", `package shop

// Double doubles n.
//
//nuvom:task
func Double(n int) (int, error) { return 2 * n, nil }
`)
	d.waitCount(t, reReloaded, 1, 10*time.Minute) // hang guard
	if !strings.Contains(d.out.String(), "  + shop.Double\n") {
		t.Errorf("no task diff line for shop.Double in:\n%s", d.out)
	}
	if out := mustCLI(t, dir, "list", "tasks"); !strings.Contains(out, "shop.Double") {
		t.Fatalf("list tasks lacks shop.Double:\n%s", out)
	}
	if out := mustCLI(t, dir, "enqueue", "shop.Double", "[21]", "--wait", "--timeout", "60s"); !strings.Contains(out, "42") {
		t.Fatalf("enqueue shop.Double: %q, want 42", out)
	}

	// A compile error: printed, and the old worker keeps serving.
	writeFile(t, dir, "shop/broken.go", "package shop\n\nfunc broken() int { return \"not an int\" }\n")
	d.waitCount(t, reKeep, 1, 10*time.Minute) // hang guard
	if !strings.Contains(d.err.String(), "broken.go:3") {
		t.Errorf("the compile error does not name broken.go:3:\n%s", d.err)
	}
	if out := mustCLI(t, dir, "enqueue", "shop.Double", "[5]", "--wait", "--timeout", "60s"); !strings.Contains(out, "10") {
		t.Fatalf("old worker: enqueue shop.Double: %q, want 10", out)
	}
	// A diagnostic keeps it serving too.
	writeFile(t, dir, "shop/broken.go", "package shop\n\n// Bad has a bad option.\n//\n//nuvom:task retries=lots\nfunc Bad() error { return nil }\n")
	d.waitCount(t, reKeep, 2, 10*time.Minute) // hang guard
	if !strings.Contains(d.err.String(), "retries") {
		t.Errorf("the diagnostic about retries=lots is missing:\n%s", d.err)
	}
	mustCLI(t, dir, "enqueue", "shop.Ping", "[]", "--wait", "--timeout", "60s")

	// The fix recovers without restarting nuvom dev.
	writeFile(t, dir, "shop/broken.go", "package shop\n\n// Fixed has good options.\n//\n//nuvom:task retries=2\nfunc Fixed() error { return nil }\n")
	d.waitCount(t, reReloaded, 2, 10*time.Minute) // hang guard
	mustCLI(t, dir, "enqueue", "shop.Fixed", "[]", "--wait", "--timeout", "60s")

	// A job running during a reload completes: the old worker stops fetching
	// and finishes it within its grace period, then the new one starts.
	release := filepath.Join(t.TempDir(), "release")
	id := strings.TrimSpace(mustCLI(t, dir, "enqueue", "shop.Slow", `["`+filepath.ToSlash(release)+`"]`))
	waitState(t, dir, id, regexp.MustCompile(` running `), 60*time.Second)
	writeFile(t, dir, "shop/double.go", `package shop

// Double doubles n.
//
//nuvom:task
func Double(n int) (int, error) { return n + n, nil }
`)
	d.waitCount(t, regexp.MustCompile(`waiting for running jobs`), 1, 10*time.Minute) // hang guard
	queued := strings.TrimSpace(mustCLI(t, dir, "enqueue", "shop.Double", "[3]"))     // enqueued while no worker fetches
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitCount(t, reReloaded, 3, 10*time.Minute) // hang guard
	waitState(t, dir, id, regexp.MustCompile(` succeeded attempt 1/`), 60*time.Second)
	waitState(t, dir, queued, regexp.MustCompile(` succeeded attempt 1/`), 60*time.Second)

	// Ten saves in quick succession give one rebuild.
	for i := range 10 {
		writeFile(t, dir, "shop/double.go", "package shop\n\n// Double doubles n.\n//\n//nuvom:task\nfunc Double(n int) (int, error) { return 2*n + "+string(rune('0'+i))+" - "+string(rune('0'+i))+", nil }\n")
		time.Sleep(15 * time.Millisecond)
	}
	d.waitCount(t, reReloaded, 4, 10*time.Minute) // hang guard
	time.Sleep(2 * time.Second)
	if n := d.count(reReloaded); n != 4 {
		t.Errorf("ten saves gave %d reloads, want 1:\n%s", n-3, d.out)
	}
	if n := d.count(regexp.MustCompile(`nuvom dev: changed `)); n != 6 {
		t.Errorf("%d rounds started, want 6 (one per burst):\n%s", n, d.out)
	}
	if out := mustCLI(t, dir, "enqueue", "shop.Double", "[4]", "--wait", "--timeout", "60s"); !strings.Contains(out, "8") {
		t.Fatalf("enqueue shop.Double: %q, want 8", out)
	}

	// Ctrl-C stops the watcher and the worker gracefully.
	d.stop <- os.Interrupt
	select {
	case <-d.exited:
		if d.code != 0 {
			t.Errorf("nuvom dev exited %d, want 0", d.code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("nuvom dev did not stop after Ctrl-C")
	}
	if !strings.Contains(d.err.String(), "worker stopped") {
		t.Errorf("the worker did not stop gracefully:\n%s", d.err)
	}
}

func writeFile(t testing.TB, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
