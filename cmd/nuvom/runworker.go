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
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/nuvom/nuvom/codegen"
	"github.com/nuvom/nuvom/internal/goflags"
	"github.com/nuvom/nuvom/internal/stopsignal"
	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/runtime/dashboard"
	"github.com/nuvom/nuvom/runtime/workercmd"
)

func (a *app) cmdRunWorker(args []string) int {
	fs := a.flags("runworker", "",
		"Builds the module's generated worker (nuvomtasks/worker, reusing the build when nothing\n"+
			"changed) and runs it with these flags and the environment; on Unix nuvom becomes the\n"+
			"worker process (exec), elsewhere the worker runs as a child that dies with nuvom.\n"+
			"Ctrl-C or SIGTERM stops it gracefully: running jobs get --grace to finish, the rest go\n"+
			"back to the queue. Signals less than 1s apart count as one (under \"go tool nuvom\" one\n"+
			"Ctrl-C arrives twice); a later one stops at once. The exit status is the worker's.",
		"nuvom runworker --concurrency 8 --queues critical,default --grace 30s")
	workerFlags(fs)
	fs.Bool("burst", false, "run until no ready job remains, then exit")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	args = goflags.Normalize(args, fs) // the worker takes only the --name spelling
	if err := a.checkWorkerFlags(fs); err != nil {
		return a.usageErr("runworker: %v", err)
	}
	bin, err := a.buildWorker(true)
	if err != nil {
		return a.fail(err)
	}
	if a.process {
		err := execWorker(bin, args) // returns only on failure
		if !errors.Is(err, errors.ErrUnsupported) {
			fmt.Fprintf(a.stderr, "nuvom: cannot exec the worker (%v); running it as a child\n", err)
		}
	}
	return a.runChild(bin, args)
}

// workerFlags defines the flags that runworker and dev pass on to the worker
// (which checks them again): the worker binary's own definitions, for --help
// and usage errors.
func workerFlags(fs *pflag.FlagSet) { workercmd.DefineFlags(fs) }

// checkWorkerFlags checks the worker flags given as the worker will, before a
// build that can take a minute.
func (a *app) checkWorkerFlags(fs *pflag.FlagSet) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	for _, f := range []struct{ flag, env string }{{"concurrency", "NUVOM_CONCURRENCY"}, {"queues", "NUVOM_QUEUES"}, {"claim-ahead", "NUVOM_CLAIM_AHEAD"}, {"keep-finished-for", "NUVOM_KEEP_FINISHED_FOR"}, {"keep-finished", "NUVOM_KEEP_FINISHED"},
		{"grace", "NUVOM_GRACE"}, {"lease", "NUVOM_LEASE"}, {"log-format", "NUVOM_LOG_FORMAT"}, {"log-level", "NUVOM_LOG_LEVEL"}} {
		fl := fs.Lookup(f.flag)
		if fl == nil || !fl.Changed {
			continue
		}
		v := fl.Value.String()
		if sv, ok := fl.Value.(pflag.SliceValue); ok {
			v = strings.Join(sv.GetSlice(), ",")
		}
		if err := cfg.Set(f.env, v, "flag --"+f.flag); err != nil {
			return err
		}
	}
	on, _ := fs.GetBool("dashboard")
	if fs.Changed("dashboard-addr") && !on {
		return errors.New("--dashboard-addr goes with --dashboard (without it no dashboard is served)")
	}
	if on {
		addr, _ := fs.GetString("dashboard-addr")
		if err := dashboard.CheckBind(addr, dashboard.Options{Token: a.getenv(workercmd.DashboardTokenEnv)}); err != nil {
			return fmt.Errorf("--dashboard-addr: %w", err)
		}
	}
	return nil
}

// buildWorker builds the generated worker main into .nuvom/bin and returns the
// binary's path. go build reuses its cache, so an unchanged module relinks
// nothing. With announce, it first says on stderr what it builds: the first
// build on a machine compiles every dependency and prints nothing for a while.
func (a *app) buildWorker(announce bool) (string, error) {
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
	if announce {
		fmt.Fprintf(a.stderr, "nuvom: building the worker %s (the first build can take a minute)...\n", pkg)
	}
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		hint := ""
		if bytes.Contains(out.Bytes(), []byte(codegen.FileName+":")) {
			// The compile-time guard of a stub file: a task changed since go generate.
			hint = " (the generated code does not match the tasks: run go generate ./...)"
		}
		return "", fmt.Errorf("build worker %s: %v%s\n%s", pkg, err, hint, bytes.TrimSpace(out.Bytes()))
	}
	return bin, nil
}

// runChild runs the worker binary with args as a child that dies with nuvom,
// passing stop signals on (one per keypress, see package stopsignal), and
// returns its exit status.
func (a *app) runChild(bin string, args []string) int {
	cmd := exec.Command(bin, args...)
	cmd.Args[0] = "nuvom" // the worker names itself so in its messages
	cmd.Dir = a.wd
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdin, a.stdout, a.stderr
	ownProcessGroup(cmd)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	c, err := startChild(cmd)
	if err != nil {
		return a.fail(err)
	}
	done := make(chan struct{})
	stops := stopsignal.Coalesce(sigs, &stopsignal.Filter{Window: a.signalWindow}, done, func(os.Signal) {
		fmt.Fprintln(a.stderr, "nuvom: stop signal repeated within 1s: counted once")
	})
	go func() {
		// The worker filters signals too: space them so that a second
		// request is not taken for a repeat of the first.
		var sp stopsignal.Spacer
		for {
			select {
			case s := <-stops:
				select {
				case <-time.After(sp.Delay()):
				case <-done:
					return
				}
				forwardSignal(cmd, s)
				sp.Sent()
			case <-done:
				return
			}
		}
	}()
	err = c.wait()
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
