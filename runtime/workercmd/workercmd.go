// Package workercmd is the command line of a Nuvom worker. The worker main
// that nuvomgen generates is one line:
//
//	os.Exit(workercmd.Main(nuvomtasks.Tasks(), os.Args[1:]))
//
// Flags override NUVOM_* environment variables, which override defaults (see
// package runtime/config). SIGINT or SIGTERM (Ctrl-C or a console close on
// Windows) starts a graceful shutdown; a second one stops at once. Signals
// less than a second apart count as one: a terminal sends Ctrl-C's SIGINT to
// the whole process group, so under "go tool" the worker receives it twice.
// The exit code is 0 on a clean stop, 2 on a usage error and 1 on a failure
// (start failures are one line on stderr: "<program>: <error>").
//
// The worker embeds the time zone database (time/tzdata), so annotation
// schedules with tz= work in images without /usr/share/zoneinfo.
package workercmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // IANA zones for tz= without a system zoneinfo (distroless images)

	"github.com/lmittmann/tint"
	"github.com/mattn/go-isatty"
	"github.com/spf13/pflag"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/internal/stopsignal"
	"github.com/nuvom/nuvom/runtime/config"
	"github.com/nuvom/nuvom/runtime/redis"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// LifelineEnv names the environment variable through which a parent process
// can hand the worker the read end of a pipe, as a file descriptor number,
// and keep the write end: when the parent dies the pipe closes and the worker
// shuts down gracefully. nuvom dev uses it where the system cannot kill a
// child with its parent (Unix other than Linux).
const LifelineEnv = "NUVOM_LIFELINE_FD"

// progName is the program's name for messages: the base name of argv[0].
func progName(arg0 string) string {
	name := strings.TrimSuffix(filepath.Base(arg0), ".exe")
	if name == "" || name == "." || name == string(filepath.Separator) {
		return "worker"
	}
	return name
}

// mainWith is Main with optional plugins, the program's name and the window
// within which stop signals count as one (see package stopsignal).
func mainWith(tasks []nuvom.TaskDef, pl *Plugins, args []string, prog string, window time.Duration) int {
	if len(args) > 0 && args[0] == ServeBackendArg {
		return mainServeBackend(pl, args[1:], prog)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hard := make(chan struct{})
	repeated := make(chan os.Signal, 4)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	parentGone := watchLifeline(os.Getenv(LifelineEnv))
	_ = os.Unsetenv(LifelineEnv) // not for the tasks' own child processes
	go func() {
		// One keypress can arrive twice (the terminal's SIGINT and a copy
		// forwarded by "go tool"): signals within the window are one request.
		f := stopsignal.Filter{Window: window}
		n := 0
		for {
			select {
			case s := <-sigs:
				if !f.Accept() {
					select {
					case repeated <- s: // for the log
					default:
					}
					continue
				}
			case <-parentGone:
				parentGone = nil
				if n == 0 {
					n++
					cancel()
				}
				continue
			}
			n++
			if n == 1 {
				cancel()
				continue
			}
			close(hard)
			return
		}
	}()
	return runWith(ctx, hard, repeated, prog, tasks, pl, args, os.Stdout, os.Stderr)
}

// watchLifeline returns a channel closed when the pipe whose read end is the
// file descriptor fd reaches its end (the parent holding the write end
// exited); nil when fd is empty or not a descriptor.
func watchLifeline(fd string) <-chan struct{} {
	n, err := strconv.ParseUint(fd, 10, 32)
	if fd == "" || err != nil {
		return nil
	}
	f := os.NewFile(uintptr(n), "lifeline")
	if f == nil {
		return nil
	}
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		defer f.Close()
		_, _ = io.Copy(io.Discard, f)
	}()
	return gone
}

