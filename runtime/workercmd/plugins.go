package workercmd

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nuvom/nuvom/internal/stopsignal"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugin/pluginconf"
	"github.com/nuvom/nuvom/runtime/plugin/pluginhost"
	"github.com/nuvom/nuvom/runtime/schedule"
)

// Plugins are the plugins compiled into a worker: the content of
// .nuvom_plugins.toml when the worker main was generated and the plugins'
// registrations, in the file's order. Settings are decoded, and ${NAME}
// references expanded, when the worker starts.
type Plugins struct {
	// File is the content of .nuvom_plugins.toml.
	File string
	// Registrations are the plugins' registration values, one per [[plugin]] table.
	Registrations []plugin.Registration
}

// Main runs a worker for tasks with the command-line arguments args (without
// the program name), handling signals, and returns the exit code.
// Messages name the program by the base name of os.Args[0].
func Main(tasks []nuvom.TaskDef, args []string) int {
	return mainWith(tasks, nil, args, progName(os.Args[0]), stopsignal.Window)
}

// MainWithPlugins is Main for a worker that runs plugins: nuvomgen generates
// a call to it when the module has a .nuvom_plugins.toml. Every plugin is
// checked before anything runs (API version, names, what it provides, its
// settings) and a problem stops the worker with a positioned message.
func MainWithPlugins(tasks []nuvom.TaskDef, plugins Plugins, args []string) int {
	return mainWith(tasks, &plugins, args, progName(os.Args[0]), stopsignal.Window)
}

// run is runWith without plugins.
func run(ctx context.Context, hard <-chan struct{}, repeated <-chan os.Signal, prog string, tasks []nuvom.TaskDef, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, hard, repeated, prog, tasks, nil, args, stdout, stderr)
}

// loadPlugins checks and decodes the plugins (nil when there are none).
func loadPlugins(pl *Plugins) (*pluginhost.Set, error) {
	if pl == nil || len(pl.Registrations) == 0 && pl.File == "" {
		return nil, nil
	}
	f, err := pluginconf.Parse(pluginconf.FileName, []byte(pl.File))
	if err != nil {
		return nil, err
	}
	return pluginhost.Load(f, pl.Registrations, os.LookupEnv)
}

// wirePlugins routes the worker's middleware and stored outcomes through the
// plugins. They are started after the worker is made (they need its id), so
// the middleware looks up what they registered at each attempt.
func wirePlugins(set *pluginhost.Set, opts *nuvom.WorkerOptions) {
	if set == nil {
		return
	}
	proxy := func(next nuvom.Handler) nuvom.Handler {
		return func(ctx context.Context, job nuvom.JobInfo) error {
			h := next
			mw := set.Middleware()
			for i := len(mw) - 1; i >= 0; i-- {
				h = mw[i](h)
			}
			return h(ctx, job)
		}
	}
	opts.Middleware = append([]nuvom.Middleware{proxy}, opts.Middleware...)
	if prev := opts.OnStored; prev != nil {
		opts.OnStored = func(job nuvom.JobInfo, o nuvom.Outcome) {
			prev(job, o)
			set.Publish(job, o)
		}
	} else {
		opts.OnStored = set.Publish
	}
}

// tickPublisher returns the scheduler's OnTick that hands each tick to the
// plugins, or nil without plugins.
func tickPublisher(set *pluginhost.Set) func(schedule.TickEvent) {
	if set == nil {
		return nil
	}
	return func(e schedule.TickEvent) {
		t := plugin.Tick{Schedule: e.ScheduleID, Task: e.Task, FireTime: e.FireTime, JobID: e.JobID, Outcome: e.Outcome}
		if e.Err != nil {
			t.Error = e.Err.Error()
		}
		set.PublishTick(t)
	}
}

// startPlugins starts the plugins for worker w and returns the function that
// stops them within grace.
func startPlugins(ctx context.Context, set *pluginhost.Set, w *nuvom.Worker, in *nuvom.Inspector, logger *slog.Logger, grace time.Duration) (func(), error) {
	if set == nil {
		return func() {}, nil
	}
	set.SetAbandoned(w.Abandoned)
	stopCtx := func() (context.Context, context.CancelFunc) {
		if grace <= 0 {
			grace = time.Second
		}
		return context.WithTimeout(context.Background(), grace)
	}
	if err := set.Start(ctx, pluginhost.Options{Logger: logger, Inspector: in, WorkerID: w.ID()}); err != nil {
		return nil, err
	}
	logger.Info("plugins started", "plugins", set.Names())
	return func() {
		sctx, cancel := stopCtx()
		defer cancel()
		if err := set.Stop(sctx); err != nil {
			logger.Warn("stop plugins", "err", err)
		}
	}, nil
}
