package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/dashboard"
	"github.com/nuvom/nuvom/runtime/redis"
)

// DashboardTokenEnv, when set, is the dashboard's token unless --token is given.
const DashboardTokenEnv = "NUVOM_DASHBOARD_TOKEN"

func (a *app) cmdDashboard(args []string) int {
	fs := a.flags("dashboard", "",
		"Serves the web dashboard for the module's store: overview, queues (pause/resume), jobs\n"+
			"(search, retry, cancel, delete, bulk), tasks, schedules, workers and quarantine.\n"+
			"It binds 127.0.0.1 by default; any other address needs --token or --basic-auth.\n"+
			"It opens no browser by itself.",
		"nuvom dashboard --addr 127.0.0.1:8181")
	addr := fs.String("addr", "127.0.0.1:8181", "address to listen on")
	token := fs.String("token", "", "require this token (open the page once with ?token=T, or send Authorization: Bearer T); default $"+DashboardTokenEnv)
	basic := fs.String("basic-auth", "", "require HTTP basic authentication user:pass")
	readOnly := fs.Bool("read-only", false, "hide and refuse every action")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *token == "" {
		*token = a.getenv(DashboardTokenEnv)
	}
	if *basic != "" && !strings.Contains(*basic, ":") {
		return a.usageErr("dashboard: --basic-auth must be user:pass")
	}
	opts := dashboard.Options{ReadOnly: *readOnly, Token: *token, BasicAuth: *basic}
	if err := dashboard.CheckBind(*addr, opts); err != nil {
		return a.fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
	}()
	if *readOnly {
		c, missing, err := a.existingClient(ctx)
		if err != nil {
			return a.fail(err)
		}
		if c == nil {
			return a.fail(fmt.Errorf("nothing stored yet at %s", missing))
		}
		closers = append(closers, c.Close)
		opts.Backend = c.Backend()
	} else {
		c, err := a.client(ctx)
		if err != nil {
			return a.fail(err)
		}
		closers = append(closers, c.Close)
		opts.Backend = c.Backend()
	}
	if m, err := a.loadManifest(); err == nil {
		opts.Manifest = m
	} else {
		fmt.Fprintf(a.stderr, "nuvom: dashboard: %v; task parameters will not be named\n", err)
	}
	if st, ok, err := a.scheduleStore(ctx, !*readOnly); err != nil {
		fmt.Fprintf(a.stderr, "nuvom: dashboard: schedules: %v\n", err)
	} else if ok {
		closers = append(closers, st.Close)
		opts.Schedules = st
	}
	opts.Logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return a.serveDashboard(ctx, *addr, opts)
}

// serveDashboard serves the dashboard on addr until ctx ends.
func (a *app) serveDashboard(ctx context.Context, addr string, opts dashboard.Options) int {
	h, err := dashboard.New(opts)
	if err != nil {
		return a.fail(err)
	}
	defer h.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return a.fail(fmt.Errorf("dashboard: %w", err))
	}
	if a.process && opts.Logger != nil {
		// run drops go-redis's own lines (a one-shot command's failed call
		// returns the error); a dashboard serves for days: its logger gets
		// them (failed dials, a Sentinel's new master), as a worker's does.
		redis.RouteClientLogs(opts.Logger)
		defer redis.RouteClientLogs(nil)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(a.stdout, "nuvom dashboard on %s\n", dashboard.URLFor(ln.Addr()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return exitOK
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return exitOK
		}
		return a.fail(fmt.Errorf("dashboard: %w", err))
	}
}

// admin opens the store's Admin part (worker registry, queue pauses).
func (a *app) admin(ctx context.Context, write bool) (backend.Admin, func() error, string, error) {
	if write {
		c, err := a.client(ctx)
		if err != nil {
			return nil, nil, "", err
		}
		ad, ok := backend.AdminOf(c.Backend())
		if !ok {
			c.Close()
			return nil, nil, "", errors.New("this store does not support it (use sqlite)")
		}
		return ad, c.Close, "", nil
	}
	c, missing, err := a.existingClient(ctx)
	if err != nil || c == nil {
		return nil, nil, missing, err
	}
	ad, ok := backend.AdminOf(c.Backend())
	if !ok {
		c.Close()
		return nil, nil, "", errors.New("this store does not support it (use sqlite)")
	}
	return ad, c.Close, "", nil
}

