//go:build unix

package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKilledParentLeavesNoWorker: kill -9 of "nuvom runworker" or "nuvom dev"
// takes the worker with it, so a supervisor that restarts them never runs two
// workers. runworker becomes the worker (exec); dev's worker is killed with
// it by the kernel (Linux) or stops when its lifeline pipe closes (other Unix).
func TestKilledParentLeavesNoWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a worker; skipped in -short mode")
	}
	nuvomBin, err := exec.LookPath("nuvom") // this test binary, as testscript.Main installed it
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"runworker", "dev"} {
		t.Run(mode, func(t *testing.T) {
			// A module of its own: no job left by the other case, so an
			// orphaned worker would sit idle, not log to a dead pipe and die.
			dir := devModule(t, shopModule)
			release := filepath.Join(t.TempDir(), "release")
			// A job that runs until released; a surviving worker keeps it.
			id := strings.TrimSpace(mustCLI(t, dir, "enqueue", "shop.Slow", `["`+filepath.ToSlash(release)+`"]`))
			defer os.WriteFile(release, nil, 0o644) // a later worker may run it again after its lease expires

			cmd := exec.Command(nuvomBin, mode, "--concurrency", "2", "--grace", "1s")
			cmd.Dir = dir
			// A file, not a pipe: waiting for the killed parent must not wait
			// for a surviving worker to close the pipe.
			outPath := filepath.Join(t.TempDir(), "out")
			out, err := os.Create(outPath)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			cmd.Stdout, cmd.Stderr = out, out
			output := func() string { b, _ := os.ReadFile(outPath); return string(b) }
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() {
				_ = cmd.Wait()
				close(exited)
			}()
			defer func() {
				_ = cmd.Process.Kill()
				<-exited
			}()
			waitState(t, dir, id, regexp.MustCompile(` running `), 180*time.Second)
			pid := workerPID(t, dir, id)

			if err := cmd.Process.Kill(); err != nil { // kill -9
				t.Fatal(err)
			}
			<-exited
			deadline := time.Now().Add(120 * time.Second)
			for alive(pid) {
				if time.Now().After(deadline) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					t.Fatalf("the worker (pid %d) outlived nuvom %s (pid %d) killed with SIGKILL:\n%s", pid, mode, cmd.Process.Pid, output())
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// workerPID reads the pid of the worker running job id from its lease owner
// ("host-pid-random").
func workerPID(t *testing.T, dir, id string) int {
	t.Helper()
	var j struct {
		LeaseOwner string `json:"lease_owner"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "inspect", "job", id, "--format", "json")), &j); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(j.LeaseOwner, "-")
	if len(parts) < 3 {
		t.Fatalf("lease owner %q is not host-pid-random", j.LeaseOwner)
	}
	pid, err := strconv.Atoi(parts[len(parts)-2])
	if err != nil {
		t.Fatalf("lease owner %q: %v", j.LeaseOwner, err)
	}
	return pid
}

// alive reports whether process pid exists and is not a zombie (an orphaned
// zombie may wait for a reaper that a container's init never runs).
func alive(pid int) bool {
	if runtime.GOOS == "linux" {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		// The state follows the command name in parentheses.
		s := string(stat)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
			return s[i+2] != 'Z'
		}
		return true
	}
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
