package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/runtime/schedule"
)

// scheduleStore opens the configured schedule store. With create false and no
// storage yet, it returns (nil, false, nil) so read-only commands create nothing.
func (a *app) scheduleStore(ctx context.Context, create bool) (schedule.Store, bool, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, false, err
	}
	if !create {
		path := ""
		switch cfg.SchedulerBackendValue() {
		case "sqlite":
			path = cfg.DB.Value
		case "file":
			path = cfg.ScheduleDir()
		}
		if path != "" {
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				return nil, false, nil
			}
		}
	}
	s, err := cfg.OpenScheduleStore(ctx)
	return s, err == nil, err
}

// scheduleRow is one schedule as `schedule list --json` prints it.
type scheduleRow struct {
	ID           string    `json:"id"`
	Task         string    `json:"task"`
	Kind         string    `json:"kind"`
	Spec         string    `json:"spec"`
	Zone         string    `json:"zone,omitempty"`
	NextRun      time.Time `json:"next_run,omitzero"`
	LastRun      time.Time `json:"last_run,omitzero"`
	LastJobID    string    `json:"last_job_id,omitempty"`
	LastJobState string    `json:"last_job_state,omitempty"`
	Paused       bool      `json:"paused"`
	Misfire      string    `json:"misfire"`
	Source       string    `json:"source"`
	// Warning says why the schedule's ticks will fail, e.g. its task's
	// signature changed since it was stored.
	Warning string `json:"warning,omitempty"`
}

