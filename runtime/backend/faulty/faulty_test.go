package faulty_test

import (
	"testing"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
	"github.com/nuvom/nuvom/runtime/backend/faulty"
	"github.com/nuvom/nuvom/runtime/memory"
)

// The wrapper passes the Admin contract through to the backend it wraps.
func TestAdminConformance(t *testing.T) {
	backendtest.RunAdmin(t, func(t *testing.T) backend.Backend {
		m := memory.New()
		t.Cleanup(func() { m.Close() })
		return faulty.Wrap(m)
	})
}
