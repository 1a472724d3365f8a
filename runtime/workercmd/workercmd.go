// Package workercmd is the command line of a Nuvom worker. The worker main
// that nuvomgen generates is one line:
//
//	os.Exit(workercmd.Main(nuvomtasks.Tasks(), os.Args[1:]))
//
// Flags override NUVOM_* environment variables, which override defaults (see
// package runtime/config). SIGINT or SIGTERM (Ctrl-C or a console close on
// Windows) starts a graceful shutdown; a second one stops at once. The exit
// code is 0 on a clean stop, 2 on a usage error and 1 on a failure.
package workercmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/lmittmann/tint"
	"github.com/mattn/go-isatty"
	"github.com/spf13/pflag"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/config"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// mainWith is Main with optional plugins.
func mainWith(tasks []nuvom.TaskDef, pl *Plugins, args []string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hard := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		n := 0
		for range sigs {
			n++
			if n == 1 {
				cancel()
				continue
			}
			close(hard)
			return
		}
	}()
	return runWith(ctx, hard, tasks, pl, args, os.Stdout, os.Stderr)
}

const usage = `Usage: %s [flags]

Runs the Nuvom tasks compiled into this program: claims their jobs from the
configured backend and executes them until interrupted. Flags override the
NUVOM_* environment variables (NUVOM_BACKEND, NUVOM_DB, ...).

Example:
  NUVOM_DB=/var/lib/app/nuvom.db %s --concurrency 8 --queues critical,default --grace 30s

The worker also runs the scheduler (see nuvom schedule): on start it stores the
schedules declared in its tasks' annotations (cron=, every=), then enqueues due
ticks; --no-scheduler turns that off.

Flags:
`

// runWith is Main without the process: ctx's cancellation starts a graceful
// shutdown and closing hard stops at once.
func runWith(ctx context.Context, hard <-chan struct{}, tasks []nuvom.TaskDef, pl *Plugins, args []string, stdout, stderr io.Writer) int {
	const prog = "worker"
	fs := pflag.NewFlagSet(prog, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	concurrency := fs.Int("concurrency", 0, "jobs run at once (NUVOM_CONCURRENCY; default 100)")
	queues := fs.StringSlice("queues", nil, "queues to serve, in priority order, e.g. a,b (NUVOM_QUEUES; default every queue of the tasks)")
	burst := fs.Bool("burst", false, "run until no ready job remains, then exit")
	noScheduler := fs.Bool("no-scheduler", false, "do not run the scheduler (by default every worker runs one; a lease elects one at a time)")
	grace := fs.Duration("grace", 0, "how long a shutdown waits for running jobs (NUVOM_GRACE; default 10s)")
	logFormat := fs.String("log-format", "", "text or json (NUVOM_LOG_FORMAT; default text)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (NUVOM_LOG_LEVEL; default info)")
	help := fs.BoolP("help", "h", false, "show this help")
	fs.Usage = func() {
		fmt.Fprintf(stderr, usage, prog, prog)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if *help {
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, usage, prog, prog)
		fs.PrintDefaults()
		return ExitOK
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", prog, fs.Args())
		return ExitUsage
	}

	cfg, err := config.Load(".", os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitUsage
	}
	flagSets := []struct {
		flag, env string
		value     func() string
	}{
		{"concurrency", "NUVOM_CONCURRENCY", func() string { return strconv.Itoa(*concurrency) }},
		{"queues", "NUVOM_QUEUES", func() string { return strings.Join(*queues, ",") }},
		{"grace", "NUVOM_GRACE", func() string { return grace.String() }},
		{"log-format", "NUVOM_LOG_FORMAT", func() string { return *logFormat }},
		{"log-level", "NUVOM_LOG_LEVEL", func() string { return *logLevel }},
	}
	for _, f := range flagSets {
		if fs.Changed(f.flag) {
			if err := cfg.Set(f.env, f.value(), "flag --"+f.flag); err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", prog, err)
				return ExitUsage
			}
		}
	}
	logger := newLogger(stderr, cfg.LogFormat.Value, cfg.LogLevel.Value)

	reg, err := nuvom.NewRegistry(tasks...)
	if err != nil {
		logger.Error("register tasks", "err", err)
		return ExitFailure
	}
	if len(tasks) == 0 && len(cfg.Queues.Value) == 0 {
		logger.Error("no tasks are compiled into this worker; run go generate")
		return ExitFailure
	}
	plugins, err := loadPlugins(pl)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitUsage
	}
	backend, err := cfg.OpenBackend(ctx)
	if err != nil {
		logger.Error("open backend", "err", err)
		return ExitFailure
	}
	defer backend.Close()

	stopScheduler, err := startScheduler(ctx, cfg, backend, tasks, !*noScheduler, *burst, logger)
	if err != nil {
		logger.Error("start scheduler", "err", err)
		return ExitFailure
	}
	defer stopScheduler()

	opts := cfg.WorkerOptions()
	opts.Burst = *burst
	opts.Logger = logger
	wirePlugins(plugins, &opts)
	w, err := nuvom.NewWorker(backend, reg, opts)
	if err != nil {
		logger.Error("start worker", "err", err)
		return ExitFailure
	}
	stopPlugins, err := startPlugins(ctx, plugins, w, nuvom.NewInspector(backend), logger, cfg.Grace.Value)
	if err != nil {
		logger.Error("start plugins", "err", err)
		return ExitFailure
	}
	defer stopPlugins()
	go func() {
		select {
		case <-ctx.Done():
			logger.Info("shutting down gracefully; signal again to stop at once", "grace", cfg.Grace.Value)
		case <-hard:
		case <-w.Done():
			return
		}
		select {
		case <-hard:
			logger.Warn("stopping at once")
			w.StopNow()
		case <-w.Done():
		}
	}()
	if err := w.Run(ctx); err != nil {
		logger.Error("worker", "err", err)
		return ExitFailure
	}
	return ExitOK
}

// newLogger logs JSON for format json, coloured text on a terminal, plain text otherwise.
func newLogger(out io.Writer, format string, level slog.Level) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level}))
	}
	if f, ok := out.(*os.File); ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		return slog.New(tint.NewHandler(out, &tint.Options{Level: level}))
	}
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
}