func (a *app) cmdWorkers(args []string) int {
	fs := a.flags("workers", "", "Lists the worker processes registered in the store: host, pid, version, manifest hash,\n"+
		"concurrency, queues, jobs running now, start and last heartbeat. A worker that missed 3\n"+
		"heartbeats is shown as gone.", "nuvom workers --json")
	asJSON := fs.Bool("json", false, "print the workers as JSON")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	ctx := context.Background()
	ad, closeFn, _, err := a.admin(ctx, false)
	if err != nil {
		return a.fail(err)
	}
	ws := []backend.WorkerInfo{}
	if ad != nil {
		defer closeFn()
		if ws, err = ad.Workers(ctx, time.Now()); err != nil {
			return a.fail(err)
		}
	}
	if *asJSON {
		return a.printJSON(ws)
	}
	if len(ws) == 0 {
		fmt.Fprintln(a.stdout, "no workers registered")
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOST\tPID\tVERSION\tMANIFEST\tCONCURRENCY\tQUEUES\tRUNNING\tSTARTED\tLAST HEARTBEAT\tSTATUS")
	for _, w := range ws {
		queues := "any"
		if len(w.Queues) > 0 {
			queues = strings.Join(w.Queues, ",")
		}
		status := "live"
		if w.Gone {
			status = "gone"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", w.ID, w.Host, w.PID, dash(w.Version), dash(w.ManifestHash),
			w.Concurrency, queues, w.Running, w.StartedAt.Local().Format(time.RFC3339), w.LastHeartbeat.Local().Format(time.RFC3339), status)
	}
	return a.flushTable(tw)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) cmdQueuePause(args []string) int  { return a.queuePause(args, true) }
func (a *app) cmdQueueResume(args []string) int { return a.queuePause(args, false) }

// queueNameRE is what the task directive's queue= option accepts.
var queueNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func (a *app) queuePause(args []string, pause bool) int {
	name, desc := "queue resume", "Lets workers claim from a paused queue again."
	if pause {
		name, desc = "queue pause", "Stops every worker on the store from claiming the queue's jobs (within a second);\n"+
			"the queue keeps its jobs and takes new ones. The pause is stored: it survives restarts."
	}
	fs := a.flags(name, "QUEUE", desc, "nuvom "+name+" emails")
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	if q := fs.Arg(0); !queueNameRE.MatchString(q) {
		return a.usageErr("%s: queue name %q: a queue name is non-empty and holds only letters, digits, '_', '.' and '-'", name, q)
	}
	ctx := context.Background()
	ad, closeFn, _, err := a.admin(ctx, true)
	if err != nil {
		return a.fail(err)
	}
	defer closeFn()
	q := fs.Arg(0)
	if err := ad.SetPaused(ctx, q, pause); err != nil {
		return a.fail(err)
	}
	if pause {
		fmt.Fprintf(a.stdout, "queue %s paused\n", q)
		a.warnUnknownQueue(q)
	} else {
		fmt.Fprintf(a.stdout, "queue %s resumed\n", q)
	}
	return exitOK
}

// warnUnknownQueue warns when no task of the manifest uses queue q: a
// typo pauses a queue nothing uses, while the meant one keeps running.
func (a *app) warnUnknownQueue(q string) {
	m, err := a.loadManifest()
	if err != nil {
		return // no manifest: nothing to compare with
	}
	var used []string
	for _, t := range m.Tasks {
		if t.Options.Queue == q {
			return
		}
		used = append(used, t.Options.Queue)
	}
	slices.Sort(used)
	fmt.Fprintf(a.stderr, "warning: no task in %s has queue %q (theirs: %s); only jobs enqueued with --queue %s wait for it\n",
		manifest.FileName, q, strings.Join(slices.Compact(used), ", "), q)
}

// pausedQueues lists the paused queues of the store for queue stats; errors
// and stores without pauses give none.
func pausedQueues(ctx context.Context, b backend.Backend) []string {
	ad, ok := backend.AdminOf(b)
	if !ok {
		return nil
	}
	p, err := ad.Paused(ctx)
	if err != nil {
		return nil
	}
	return p
}
