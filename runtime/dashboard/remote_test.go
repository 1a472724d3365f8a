package dashboard_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/remote"
	"github.com/nuvom/nuvom/runtime/dashboard"
	"github.com/nuvom/nuvom/runtime/memory"
)

// TestRemoteStoreWithoutAdminFallsBack: a store reached through another
// process whose backend has no operator tools (backend.Admin) gets the
// List-only pages, as the same store does in process; the remote client
// answers every Admin call with ErrUnsupported, and the pages failed with
// 500 before the dashboard asked once at start.
func TestRemoteStoreWithoutAdminFallsBack(t *testing.T) {
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	go func() {
		_ = remote.Serve(context.Background(), struct{ backend.Backend }{memory.New()}, reqR, respW)
		respW.Close()
	}()
	c, err := remote.NewClient(respR, reqW, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h, err := dashboard.New(dashboard.Options{Backend: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	br := newBrowser(t, h)
	for _, p := range []string{"/", "/jobs", "/queues"} {
		if code, body := br.get(p); code != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", p, code, body)
		}
	}
}
