package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/file"
	"github.com/nuvom/nuvom/runtime/memory"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// BackendOpener opens a backend for the configuration c. The caller closes it.
type BackendOpener func(ctx context.Context, c Config) (nuvom.Backend, error)

// Backends is a registry of storage backends by name, from which
// NUVOM_BACKEND picks one. The built-in backends (file, memory, redis,
// sqlite) are registered in it like the backends that plugins provide: the
// worker binary (runtime/workercmd) registers those of the plugins listed in
// .nuvom_plugins.toml.
type Backends struct {
	openers map[string]BackendOpener
}

// backendNameRE is what a backend name looks like (NUVOM_BACKEND is matched
// lower-cased).
var backendNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// NewBackends returns an empty registry.
func NewBackends() *Backends { return &Backends{openers: map[string]BackendOpener{}} }

// BuiltinBackends returns a registry holding the built-in backends: file,
// memory, redis and sqlite.
func BuiltinBackends() *Backends {
	r := NewBackends()
	r.openers["sqlite"] = openSQLite
	r.openers["file"] = openFile
	r.openers["memory"] = func(context.Context, Config) (nuvom.Backend, error) { return memory.New(), nil }
	r.openers["redis"] = func(_ context.Context, c Config) (nuvom.Backend, error) { return c.openRedisBackend() }
	return r
}

// IsBuiltinBackend reports whether name is a built-in backend.
func IsBuiltinBackend(name string) bool {
	_, ok := BuiltinBackends().Lookup(name)
	return ok
}

// Register adds the backend name. A name that is taken, or that is not a
// lower-case word ([a-z][a-z0-9_-]*), is an error.
func (r *Backends) Register(name string, open BackendOpener) error {
	switch {
	case !backendNameRE.MatchString(name):
		return fmt.Errorf("backend name %q: want a lower-case word such as mystore ([a-z][a-z0-9_-]*)", name)
	case open == nil:
		return fmt.Errorf("backend %s: no opener", name)
	}
	if _, ok := r.openers[name]; ok {
		return fmt.Errorf("two backends are called %s", name)
	}
	r.openers[name] = open
	return nil
}

// Lookup returns the opener of the backend name.
func (r *Backends) Lookup(name string) (BackendOpener, bool) {
	open, ok := r.openers[name]
	return open, ok
}

// Names returns the registered names, sorted.
func (r *Backends) Names() []string {
	out := make([]string, 0, len(r.openers))
	for n := range r.openers {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// registry is the configuration's backend registry: Backends, or the built-in ones.
func (c Config) registry() *Backends {
	if c.Backends != nil {
		return c.Backends
	}
	return BuiltinBackends()
}

// OpenBackend opens the configured backend (NUVOM_BACKEND, looked up in
// Backends), creating its directory if needed. An unknown name is an error
// listing the known ones. The caller closes it.
func (c Config) OpenBackend(ctx context.Context) (nuvom.Backend, error) {
	name := c.Backend.Value
	if name == "" {
		name = "sqlite"
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open %s backend: %w", name, err)
	}
	reg := c.registry()
	open, ok := reg.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("open backend: unknown backend %q (%s): the known backends are %s; "+
			"a plugin listed in .nuvom_plugins.toml can provide others", name, c.Backend.Source, strings.Join(reg.Names(), ", "))
	}
	b, err := open(ctx, c)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("open %s backend: its opener returned no backend", name)
	}
	return b, nil
}

func openFile(_ context.Context, c Config) (nuvom.Backend, error) {
	if err := os.MkdirAll(c.QueueDir.Value, 0o755); err != nil {
		return nil, fmt.Errorf("open file backend: create %s: %w", c.QueueDir.Value, err)
	}
	var fopts []file.Option
	if c.Logger != nil {
		fopts = append(fopts, file.WithLogger(c.Logger))
	}
	b, err := file.Open(c.QueueDir.Value, fopts...)
	if err != nil {
		return nil, fmt.Errorf("open file backend at %s: %w", c.QueueDir.Value, err)
	}
	return b, nil
}

func openSQLite(_ context.Context, c Config) (nuvom.Backend, error) {
	if err := os.MkdirAll(filepath.Dir(c.DB.Value), 0o755); err != nil {
		return nil, fmt.Errorf("open sqlite backend: create %s: %w", filepath.Dir(c.DB.Value), err)
	}
	opts := []sqlite.Option{sqlite.WithSynchronous(c.SQLiteSync.Value)}
	if c.Logger != nil {
		opts = append(opts, sqlite.WithLogger(c.Logger))
	}
	b, err := sqlite.Open(c.DB.Value, opts...)
	if err != nil {
		return nil, fmt.Errorf("open sqlite backend at %s: %w", c.DB.Value, err)
	}
	return b, nil
}

// ClientFor returns a client over b, an open backend of this configuration
// (one a plugin provides, say), that schedules through the configured
// schedule store as OpenClient's does; closing the client closes b.
func (c Config) ClientFor(b nuvom.Backend, opts ...nuvom.ClientOption) *nuvom.Client {
	return nuvom.NewClient(b, append([]nuvom.ClientOption{nuvom.WithScheduler(c.lazyScheduler()), nuvom.OwnBackend()}, opts...)...)
}
