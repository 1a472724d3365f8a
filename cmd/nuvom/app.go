package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/nuvom/nuvom/internal/goflags"
	"github.com/nuvom/nuvom/internal/stopsignal"
	"github.com/nuvom/nuvom/runtime/redis"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // what was asked failed: a job failed, a check failed
	exitUsage   = 2
)

// app is one invocation of the CLI: its streams, environment and working dir.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	wd     string
	// process is set when the app is the whole process (its streams are the
	// process's own), so runworker may hand the process over to the worker.
	process bool
	// signalWindow is how close together stop signals count as one (see
	// package stopsignal); zero in tests that build an app by hand.
	signalWindow time.Duration
}

// command is one (possibly two-word) command.
type command struct {
	name    string // "list tasks"
	summary string
	run     func(a *app, args []string) int
}

func commands() []command {
	return []command{
		{"runworker", "build and run the module's worker", (*app).cmdRunWorker},
		{"dev", "run the worker and reload it when the source changes", (*app).cmdDev},
		{"list tasks", "list the module's tasks from .nuvom_tasks.json", (*app).cmdListTasks},
		{"enqueue", "enqueue a task by name with JSON args", (*app).cmdEnqueue},
		{"status", "print a job's state on one line", (*app).cmdStatus},
		{"inspect job", "print every field of a job, its attempts and errors", (*app).cmdInspectJob},
		{"history", "list jobs, newest first", (*app).cmdHistory},
		{"retry", "queue a failed or cancelled job again", (*app).cmdRetry},
		{"cancel", "cancel a job that has not finished (a running one too)", (*app).cmdCancel},
		{"queue stats", "count jobs per queue and state", (*app).cmdQueueStats},
		{"queue purge", "delete jobs that are not running", (*app).cmdQueuePurge},
		{"queue pause", "stop workers claiming from a queue", (*app).cmdQueuePause},
		{"queue resume", "let workers claim from a paused queue again", (*app).cmdQueueResume},
		{"workers", "list the worker processes registered in the store", (*app).cmdWorkers},
		{"dashboard", "serve the web dashboard (127.0.0.1:8181)", (*app).cmdDashboard},
		{"quarantine list", "list jobs whose payload could not be decoded", (*app).cmdQuarantineList},
		{"quarantine show", "show one quarantined job", (*app).cmdQuarantineShow},
		{"quarantine requeue", "queue a quarantined job again", (*app).cmdQuarantineRequeue},
		{"quarantine drop", "delete a quarantined job", (*app).cmdQuarantineDrop},
		{"workflow list", "list workflows with their steps counted by state", (*app).cmdWorkflowList},
		{"workflow show", "print a workflow's graph with each step's state", (*app).cmdWorkflowShow},
		{"workflow cancel", "cancel every step of a workflow that has not ended", (*app).cmdWorkflowCancel},
		{"limit list", "list the tasks' concurrency and rate limits", (*app).cmdLimitList},
		{"limit set", "override a task's concurrency or rate limit for every worker", (*app).cmdLimitSet},
		{"limit clear", "remove a task's limit override", (*app).cmdLimitClear},
		{"schedule list", "list schedules: spec, time zone, next and last run, paused", (*app).cmdScheduleList},
		{"schedule add", "schedule a task by cron spec, interval or one-off time", (*app).cmdScheduleAdd},
		{"schedule rm", "delete a schedule", (*app).cmdScheduleRm},
		{"schedule pause", "stop a schedule from firing", (*app).cmdSchedulePause},
		{"schedule resume", "let a paused schedule fire again", (*app).cmdScheduleResume},
		{"schedule run", "enqueue a schedule's task now", (*app).cmdScheduleRun},
		{"schedule next", "print the next fire times of a spec", (*app).cmdScheduleNext},
		{"runscheduler", "run the scheduler alone (workers run one too)", (*app).cmdRunScheduler},
		{"plugins list", "list the worker's plugins and their settings from .nuvom_tasks.json", (*app).cmdPluginsList},
		{"plugins check", "check .nuvom_plugins.toml and each plugin's settings", (*app).cmdPluginsCheck},
		{"manifest diff", "task-level diff of two manifests", (*app).cmdManifestDiff},
		{"config", "print the effective settings and where each came from", (*app).cmdConfig},
		{"bench", "measure enqueue, burn-down and pickup latency", (*app).cmdBench},
		{"version", "print nuvom's version", (*app).cmdVersion},
	}
}

