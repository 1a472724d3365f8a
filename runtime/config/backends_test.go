package config

import (
	"context"
	"strings"
	"testing"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/memory"
)

// TestBackendRegistry: NUVOM_BACKEND is looked up in the registry: the
// built-in names open their backends, a registered name (as a plugin's)
// opens through its opener with the configuration, and an unknown name is an
// error naming it, its source and every known backend.
func TestBackendRegistry(t *testing.T) {
	_, sub := moduleDir(t)
	ctx := context.Background()
	if got := strings.Join(BuiltinBackends().Names(), ","); got != "file,memory,redis,sqlite" {
		t.Errorf("built-in backends %s", got)
	}
	c, err := Load(sub, env(map[string]string{"NUVOM_BACKEND": "Vault"}))
	if err != nil {
		t.Fatalf("a plugin backend's name is refused at load: %v", err)
	}
	_, err = c.OpenBackend(ctx)
	if err == nil || !strings.Contains(err.Error(), `unknown backend "vault" (env NUVOM_BACKEND)`) ||
		!strings.Contains(err.Error(), "the known backends are file, memory, redis, sqlite") {
		t.Fatalf("unknown backend: %v", err)
	}

	var root string
	reg := BuiltinBackends()
	if err := reg.Register("vault", func(_ context.Context, c Config) (nuvom.Backend, error) {
		root = c.Root
		return memory.New(), nil
	}); err != nil {
		t.Fatal(err)
	}
	c.Backends = reg
	b, err := c.OpenBackend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if root != c.Root || root == "" {
		t.Errorf("the opener got root %q, want %q", root, c.Root)
	}
	if got := c.SchedulerBackendValue(); got != "sqlite" {
		t.Errorf("a plugin backend's schedules go to %s, want sqlite", got)
	}
	if e := c.schedulerEntry(); e.Value != "sqlite" || !strings.Contains(e.Source, "plugin") {
		t.Errorf("nuvom config shows the schedule store as %+v", e)
	}

	for _, name := range []string{"sqlite", "vault"} {
		if err := reg.Register(name, func(context.Context, Config) (nuvom.Backend, error) { return nil, nil }); err == nil ||
			!strings.Contains(err.Error(), "two backends are called "+name) {
			t.Errorf("registering %s twice: %v", name, err)
		}
	}
	if err := reg.Register("My Store", func(context.Context, Config) (nuvom.Backend, error) { return nil, nil }); err == nil {
		t.Error("a name with a space was registered")
	}
	if err := reg.Register("nilstore", func(context.Context, Config) (nuvom.Backend, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	c.Backend = Setting[string]{"nilstore", "test"}
	if _, err := c.OpenBackend(ctx); err == nil {
		t.Error("an opener that returned no backend was accepted")
	}
}