func (a *app) cmdScheduleList(args []string) int {
	fs := a.flags("schedule list", "", "Lists the stored schedules: id, task, spec, time zone, next and last run, the state of\n"+
		"the last job, and whether it is paused. A schedule whose task's signature in the manifest\n"+
		"(.nuvom_tasks.json) differs from the one stored with it gets a warning: its ticks will fail.", "nuvom schedule list --json")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	ctx := context.Background()
	store, ok, err := a.scheduleStore(ctx, false)
	if err != nil {
		return a.fail(err)
	}
	rows := []scheduleRow{}
	if ok {
		defer store.Close()
		list, err := store.List(ctx)
		if err != nil {
			return a.fail(err)
		}
		c, _, _ := a.existingClient(ctx)
		if c != nil {
			defer c.Close()
		}
		warnings := map[string]string{}
		if m, err := a.loadManifest(); err == nil {
			current := make(map[string]string, len(m.Tasks))
			for _, t := range m.Tasks {
				current[t.Name] = t.Signature
			}
			for _, w := range schedule.SignatureMismatches(list, current) {
				warnings[w.ScheduleID] = fmt.Sprintf("task signature changed (schedule has %s, %s has %s): its ticks will fail to decode; delete it and add it again",
					w.Stored, manifest.FileName, w.Current)
			}
		}
		for _, sc := range list {
			r := scheduleRow{ID: sc.ID, Task: sc.Task.Name, Kind: string(sc.Kind), Spec: sc.Spec, Zone: sc.Zone,
				NextRun: sc.NextRun, LastRun: sc.LastRun, LastJobID: sc.LastJobID, Paused: sc.Paused,
				Misfire: string(sc.Misfire), Source: sc.Source, Warning: warnings[sc.ID]}
			if c != nil && sc.LastJobID != "" {
				if j, err := c.Inspector().Get(ctx, sc.LastJobID); err == nil {
					r.LastJobState = string(j.State)
				} else if errors.Is(err, nuvom.ErrNotFound) {
					r.LastJobState = "purged"
				}
			}
			rows = append(rows, r)
		}
	}
	if *asJSON {
		return a.printJSON(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(a.stdout, "no schedules (add one with nuvom schedule add, or cron=/every= in a task's annotation)")
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTASK\tSPEC\tTZ\tNEXT RUN\tLAST RUN\tLAST JOB\tPAUSED")
	var warned []scheduleRow
	for _, r := range rows {
		spec := r.Spec
		if r.Kind == string(nuvom.ScheduleInterval) {
			spec = "every " + spec
		} else if r.Kind == string(nuvom.ScheduleOnce) {
			spec = "once"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Task, spec, orDash(r.Zone),
			fmtTime(r.NextRun), fmtTime(r.LastRun), orDash(r.LastJobState), map[bool]string{true: "yes", false: "no"}[r.Paused])
		if r.Warning != "" {
			warned = append(warned, r)
		}
	}
	code := a.flushTable(tw)
	for _, r := range warned {
		fmt.Fprintf(a.stderr, "nuvom: warning: schedule %s (%s): %s\n", r.ID, r.Task, r.Warning)
	}
	return code
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

func (a *app) cmdScheduleAdd(args []string) int {
	fs := a.flags("schedule add", "TASK [ARGS_JSON]",
		"Stores a schedule that enqueues TASK with ARGS_JSON (as for nuvom enqueue) at each fire time.\n"+
			"Give exactly one of --cron (5 fields, an optional seconds field first, or @hourly,\n"+
			"@daily, @every 90s...; read in --tz), --every (an interval), --at or --in (a one-off).\n"+
			"Workers (and nuvom runscheduler) enqueue its ticks. Prints the schedule's id.",
		`nuvom schedule add shop.Report --cron "0 3 * * *" --tz Europe/Berlin '[{"days": 1}]'`)
	cronSpec := fs.String("cron", "", "cron spec")
	tz := fs.String("tz", "", "IANA time zone of --cron, e.g. Europe/Berlin (default UTC)")
	every := fs.Duration("every", 0, "interval, e.g. 15m (at least 100ms)")
	start := fs.String("start", "", "with --every: first fire time, RFC 3339 (default one interval from now)")
	at := fs.String("at", "", "one-off at this RFC 3339 time")
	in := fs.Duration("in", 0, "one-off this long from now")
	catchUp := fs.Int("catch-up", 0, "after downtime, enqueue each missed tick, at most this many (default: only the latest, once)")
	jitter := fs.Duration("jitter", 0, "delay each tick's job by a random duration below this (shorter than the time between two runs)")
	id := fs.String("id", "", "the schedule's id (default a new ULID; not starting with task:, the annotations' own); an existing id is replaced")
	if code, ok := a.parse(fs, args, 1, 2); !ok {
		return code
	}
	n := 0
	for _, f := range []string{"cron", "every", "at", "in"} {
		if fs.Changed(f) {
			n++
		}
	}
	if n != 1 {
		return a.usageErr("schedule add: give exactly one of --cron, --every, --at, --in")
	}
	if fs.Changed("tz") && !fs.Changed("cron") {
		return a.usageErr("schedule add: --tz goes with --cron")
	}
	if fs.Changed("start") && !fs.Changed("every") {
		return a.usageErr("schedule add: --start goes with --every")
	}
	if fs.Changed("catch-up") && !fs.Changed("cron") && !fs.Changed("every") {
		return a.usageErr("schedule add: --catch-up goes with --cron or --every (a one-off has one tick)")
	}
	var when nuvom.ScheduleSpec
	switch {
	case fs.Changed("cron"):
		when = nuvom.Cron(*cronSpec, *tz)
	case fs.Changed("every"):
		when = nuvom.Every(*every)
		if *start != "" {
			t, err := time.Parse(time.RFC3339Nano, *start)
			if err != nil {
				return a.usageErr("schedule add: --start %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", *start)
			}
			when = when.StartingAt(t)
		}
	case fs.Changed("at"):
		t, err := time.Parse(time.RFC3339Nano, *at)
		if err != nil {
			return a.usageErr("schedule add: --at %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", *at)
		}
		when = nuvom.OnceAt(t)
	default:
		when = nuvom.OnceIn(*in)
	}
	if fs.Changed("catch-up") {
		if *catchUp < 1 {
			return a.usageErr("schedule add: --catch-up %d must be at least 1", *catchUp)
		}
		when = when.CatchUp(*catchUp)
	}
	when = when.WithJitter(*jitter).WithID(*id)
	task, payload, err := a.taskArgs(fs.Arg(0), fs.Arg(1))
	if err != nil {
		return a.fail(err)
	}
	// Validate before opening anything, so bad input stores nothing.
	if err := schedule.CheckUserID(*id); err != nil {
		return a.usageErr("schedule add: --id: %v", err)
	}
	if _, err := schedule.Build(specOf(task), payload, when, time.Now()); err != nil {
		return a.fail(fmt.Errorf("schedule %s: %w", task.Name, err))
	}
	ctx := context.Background()
	store, _, err := a.scheduleStore(ctx, true)
	if err != nil {
		return a.fail(err)
	}
	defer store.Close()
	sc, err := schedule.NewService(store).Create(ctx, specOf(task), payload, when)
	if err != nil {
		return a.fail(err)
	}
	fmt.Fprintln(a.stdout, sc.ID)
	if !sc.NextRun.IsZero() {
		fmt.Fprintf(a.stderr, "nuvom: next run %s\n", fmtTime(sc.NextRun))
	}
	return exitOK
}

// scheduleByID runs fn with a service over the store, mapping a missing
// schedule to a one-line error.
func (a *app) scheduleByID(name, description, example string, args []string, fn func(ctx context.Context, svc *schedule.Service, id string) (string, error)) int {
	fs := a.flags(name, "ID", description, example)
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	ctx := context.Background()
	id := fs.Arg(0)
	store, ok, err := a.scheduleStore(ctx, false)
	if err != nil {
		return a.fail(err)
	}
	if !ok {
		return a.fail(fmt.Errorf("no schedule with id %q", id))
	}
	defer store.Close()
	out, err := fn(ctx, schedule.NewService(store), id)
	if errors.Is(err, schedule.ErrNotFound) {
		return a.fail(fmt.Errorf("no schedule with id %q", id))
	}
	if err != nil {
		return a.fail(err)
	}
	fmt.Fprintln(a.stdout, out)
	return exitOK
}

func (a *app) cmdScheduleRm(args []string) int {
	return a.scheduleByID("schedule rm", "Deletes a schedule. Jobs it already enqueued stay.", "nuvom schedule rm 01JD3Z5K8Q9W6V2N4M7R1T0XYZ", args,
		func(ctx context.Context, svc *schedule.Service, id string) (string, error) {
			return "deleted " + id, svc.Delete(ctx, id)
		})
}

func (a *app) cmdSchedulePause(args []string) int {
	return a.scheduleByID("schedule pause", "Stops a schedule from firing until it is resumed.", "nuvom schedule pause 01JD3Z5K8Q9W6V2N4M7R1T0XYZ", args,
		func(ctx context.Context, svc *schedule.Service, id string) (string, error) {
			return "paused " + id, svc.Pause(ctx, id)
		})
}

func (a *app) cmdScheduleResume(args []string) int {
	return a.scheduleByID("schedule resume", "Lets a paused schedule fire again; ticks missed while paused are dropped.", "nuvom schedule resume 01JD3Z5K8Q9W6V2N4M7R1T0XYZ", args,
		func(ctx context.Context, svc *schedule.Service, id string) (string, error) {
			return "resumed " + id, svc.Resume(ctx, id)
		})
}

func (a *app) cmdScheduleRun(args []string) int {
	return a.scheduleByID("schedule run", "Enqueues the schedule's task now, outside its tick sequence, and prints the job id.",
		"nuvom schedule run 01JD3Z5K8Q9W6V2N4M7R1T0XYZ", args,
		func(ctx context.Context, svc *schedule.Service, id string) (string, error) {
			c, err := a.client(ctx)
			if err != nil {
				return "", err
			}
			defer c.Close()
			return svc.RunNow(ctx, c, id)
		})
}

func (a *app) cmdScheduleNext(args []string) int {
	fs := a.flags("schedule next", "SPEC",
		"Prints the next fire times of a cron spec (or of an interval such as 15m) without storing anything.",
		`nuvom schedule next "30 2 * * *" --tz Europe/Berlin -n 3`)
	tz := fs.String("tz", "", "IANA time zone of the spec (default UTC)")
	count := fs.IntP("count", "n", 5, "how many fire times")
	from := fs.String("from", "", "start after this RFC 3339 time (default now)")
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	if *count < 1 {
		return a.usageErr("schedule next: -n %d must be at least 1", *count)
	}
	now := time.Now()
	if *from != "" {
		t, err := time.Parse(time.RFC3339Nano, *from)
		if err != nil {
			return a.usageErr("schedule next: --from %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", *from)
		}
		now = t
	}
	loc, err := schedule.LoadZone(*tz)
	if err != nil {
		return a.fail(err)
	}
	tm, err := schedule.ParseCron(fs.Arg(0), *tz)
	anchor := time.Time{}
	if err != nil {
		d, derr := time.ParseDuration(fs.Arg(0))
		if derr != nil {
			return a.fail(err)
		}
		if tm, err = schedule.IntervalTiming(d); err != nil {
			return a.fail(err)
		}
		anchor = now.Add(d)
	}
	t := now
	for i := 0; i < *count; i++ {
		t = tm.Next(anchor, t)
		if t.IsZero() {
			break
		}
		fmt.Fprintln(a.stdout, t.In(loc).Format(time.RFC3339))
	}
	return exitOK
}

func (a *app) cmdRunScheduler(args []string) int {
	fs := a.flags("runscheduler", "",
		"Runs the scheduler alone: enqueues the due ticks of the stored schedules until interrupted.\n"+
			"Workers run one too (unless --no-scheduler); a lease elects one dispatcher at a time, and\n"+
			"each tick is enqueued once however many run. It needs no build: schedules carry their task's\n"+
			"name, signature and options.",
		"NUVOM_SCHEDULER_BACKEND=sqlite nuvom runscheduler")
	once := fs.Bool("once", false, "enqueue what is due now, print it, and exit")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return a.usageErr("runscheduler: --log-level %q is not debug, info, warn or error", *logLevel)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := a.config()
	if err != nil {
		return a.fail(err)
	}
	backend, err := a.openBackend(ctx, cfg)
	if err != nil {
		return a.fail(err)
	}
	defer backend.Close()
	store, _, err := a.scheduleStore(ctx, true)
	if err != nil {
		return a.fail(err)
	}
	defer store.Close()
	logger := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	d := &schedule.Dispatcher{Store: store, Client: nuvom.NewClient(backend), Logger: logger}
	if *once {
		fired, err := d.Tick(ctx)
		for _, f := range fired {
			dup := ""
			if f.Duplicate {
				dup = " (already enqueued)"
			}
			fmt.Fprintf(a.stdout, "%s %s %s%s\n", f.ScheduleID, f.FireTime.Local().Format(time.RFC3339), f.JobID, dup)
		}
		if err != nil {
			return a.fail(err)
		}
		return exitOK
	}
	logger.Info("scheduler running", "backend", cfg.SchedulerBackendValue())
	if err := d.Run(ctx); err != nil {
		return a.fail(err)
	}
	logger.Info("scheduler stopped")
	return exitOK
}
