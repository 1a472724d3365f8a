package plugin

import (
	"context"
	"log/slog"

	"github.com/nuvom/nuvom"
)

// BackendEnv is what a plugin's backend opener gets besides its settings.
type BackendEnv struct {
	// Root is the module root (the directory of go.mod): relative paths in
	// settings are usually taken relative to it, and <Root>/.nuvom is where
	// Nuvom keeps its own files.
	Root string
	// Logger receives the backend's own lines (a damaged record set aside, say).
	Logger *slog.Logger
}

// OpenBackend opens the storage backend a plugin provides (Registration.Backend)
// from the plugin's decoded settings (the value NewSettings returned, filled
// in; nil when NewSettings is nil). The caller closes the backend.
//
// NUVOM_BACKEND=<the plugin's name> selects it. The worker opens it before it
// starts any plugin and closes it after stopping them, so it must not rely on
// the plugin's Start; the nuvom CLI opens it in a worker process that starts
// no plugin at all, to inspect the jobs (nuvom history, inspect, enqueue...).
// The backend must pass the conformance suite (runtime/backend/backendtest),
// which the plugin kit runs on it.
type OpenBackend func(ctx context.Context, settings any, env BackendEnv) (nuvom.Backend, error)
