package main

import (
	"maps"
	"net"
	"regexp"
	"testing"
	"time"
)

// TestDevWorkerFailsToStart: when the first worker exits at once (here its
// prometheus plugin finds its address taken), nuvom dev says so and does not
// also report it "started in ..."; once the address is free, a save starts it.
func TestDevWorkerFailsToStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a worker; skipped in -short mode")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	files := maps.Clone(shopModule)
	files[".nuvom_plugins.toml"] = "[[plugin]]\nname = \"prometheus\"\n[plugin.settings]\naddr = \"" + taken.Addr().String() + "\"\n"
	dir := devModule(t, files)
	d := startDev(t, dir, "--concurrency", "2")
	reExited := regexp.MustCompile(`nuvom dev: the worker exited with status 1; save a change to start it again`)
	d.waitCount(t, reExited, 1, 10*time.Minute) // hang guard
	if !regexp.MustCompile(`address already in use`).MatchString(d.err.String()) {
		t.Errorf("the worker's start error is not shown:\n%s", d.err)
	}

	taken.Close()
	writeFile(t, dir, "shop/more.go", "package shop\n\n// Triple triples n.\n//\n//nuvom:task\nfunc Triple(n int) (int, error) { return 3 * n, nil }\n")
	d.waitCount(t, reReloaded, 1, 10*time.Minute) // hang guard
	if n := d.count(reStarted); n != 0 {
		t.Errorf("nuvom dev reported %d start(s) of a worker that exited at once:\nstdout:\n%s\nstderr:\n%s", n, d.out, d.err)
	}
}
