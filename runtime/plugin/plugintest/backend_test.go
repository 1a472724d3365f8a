package plugintest_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/memory"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugin/plugintest"
)

// Settings are the test backend plugin's settings.
type Settings struct {
	// Dir is the queue's folder, relative to the module root.
	Dir string `toml:"dir"`
}

type nop struct{}

func (nop) Start(context.Context, plugin.Host) error { return nil }
func (nop) Stop(context.Context) error               { return nil }

// TestBackendPlugin: the kit runs the backend conformance suite on the
// backend a plugin provides, opened with the sample settings.
func TestBackendPlugin(t *testing.T) {
	var opened atomic.Int64
	reg := plugin.Registration{
		Name: "store", APIVersion: plugin.APIVersion, Provides: plugin.ProvidesBackend,
		NewSettings: func() any { return &Settings{Dir: "default"} },
		New:         func(any) (plugin.Plugin, error) { return nop{}, nil },
		Backend: func(_ context.Context, s any, env plugin.BackendEnv) (nuvom.Backend, error) {
			if s.(*Settings).Dir != "q" {
				t.Errorf("the backend was opened with dir %q, not the sample's", s.(*Settings).Dir)
			}
			opened.Add(1)
			if env.Root == "" {
				t.Error("the backend was opened without a module root")
			}
			return memory.New(), nil // the kit's plumbing is under test, not a store
		},
	}
	plugintest.Run(t, reg, plugintest.Sample(`dir = "q"`))
	if opened.Load() < 10 {
		t.Errorf("the backend was opened %d times: the conformance suite did not run on it", opened.Load())
	}
}
