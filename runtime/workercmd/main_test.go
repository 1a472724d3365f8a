package workercmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
)

// Environment of the test binary run as a worker process (see TestMain).
const (
	childEnv       = "WORKERCMD_TEST_CHILD"  // "1": run as a worker
	childDirEnv    = "WORKERCMD_TEST_DIR"    // where the slow task marks its start and waits for "release"
	childWindowEnv = "WORKERCMD_TEST_WINDOW" // the signal window (a Go duration)
)

// slowSpec is the task the worker process runs: it creates <dir>/started and
// returns once <dir>/release exists, ignoring its context.
var slowSpec = nuvom.TaskSpec{Name: "slow", Signature: "s1", Options: nuvom.TaskOptions{Queue: "default"}}

// TestMain runs the test binary as a worker process when childEnv is set, so
// tests can stop a real process with real signals.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		window, err := time.ParseDuration(os.Getenv(childWindowEnv))
		if err != nil {
			window = time.Second
		}
		dir := os.Getenv(childDirEnv)
		slow := func(context.Context, []byte) ([]byte, error) {
			_ = os.WriteFile(filepath.Join(dir, "started"), nil, 0o644)
			for {
				if _, err := os.Stat(filepath.Join(dir, "release")); err == nil {
					return nil, nil
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		os.Exit(mainWith([]nuvom.TaskDef{{TaskSpec: slowSpec, Invoke: slow}}, nil, os.Args[1:], "worker", window))
	}
	os.Exit(m.Run())
}

// lockedBuffer is a bytes.Buffer safe for a writer and a polling reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
