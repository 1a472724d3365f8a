package pluginhost

import (
	"context"
	"strings"
	"testing"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/memory"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugin/pluginconf"
)

type storeSettings struct {
	Dir string `toml:"dir"`
}

// TestBackends: a plugin that provides a backend is listed by Backends, in
// file order, and opens it with its decoded settings and the environment;
// a panicking opener is an error naming the plugin.
func TestBackends(t *testing.T) {
	var gotDir, gotRoot string
	store := reg("vault", plugin.ProvidesBackend, &fake{})
	store.NewSettings = func() any { return &storeSettings{} }
	store.Backend = func(_ context.Context, s any, env plugin.BackendEnv) (nuvom.Backend, error) {
		gotDir, gotRoot = s.(*storeSettings).Dir, env.Root
		return memory.New(), nil
	}
	bad := reg("broken", plugin.ProvidesBackend, &fake{})
	bad.Backend = func(context.Context, any, plugin.BackendEnv) (nuvom.Backend, error) { panic("boom") }
	obs := reg("obs", plugin.ProvidesObserver, &fake{})
	f, err := pluginconf.Parse(pluginconf.FileName, []byte(`[[plugin]]
import = "example.com/vault"
[plugin.settings]
dir = "${VAULT_DIR}"
[[plugin]]
import = "example.com/obs"
[[plugin]]
import = "example.com/broken"
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(f, []plugin.Registration{store, obs, bad}, func(k string) (string, bool) { return "/srv/" + k, true })
	if err != nil {
		t.Fatal(err)
	}
	bs := s.Backends()
	if len(bs) != 2 || bs[0].Name != "vault" || bs[1].Name != "broken" {
		t.Fatalf("backends %+v, want vault and broken", bs)
	}
	b, err := bs[0].Open(context.Background(), plugin.BackendEnv{Root: "/mod"})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if gotDir != "/srv/VAULT_DIR" || gotRoot != "/mod" {
		t.Errorf("opener got dir %q root %q", gotDir, gotRoot)
	}
	if _, err := bs[1].Open(context.Background(), plugin.BackendEnv{}); err == nil || !strings.Contains(err.Error(), "plugin broken: opening its backend panicked: boom") {
		t.Errorf("panicking opener: %v", err)
	}
}
