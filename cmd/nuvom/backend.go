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

// config loads the effective settings for the working directory.
func (a *app) config() (config.Config, error) {
	return config.Load(a.wd, a.getenv)
}

// moduleRoot is the nearest folder upward holding a go.mod; it is an error to
// run module commands outside a module.
func (a *app) moduleRoot() (string, error) {
	cfg, err := a.config()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(cfg.Root, "go.mod")); err != nil {
		return "", fmt.Errorf("no go.mod in %s or any folder above it: run nuvom inside a Go module", a.wd)
	}
	return cfg.Root, nil
}

// client opens the configured backend. The caller closes the client.
func (a *app) client(ctx context.Context) (*nuvom.Client, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	return cfg.OpenClient(ctx)
}

// existingClient opens the backend only when its storage already exists, so
// read-only commands never create an empty database as a side effect. When it
// does not exist, the client is nil and missing names the path looked at.
func (a *app) existingClient(ctx context.Context) (c *nuvom.Client, missing string, err error) {
	cfg, err := a.config()
	if err != nil {
		return nil, "", err
	}
	path := ""
	switch cfg.Backend.Value {
	case "sqlite", "":
		path = cfg.DB.Value
	case "file":
		path = cfg.QueueDir.Value
	}
	if path != "" {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, path, nil
		}
	}
	c, err = cfg.OpenClient(ctx)
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