const usage = `Usage: %s [flags]

Runs the Nuvom tasks compiled into this program: claims their jobs from the
configured backend and executes them until interrupted. Flags override the
NUVOM_* environment variables (NUVOM_BACKEND, NUVOM_DB, ...).

Example:
  NUVOM_DB=/var/lib/app/nuvom.db %s --concurrency 8 --queues critical,default --grace 30s

SIGINT or SIGTERM (Ctrl-C) stops it gracefully: running jobs get the grace
period to finish, the rest go back to the queue. Signals less than 1s apart
count as one (a Ctrl-C under "go tool" arrives twice); a later one stops at once.

The worker also runs the scheduler (see nuvom schedule): on start it stores the
schedules declared in its tasks' annotations (cron=, every=), then enqueues due
ticks; --no-scheduler turns that off. A schedule that cannot be stored (an
unknown time zone, say) is logged as an error; the other tasks still run.

Flags:
`

// Flags are the worker's command-line flags, as DefineFlags declares them.
type Flags struct {
	Concurrency *int
	Queues      *[]string
	ClaimAhead  *bool
	// KeepFinishedFor is the retention of ended jobs by age (0: keep them).
	KeepFinishedFor *time.Duration
	// KeepFinished is the retention of ended jobs by count, per queue (0: no limit).
	KeepFinished *int
	NoScheduler  *bool
	Grace        *time.Duration
	Lease        *time.Duration
	LogFormat    *string
	LogLevel     *string
	// Dashboard serves the web dashboard at DashboardAddr while the worker runs.
	Dashboard     *bool
	DashboardAddr *string
}

// DefineFlags declares the worker's flags on fs (all but --burst): the worker
// binary parses them, and nuvom runworker and nuvom dev declare the same ones
// for their --help and to check them before building.
func DefineFlags(fs *pflag.FlagSet) Flags {
	return Flags{
		Concurrency:     fs.Int("concurrency", 0, fmt.Sprintf("jobs run at once, at most %d (NUVOM_CONCURRENCY; default 100)", config.MaxConcurrency)),
		Queues:          fs.StringSlice("queues", nil, "queues to serve, in priority order, e.g. a,b (NUVOM_QUEUES; default any queue: every job of the worker's tasks)"),
		ClaimAhead:      fs.Bool("claim-ahead", false, "claim jobs ahead of free runners, for many short jobs on a store across the network; see the README's \"Claiming ahead\" (NUVOM_CLAIM_AHEAD; default false)"),
		KeepFinishedFor: fs.Duration("keep-finished-for", 0, "delete the jobs that ended more than this long ago, at least 1m, e.g. 720h; 0s: keep them until purged (NUVOM_KEEP_FINISHED_FOR; default 0s)"),
		KeepFinished:    fs.Int("keep-finished", 0, "keep the newest N ended jobs of each queue and delete the others, e.g. 100000; 0: no limit (NUVOM_KEEP_FINISHED; default 0)"),
		NoScheduler:     fs.Bool("no-scheduler", false, "do not run the scheduler (by default every worker runs one; a lease elects one at a time)"),
		Grace:           fs.Duration("grace", 0, "how long a shutdown waits for running jobs; 0s: not at all (NUVOM_GRACE; default 10s)"),
		Lease:           fs.Duration("lease", 0, "how long a claim holds a job without a heartbeat: a killed worker's jobs run again after it (NUVOM_LEASE; default 5s)"),
		LogFormat:       fs.String("log-format", "", "text or json (NUVOM_LOG_FORMAT; default text)"),
		LogLevel:        fs.String("log-level", "", "debug, info, warn or error (NUVOM_LOG_LEVEL; default info)"),
		Dashboard:       fs.Bool("dashboard", false, "serve the web dashboard while the worker runs (see --dashboard-addr; a non-loopback address needs "+DashboardTokenEnv+")"),
		DashboardAddr:   fs.String("dashboard-addr", "127.0.0.1:8181", "the dashboard's listen address"),
	}
}

