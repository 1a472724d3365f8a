package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	goruntime "runtime"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/nuvom/nuvom/manifest"
)

func (a *app) cmdRunWorker(args []string) int {
	fs := a.flags("runworker", "",
		"Builds the module's generated worker (nuvomtasks/worker, reusing the build when nothing\n"+
			"changed) and runs it with these flags and the environment. Ctrl-C or SIGTERM stops it\n"+
			"gracefully: running jobs get --grace to finish, the rest go back to the queue; a second\n"+
			"signal stops at once. The exit status is the worker's.",
		"nuvom runworker --concurrency 8 --queues critical,default --grace 30s")
	workerFlags(fs)
	fs.Bool("burst", false, "run until no ready job remains, then exit")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	bin, err := a.buildWorker()
	if err != nil {
		return a.fail(err)
	}
	return a.runChild(bin, args)
}

// workerFlags defines the flags that runworker and dev pass on to the worker
// (which checks them again); they are declared here for --help and usage errors.
func workerFlags(fs *pflag.FlagSet) {
	fs.Int("concurrency", 0, "jobs run at once (default NUVOM_CONCURRENCY, else 100)")
	fs.StringSlice("queues", nil, "queues to serve, in priority order (default every queue of the tasks)")
	fs.Bool("no-scheduler", false, "do not run the scheduler in this worker (nuvom runscheduler can run it alone)")
	fs.Duration("grace", 0, "how long a stop or restart waits for running jobs (default NUVOM_GRACE, else 10s)")
	fs.String("log-format", "", "text or json (default NUVOM_LOG_FORMAT, else text)")
	fs.String("log-level", "", "debug, info, warn or error")
}

// buildWorker builds the generated worker main into .nuvom/bin and returns the
// binary's path. go build reuses its cache, so an unchanged module relinks nothing.
func (a *app) buildWorker() (string, error) {
	root, err := a.moduleRoot()
	if err != nil {
		return "", err
	}
	m, err := a.loadManifest()
	if err != nil {
		return "", err
	}
	registry := m.Registry
	if registry == "" {
		registry = manifest.DefaultRegistry
	}
	pkg := "./" + path.Join(registry, "worker")
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(registry), "worker", "main.go")); err != nil {
		return "", fmt.Errorf("no generated worker at %s: run go generate ./... (nuvomgen) first", pkg)
	}
	bin := filepath.Join(root, ".nuvom", "bin", "worker")
	if goruntime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build worker %s: %v\n%s", pkg, err, bytes.TrimSpace(out.Bytes()))
	}
	return bin, nil
}

// runChild runs the worker binary with args, forwarding stop signals, and
// returns its exit status.
func (a *app) runChild(bin string, args []string) int {
	cmd := exec.Command(bin, args...)
	cmd.Dir = a.wd
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdin, a.stdout, a.stderr
	ownProcessGroup(cmd)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return a.fail(fmt.Errorf("start worker: %w", err))
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				forwardSignal(cmd, s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &exit):
		if code := exit.ExitCode(); code >= 0 {
			return code
		}
		return exitFailure
	}
	return a.fail(fmt.Errorf("worker: %w", err))
}
