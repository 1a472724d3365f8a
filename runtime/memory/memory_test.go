package memory_test

import (
	"testing"

	"github.com/nuvom/nuvom/runtime"
	"github.com/nuvom/nuvom/runtime/backendtest"
	"github.com/nuvom/nuvom/runtime/memory"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) runtime.Backend {
		b := memory.New()
		t.Cleanup(func() { b.Close() })
		return b
	})
}
