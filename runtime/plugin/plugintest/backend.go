package plugintest

import (
	"context"
	"testing"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
	"github.com/nuvom/nuvom/runtime/plugin"
)

// testBackend runs the backend conformance suite (runtime/backend/backendtest)
// on the backend the plugin provides, opened with the sample settings and a
// fresh module root (a temporary directory) for each case: paths in the
// sample should be relative to BackendEnv.Root.
func testBackend(t *testing.T, reg plugin.Registration, c *config) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		s := load(t, reg, c)
		bs := s.Backends()
		if len(bs) != 1 {
			t.Fatalf("the plugin provides %d backends, want 1", len(bs))
		}
		b, err := bs[0].Open(context.Background(), plugin.BackendEnv{Root: t.TempDir(), Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("open the plugin's backend with the sample settings: %v", err)
		}
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("close the plugin's backend: %v", err)
			}
		})
		return b
	})
}
