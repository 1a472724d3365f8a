package workercmd

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/backend/remote"
	"github.com/nuvom/nuvom/runtime/file"
	"github.com/nuvom/nuvom/runtime/plugin"
)

// vaultSettings are the settings of the test's backend plugin.
type vaultSettings struct {
	Dir string `toml:"dir"`
}

type nopPlugin struct{}

func (nopPlugin) Start(context.Context, plugin.Host) error { return nil }
func (nopPlugin) Stop(context.Context) error               { return nil }

// vault is a plugin that provides a backend named vault: a file queue in
// <module root>/<dir>.
func vault(name string) plugin.Registration {
	return plugin.Registration{
		Name: name, APIVersion: plugin.APIVersion, Provides: plugin.ProvidesBackend,
		NewSettings: func() any { return &vaultSettings{Dir: "vault"} },
		New:         func(any) (plugin.Plugin, error) { return nopPlugin{}, nil },
		Backend: func(_ context.Context, s any, env plugin.BackendEnv) (nuvom.Backend, error) {
			return file.Open(filepath.Join(env.Root, s.(*vaultSettings).Dir), file.WithLogger(env.Logger))
		},
	}
}

// session runs the hidden serve-backend subcommand on pipes and returns a
// client over it; closing the client waits for the subcommand's exit code.
func session(t *testing.T, pl *Plugins) (*nuvom.Client, *syncBuffer) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var errOut syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- serveBackend(context.Background(), "worker", pl, nil, inR, outW, &errOut)
		outW.Close()
		inR.Close()
	}()
	rc, err := remote.NewClient(outR, inW, func() error {
		if c := <-code; c != ExitOK {
			t.Errorf("serve-backend exited %d: %s", c, errOut.String())
		}
		return nil
	})
	if err != nil {
		c := <-code
		t.Fatalf("no session (exit %d): %v: %s", c, err, errOut.String())
	}
	return nuvom.NewClient(rc, nuvom.OwnBackend()), &errOut
}

// TestPluginBackend: NUVOM_BACKEND=vault selects the backend a plugin
// provides, configured by its settings: a job enqueued through the hidden
// serve-backend subcommand (as the nuvom CLI does) is run by the worker and
// then read back through the subcommand, and it really lives in the plugin's
// folder.
func TestPluginBackend(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	t.Setenv("NUVOM_BACKEND", "vault")
	pl := &Plugins{
		File:          "[[plugin]]\nimport = \"example.com/vault\"\n[plugin.settings]\ndir = \"data/vault\"\n",
		Registrations: []plugin.Registration{vault("vault")},
	}
	ctx := context.Background()
	c, _ := session(t, pl)
	res, err := c.Enqueue(ctx, spec, []byte{0x90})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	var out, errOut syncBuffer
	if code := runWith(ctx, nil, nil, "worker", pingTask(okInvoke), pl, []string{"--burst", "--no-scheduler"}, &out, &errOut); code != ExitOK {
		t.Fatalf("worker exited %d: %s", code, errOut.String())
	}

	c, _ = session(t, pl)
	defer c.Close()
	j, err := c.Get(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != nuvom.StateSucceeded || len(j.Result) != 1 || j.Result[0] != 0xc3 {
		t.Errorf("job through the plugin's backend: %s result %x, want succeeded c3", j.State, j.Result)
	}
	direct, err := file.Open(filepath.Join(root, "data", "vault"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if j, err := direct.Get(ctx, res.ID); err != nil || j.State != nuvom.StateSucceeded {
		t.Errorf("the job in the plugin's folder: %v, %v", j, err)
	}
}

// TestPluginBackendErrors: an unknown backend name lists the known ones,
// the plugins' included; a plugin backend named like a built-in one is refused.
func TestPluginBackendErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	pl := &Plugins{File: "[[plugin]]\nimport = \"example.com/vault\"\n", Registrations: []plugin.Registration{vault("vault")}}
	t.Setenv("NUVOM_BACKEND", "vualt")
	var errOut syncBuffer
	code := serveBackend(context.Background(), "worker", pl, nil, strings.NewReader(""), io.Discard, &errOut)
	if code != ExitFailure || !strings.Contains(errOut.String(), `unknown backend "vualt"`) ||
		!strings.Contains(errOut.String(), "the known backends are file, memory, redis, sqlite, vault") {
		t.Errorf("unknown backend: exit %d, %s", code, errOut.String())
	}
	code = runWith(context.Background(), nil, nil, "worker", pingTask(okInvoke), pl, []string{"--burst"}, io.Discard, &errOut)
	if code != ExitFailure {
		t.Errorf("worker with an unknown backend exited %d, want %d", code, ExitFailure)
	}

	pl = &Plugins{File: "[[plugin]]\nimport = \"example.com/sqlite\"\n", Registrations: []plugin.Registration{vault("sqlite")}}
	errOut = syncBuffer{}
	code = serveBackend(context.Background(), "worker", pl, nil, strings.NewReader(""), io.Discard, &errOut)
	if code != ExitUsage || !strings.Contains(errOut.String(), "plugin sqlite provides a backend: two backends are called sqlite") {
		t.Errorf("plugin backend named sqlite: exit %d, %s", code, errOut.String())
	}
}