const mainUsage = `nuvom runs and inspects Nuvom background tasks.

Usage: nuvom <command> [flags] [args]

Commands:
%s
Run "nuvom <command> --help" for a command's flags and an example.
Settings come from NUVOM_* environment variables; "nuvom config" shows them.
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(stderr, "nuvom: %v\n", err)
		return exitFailure
	}
	// A failed call to Redis returns its error, printed as one line; go-redis's
	// own log lines about it (failed dials) would only come before that line.
	redis.RouteClientLogs(nil)
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, wd: wd,
		process:      stdin == io.Reader(os.Stdin) && stdout == io.Writer(os.Stdout) && stderr == io.Writer(os.Stderr),
		signalWindow: stopsignal.Window}
	return a.dispatch(args)
}

func (a *app) dispatch(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 && args[0] == "help" {
			return a.dispatch(append(args[1:], "--help"))
		}
		a.printUsage(a.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmds := commands()
	// Longest match first: "list tasks" before a one-word command.
	sort.SliceStable(cmds, func(i, j int) bool { return len(cmds[i].name) > len(cmds[j].name) })
	for _, c := range cmds {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c.run(a, args[len(words):])
		}
	}
	// A known group without a valid subcommand gets the group's commands listed.
	var group []string
	for _, c := range commands() {
		if strings.HasPrefix(c.name, args[0]+" ") {
			group = append(group, c.name)
		}
	}
	if len(group) > 0 {
		if len(args) > 1 && (args[1] == "-h" || args[1] == "--help" || args[1] == "help") {
			a.printGroupUsage(args[0])
			return exitOK
		}
		sub := "no subcommand"
		if len(args) > 1 {
			sub = fmt.Sprintf("unknown subcommand %q", args[1])
			for _, g := range group {
				if typo(strings.TrimPrefix(g, args[0]+" "), args[1]) {
					sub += fmt.Sprintf(" (did you mean %s?)", g)
					break
				}
			}
		}
		return a.usageErr("%s %s: use one of: %s", args[0], sub, strings.Join(group, ", "))
	}
	for _, c := range cmds {
		if !strings.Contains(c.name, " ") && typo(c.name, args[0]) {
			return a.usageErr("unknown command %q (did you mean %s?)", args[0], c.name)
		}
	}
	return a.usageErr("unknown command %q (run \"nuvom help\")", args[0])
}

func (a *app) printUsage(w io.Writer) {
	var b strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-20s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, mainUsage, b.String())
}

// printGroupUsage lists the commands of a group ("queue": queue stats, ...)
// on stdout, for "nuvom queue --help".
func (a *app) printGroupUsage(group string) {
	fmt.Fprintf(a.stdout, "Usage: nuvom %s <command> [flags] [args]\n\nCommands:\n", group)
	for _, c := range commands() {
		if strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(a.stdout, "  %-20s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(a.stdout, "\nRun \"nuvom %s <command> --help\" for a command's flags and an example.\n", group)
}

// usageErr reports a usage error on one line and returns exit status 2.
func (a *app) usageErr(format string, args ...any) int {
	fmt.Fprintf(a.stderr, "nuvom: "+format+"\n", args...)
	return exitUsage
}

// fail reports a failure on one line and returns exit status 1.
func (a *app) fail(err error) int {
	fmt.Fprintf(a.stderr, "nuvom: %v\n", err)
	return exitFailure
}

// flags returns a flag set for command name whose --help prints usage, a
// description and an example.
func (a *app) flags(name, argsUsage, description, example string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("nuvom "+name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(a.stdout, "Usage: %s\n\n%s\n\nExample:\n  %s\n", strings.TrimSpace("nuvom "+name+" [flags] "+argsUsage), description, example)
		if fs.HasFlags() {
			fmt.Fprintf(a.stdout, "\nFlags:\n%s", fs.FlagUsages())
		}
	}
	return fs
}

// parse parses args; it returns (exit code, false) when the command must stop
// (help printed or usage error) and checks the number of positional args.
func (a *app) parse(fs *pflag.FlagSet, args []string, minArgs, maxArgs int) (int, bool) {
	if err := fs.Parse(goflags.Normalize(args, fs)); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK, false // pflag printed the usage (fs.Usage) already
		}
		return a.usageErr("%s: %v", strings.TrimPrefix(fs.Name(), "nuvom "), err), false
	}
	n := fs.NArg()
	switch {
	case n < minArgs:
		return a.usageErr("%s: missing argument (run \"%s --help\")", strings.TrimPrefix(fs.Name(), "nuvom "), fs.Name()), false
	case maxArgs >= 0 && n > maxArgs:
		return a.usageErr("%s: unexpected argument %q", strings.TrimPrefix(fs.Name(), "nuvom "), fs.Arg(maxArgs)), false
	}
	return exitOK, true
}
