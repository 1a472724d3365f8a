package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/runtime/config"
)

// loadConfig loads the effective settings for the working directory.
func (a *app) loadConfig() (config.Config, error) {
	return config.Load(a.wd, a.getenv)
}

// config loads the settings for a command that opens the store. Outside a Go
// module the default store (.nuvom/ under the module root) does not exist, so
// a default location is an error rather than an empty queue; a store named by
// NUVOM_DB or NUVOM_QUEUE_DIR works anywhere.
func (a *app) config() (config.Config, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return config.Config{}, err
	}
	if _, err := os.Stat(filepath.Join(cfg.Root, "go.mod")); err == nil {
		return cfg, nil
	}
	if !config.IsBuiltinBackend(cfg.Backend.Value) {
		return cfg, nil // reached through the module's worker, whose absence is the error to report
	}
	for _, backend := range []string{cfg.Backend.Value, cfg.SchedulerBackendValue()} {
		switch {
		case (backend == "sqlite" || backend == "") && cfg.DB.Source == config.SourceDefault:
			return config.Config{}, fmt.Errorf("not in a Go module (no go.mod in %s or any folder above it), so there is no "+
				"default database (<module root>/.nuvom/nuvom.db): run nuvom inside your module, or set NUVOM_DB", a.wd)
		case backend == "file" && cfg.QueueDir.Source == config.SourceDefault:
			return config.Config{}, fmt.Errorf("not in a Go module (no go.mod in %s or any folder above it), so there is no "+
				"default queue folder (<module root>/.nuvom/queue): run nuvom inside your module, or set NUVOM_QUEUE_DIR", a.wd)
		}
	}
	return cfg, nil
}

// moduleRoot is the nearest folder upward holding a go.mod; it is an error to
// run module commands outside a module.
func (a *app) moduleRoot() (string, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(cfg.Root, "go.mod")); err != nil {
		return "", fmt.Errorf("no go.mod in %s or any folder above it: run nuvom inside a Go module", a.wd)
	}
	return cfg.Root, nil
}

// jobStore checks that the configured backend can be shared between
// processes: memory jobs live and die with one process.
func jobStore(cfg config.Config) error {
	if cfg.Backend.Value == "memory" {
		return fmt.Errorf("NUVOM_BACKEND=memory (%s) keeps jobs inside one process: a job nuvom enqueued would vanish when it "+
			"exits, and nuvom cannot see a worker's jobs; use sqlite (the default) or file", cfg.Backend.Source)
	}
	return nil
}

// client opens the configured backend. The caller closes the client.
func (a *app) client(ctx context.Context) (*nuvom.Client, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	if err := jobStore(cfg); err != nil {
		return nil, err
	}
	b, err := a.openBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return cfg.ClientFor(b), nil
}

// existingClient opens the backend for reading, only when its storage already
// exists, so read-only commands never create an empty database as a side
// effect and work on a store they cannot write. When it does not exist, the
// client is nil and missing names the path looked at. A zero-byte database is
// an error: it holds no queue, and reading it as an empty one would hide that.
func (a *app) existingClient(ctx context.Context) (c *nuvom.Client, missing string, err error) {
	cfg, err := a.config()
	if err != nil {
		return nil, "", err
	}
	if err := jobStore(cfg); err != nil {
		return nil, "", err
	}
	if cfg.Backend.Value != "" && !config.IsBuiltinBackend(cfg.Backend.Value) {
		b, err := a.openBackend(ctx, cfg) // a plugin's: the worker opens it
		if err != nil {
			return nil, "", err
		}
		return cfg.ClientFor(b), "", nil
	}
	path := ""
	switch cfg.Backend.Value {
	case "sqlite", "":
		path = cfg.DB.Value
	case "file":
		path = cfg.QueueDir.Value
	}
	if path != "" {
		fi, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, path, nil
		}
		if err == nil && path == cfg.DB.Value && fi.Mode().IsRegular() && fi.Size() == 0 {
			if wal, err := os.Stat(path + "-wal"); err != nil || wal.Size() == 0 {
				return nil, "", fmt.Errorf("the database %s is empty (0 bytes): it holds no queue (was it truncated, or "+
					"created by hand?); restore it, remove it to start afresh, or point NUVOM_DB at your database", path)
			}
		}
	}
	c, err = cfg.OpenReadOnlyClient(ctx)
	return c, "", err
}

// noJobs says there are no jobs, and where nothing is stored yet when that is why.
func (a *app) noJobs(missing string) {
	if missing != "" {
		fmt.Fprintf(a.stdout, "no jobs (nothing stored yet at %s)\n", missing)
		return
	}
	fmt.Fprintln(a.stdout, "no jobs")
}

// pendingBySignatureChange counts, for each task whose signature changed, the
// jobs still waiting to run; errors and a missing database count as none.
func (a *app) pendingBySignatureChange(changes []manifest.Change) map[string]int {
	out := map[string]int{}
	var tasks []string
	for _, c := range changes {
		if c.SignatureChanged {
			tasks = append(tasks, c.Task)
		}
	}
	if len(tasks) == 0 {
		return out
	}
	ctx := context.Background()
	c, _, err := a.existingClient(ctx)
	if err != nil || c == nil {
		return out
	}
	defer c.Close()
	for _, t := range tasks {
		jobs, err := c.Inspector().List(ctx, nuvom.ListFilter{Task: t, Limit: 1000,
			States: []nuvom.State{nuvom.StateQueued, nuvom.StateScheduled, nuvom.StateRetrying}})
		if err == nil {
			out[t] = len(jobs)
		}
	}
	return out
}
