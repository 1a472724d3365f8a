package remote_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/remote"
	"github.com/nuvom/nuvom/runtime/memory"
)

// failingPurges deletes two jobs, then fails, in every purge.
type failingPurges struct{ backend.Backend }

var errDiskFull = errors.New("disk full")

func (failingPurges) Purge(context.Context, backend.PurgeFilter) (int, error) {
	return 2, errDiskFull
}

func (failingPurges) PurgeEnded(context.Context, time.Time, backend.PurgeFilter) (int, error) {
	return 2, errDiskFull
}

func (failingPurges) TrimEnded(context.Context, int, backend.PurgeFilter) (int, error) {
	return 2, errDiskFull
}

// TestPurgeFailureKeepsTheCount: a purge that fails part-way reports, over
// the wire too, how many jobs it deleted before the error.
func TestPurgeFailureKeepsTheCount(t *testing.T) {
	c := pair(t, failingPurges{memory.New()})
	ctx := context.Background()
	for name, call := range map[string]func() (int, error){
		"Purge":      func() (int, error) { return c.Purge(ctx, backend.PurgeFilter{}) },
		"PurgeEnded": func() (int, error) { return c.PurgeEnded(ctx, time.Now(), backend.PurgeFilter{}) },
		"TrimEnded":  func() (int, error) { return c.TrimEnded(ctx, 5, backend.PurgeFilter{}) },
	} {
		n, err := call()
		if n != 2 || err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%s = %d, %v; want 2 and the server's error", name, n, err)
		}
	}
	if n, err := c.TrimEnded(ctx, -1, backend.PurgeFilter{}); n != 0 || !errors.Is(err, backend.ErrNegativeKeep) {
		t.Errorf("TrimEnded(-1) = %d, %v; want ErrNegativeKeep", n, err)
	}
}

// TestTrimEndedOnAnOldServer: a server that predates TrimEnded answers that
// the method is unknown; the client says to rebuild it.
func TestTrimEndedOnAnOldServer(t *testing.T) {
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	go func() {
		_, _ = io.WriteString(respW, `{"protocol":1,"ext":true}`+"\n")
		buf := make([]byte, 4096)
		if _, err := reqR.Read(buf); err != nil {
			return
		}
		_, _ = io.WriteString(respW, `{"e":{"msg":"remote: unknown method \"TrimEnded\""}}`+"\n")
	}()
	c, err := remote.NewClient(respR, reqW, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.TrimEnded(context.Background(), 10, backend.PurgeFilter{}); n != 0 || err == nil || !strings.Contains(err.Error(), "cannot trim by count") {
		t.Errorf("TrimEnded through an old server = %d, %v; want an error saying to rebuild it", n, err)
	}
}