// runWith is Main without the process: ctx's cancellation starts a graceful
// shutdown and closing hard stops at once; repeated carries the signals that
// were counted as a repeat of the previous one (for the log; may be nil).
// prog names the program in messages; pl holds the plugins (may be nil).
func runWith(ctx context.Context, hard <-chan struct{}, repeated <-chan os.Signal, prog string, tasks []nuvom.TaskDef, pl *Plugins, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet(prog, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	f := DefineFlags(fs)
	concurrency, queues, noScheduler, grace, logFormat, logLevel := f.Concurrency, f.Queues, f.NoScheduler, f.Grace, f.LogFormat, f.LogLevel
	burst := fs.Bool("burst", false, "run until no ready job remains, then exit")
	help := fs.BoolP("help", "h", false, "show this help")
	printUsage := func(w io.Writer) {
		fmt.Fprintf(w, usage, prog, prog)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	fs.Usage = func() { printUsage(stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return ExitOK
		}
		fmt.Fprintf(stderr, "%s: %v\n\n", prog, err)
		printUsage(stderr)
		return ExitUsage
	}
	if *help {
		printUsage(stdout)
		return ExitOK
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q (run %s --help)\n", prog, fs.Args(), prog)
		return ExitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitFailure
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
		{"claim-ahead", "NUVOM_CLAIM_AHEAD", func() string { return strconv.FormatBool(*f.ClaimAhead) }},
		{"keep-finished-for", "NUVOM_KEEP_FINISHED_FOR", func() string { return f.KeepFinishedFor.String() }},
		{"keep-finished", "NUVOM_KEEP_FINISHED", func() string { return strconv.Itoa(*f.KeepFinished) }},
		{"grace", "NUVOM_GRACE", func() string { return grace.String() }},
		{"lease", "NUVOM_LEASE", func() string { return f.Lease.String() }},
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

	// Start errors are one line on stderr and exit status 1, like every
	// command's; logs start once the worker runs.
	reg, err := nuvom.NewRegistry(tasks...)
	if err != nil {
		return fail(fmt.Errorf("register tasks: %w", err))
	}
	if len(tasks) == 0 && len(cfg.Queues.Value) == 0 {
		return fail(errors.New("no tasks are compiled into this worker; run go generate"))
	}
	plugins, err := loadPlugins(pl)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitUsage
	}
	if err := registerBackends(&cfg, plugins); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitUsage
	}
	cfg.Logger = logger // the backend logs the rows it quarantines
	// go-redis logs failed dials by itself on stderr: none before the start
	// error's one line, and then through the worker's logger (its format).
	process := stderr == io.Writer(os.Stderr)
	if process {
		redis.RouteClientLogs(nil)
	}
	backend, err := cfg.OpenBackend(ctx)
	if err != nil {
		return fail(err)
	}
	defer backend.Close()
	if process {
		redis.RouteClientLogs(logger)
	}

	m, manifestHash := loadManifest(cfg.Root)
	if *f.Dashboard {
		_, stopDashboard, err := startDashboard(ctx, cfg, backend, m, *f.DashboardAddr, logger)
		if err != nil {
			return fail(err)
		}
		defer stopDashboard()
	}

	opts := cfg.WorkerOptions()
	opts.ManifestHash = manifestHash
	opts.Burst = *burst
	opts.Logger = logger
	wirePlugins(plugins, &opts)
	w, err := nuvom.NewWorker(backend, reg, opts)
	if err != nil {
		return fail(fmt.Errorf("start worker: %w", err))
	}
	warnQueuesWithoutTasks(logger, tasks, opts.Queues)
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		for {
			select {
			case s := <-repeated:
				logger.Info("stop signal repeated within 1s: counted once", "signal", s)
			case <-stopped:
				return
			}
		}
	}()
	stopPlugins, err := startPlugins(ctx, plugins, w, nuvom.NewInspector(backend), logger, cfg.Grace.Value)
	if err != nil {
		logger.Error("start plugins", "err", err)
		return ExitFailure
	}
	defer stopPlugins()
	// The scheduler starts after the plugins, so that they see its ticks.
	stopScheduler, err := startScheduler(ctx, cfg, backend, tasks, !*noScheduler, *burst, logger, tickPublisher(plugins))
	if err != nil {
		return fail(fmt.Errorf("start scheduler: %w", err))
	}
	defer stopScheduler()
	go func() {
		select {
		case <-ctx.Done():
			logger.Info("shutting down gracefully; a second signal (1s or more later) stops at once", "grace", cfg.Grace.Value.String())
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
