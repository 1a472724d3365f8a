package file

import (
	"io"
	"log/slog"
	"testing"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// openTest opens a backend on a fresh folder that t closes at cleanup.
func openTest(t testing.TB, opts ...Option) *Backend {
	t.Helper()
	opts = append([]Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...)
	b, err := Open(t.TempDir()+"/queue", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return openTest(t) })
}

func TestAdminConformance(t *testing.T) {
	backendtest.RunAdmin(t, func(t *testing.T) backend.Backend { return openTest(t) })
}
