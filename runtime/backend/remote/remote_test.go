package remote_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
	"github.com/nuvom/nuvom/runtime/backend/remote"
	"github.com/nuvom/nuvom/runtime/memory"
)

// pair serves b over in-memory pipes and returns the client; closing the
// client waits for Serve to return and checks that it ended cleanly.
func pair(t *testing.T, b backend.Backend) *remote.Client {
	t.Helper()
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		err := remote.Serve(context.Background(), b, reqR, respW)
		respW.Close()
		served <- err
	}()
	c, err := remote.NewClient(respR, reqW, func() error {
		select {
		case err := <-served:
			return err
		case <-time.After(time.Minute):
			return errors.New("Serve did not return after the client closed")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConformance runs the backend conformance suite through the protocol:
// every call, argument, result and error of the contract survives the trip.
func TestConformance(t *testing.T) {
	if raceEnabled {
		t.Skip("minutes under the race detector; run without it (TestConcurrentCalls covers the locking)")
	}
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		b := memory.New()
		c := pair(t, b)
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
			b.Close()
		})
		return c
	})
}

// TestBrokenServer: a server that goes away fails the call in progress and
// every later one, instead of hanging.
func TestBrokenServer(t *testing.T) {
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	go func() {
		_, _ = io.WriteString(respW, `{"protocol":1}`+"\n")
		buf := make([]byte, 1)
		_, _ = reqR.Read(buf) // the first request arrives; the server dies
		respW.Close()
		reqR.Close()
	}()
	c, err := remote.NewClient(respR, reqW, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get(context.Background(), "x"); err == nil {
		t.Fatal("Get through a dead server succeeded")
	}
	if _, err := c.List(context.Background(), backend.ListFilter{}); err == nil {
		t.Fatal("List after the server died succeeded")
	}
}

// TestNoHello: a server that exits before its hello (its backend did not
// open) is an error at once, and another protocol version is refused.
func TestNoHello(t *testing.T) {
	for _, c := range []struct{ out, want string }{
		{"", "no hello"},
		{`{"protocol":99}` + "\n", "protocol 99"},
	} {
		reqR, reqW := io.Pipe()
		go io.Copy(io.Discard, reqR)
		_, err := remote.NewClient(strings.NewReader(c.out), reqW, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("server output %q: %v, want an error containing %q", c.out, err, c.want)
		}
	}
}

// TestConcurrentCalls: goroutines sharing one client each get their own
// answers (the client makes one call at a time on the stream).
func TestConcurrentCalls(t *testing.T) {
	b := memory.New()
	defer b.Close()
	c := pair(t, b)
	defer c.Close()
	ctx := context.Background()
	now := time.Now()
	const n = 8
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("01JD3Z5K8Q9W6V2N4M7R1T0X%02d", i)
		j := &backend.Job{ID: ids[i], Task: fmt.Sprintf("task%d", i), Queue: "q", State: backend.StateQueued,
			MaxAttempts: 1, RunAt: now, CreatedAt: now}
		if _, err := c.Enqueue(ctx, []*backend.Job{j}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 50; k++ {
				j, err := c.Get(ctx, ids[i])
				if err != nil || j.Task != fmt.Sprintf("task%d", i) {
					t.Errorf("Get %s: %v, %v", ids[i], j, err)
					return
				}
				if _, err := c.Get(ctx, "nope"); !errors.Is(err, backend.ErrNotFound) {
					t.Errorf("Get of an unknown id: %v, want ErrNotFound", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
