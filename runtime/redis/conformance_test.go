package redis

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// prefixes makes every test backend's keys distinct, so that the tests of
// a package share one redis-server.
var prefixes atomic.Int64

// openTest opens a backend with fresh keys on srv, closed at cleanup.
func openTest(t testing.TB, srv *redistest.Server, opts ...Option) *Backend {
	t.Helper()
	opts = append([]Option{WithPrefix(fmt.Sprintf("t%d", prefixes.Add(1)))}, opts...)
	b, err := Open(srv.URL(0), opts...)
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
	srv := redistest.Start(t)
	backendtest.Run(t, func(t *testing.T) backend.Backend { return openTest(t, srv) })
}

func TestOpenBadURL(t *testing.T) {
	if _, err := Open("http://x"); err == nil {
		t.Fatal("Open of an http URL succeeded")
	}
	_ = context.Background()
}

func TestAdminConformance(t *testing.T) {
	srv := redistest.Start(t)
	backendtest.RunAdmin(t, func(t *testing.T) backend.Backend { return openTest(t, srv) })
}
