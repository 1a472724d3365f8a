package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDevRepeatedCtrlCIsOneGracefulStop: under "go tool nuvom dev" one Ctrl-C
// reaches nuvom dev twice (the terminal's SIGINT and the go command's copy).
// Signals within the window are one request: the worker stops gracefully and
// its running job finishes, its outcome stored.
func TestDevRepeatedCtrlCIsOneGracefulStop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a worker; skipped in -short mode")
	}
	dir := devModule(t, shopModule)
	// A long window, so the second signal falls in it however slow the machine.
	d := startDevWindow(t, dir, time.Hour, "--concurrency", "1", "--grace", "1h")
	d.waitCount(t, reStarted, 1, 120*time.Second)
	release := filepath.Join(t.TempDir(), "release")
	id := strings.TrimSpace(mustCLI(t, dir, "enqueue", "shop.Slow", `["`+filepath.ToSlash(release)+`"]`))
	waitState(t, dir, id, regexp.MustCompile(` running `), 120*time.Second)

	d.stop <- os.Interrupt
	d.stop <- os.Interrupt
	d.waitCount(t, regexp.MustCompile(`nuvom dev: stopping the worker gracefully`), 1, 120*time.Second)
	d.waitCount(t, regexp.MustCompile(`counted as one Ctrl-C`), 1, 120*time.Second)
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(120 * time.Second):
		t.Fatal("hang: nuvom dev did not stop")
	}
	if d.code != 0 {
		t.Errorf("nuvom dev exited %d", d.code)
	}
	if strings.Contains(d.err.String(), "stopping at once") {
		t.Errorf("one Ctrl-C stopped the worker at once:\n%s", d.err)
	}
	waitState(t, dir, id, regexp.MustCompile(` succeeded attempt 1/`), 120*time.Second)
}
