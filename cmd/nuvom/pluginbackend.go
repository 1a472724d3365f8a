package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/backend/remote"
	"github.com/nuvom/nuvom/runtime/config"
	"github.com/nuvom/nuvom/runtime/workercmd"
)

// openBackend opens the configured backend: a built-in one directly; any
// other, which a plugin of the module may provide, through the module's
// worker binary (nuvom imports no user code): it builds the worker as
// runworker does and runs it with the hidden serve-backend subcommand, whose
// standard input and output carry the storage calls (runtime/backend/remote).
// Closing the backend ends that process.
func (a *app) openBackend(ctx context.Context, cfg config.Config) (nuvom.Backend, error) {
	if cfg.Backend.Value == "" || config.IsBuiltinBackend(cfg.Backend.Value) {
		return cfg.OpenBackend(ctx)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	intro := fmt.Sprintf("NUVOM_BACKEND=%q (%s) is not a built-in backend (%s); nuvom reaches the others, which plugins "+
		"provide, through the module's worker", cfg.Backend.Value, cfg.Backend.Source, strings.Join(config.BuiltinBackends().Names(), ", "))
	bin, err := a.buildWorker(false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", intro, err)
	}
	cmd := exec.Command(bin, workercmd.ServeBackendArg)
	cmd.Args[0] = "worker" // its messages start "worker: "
	cmd.Dir = a.wd
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", intro, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", intro, err)
	}
	errOut := &lockedBuffer{}
	cmd.Stderr = errOut
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", intro, bin, err)
	}
	waited := make(chan error, 1)
	b, err := remote.NewClient(stdout, stdin, func() error {
		// Its input closed, the server ends its session; one that hangs in
		// a call is killed after serverExitWait, which fails the call.
		go func() { waited <- cmd.Wait() }()
		var err error
		timer := time.NewTimer(serverExitWait)
		defer timer.Stop()
		select {
		case err = <-waited:
		case <-timer.C:
			fmt.Fprintf(a.stderr, "nuvom: the worker serving backend %s did not exit %s after its session ended; killing it\n",
				cfg.Backend.Value, serverExitWait)
			_ = cmd.Process.Kill()
			err = <-waited
		}
		if s := errOut.String(); s != "" {
			fmt.Fprint(a.stderr, s) // the backend's own lines (records set aside, say)
		}
		if err != nil {
			return fmt.Errorf("the worker serving backend %s: %w", cfg.Backend.Value, err)
		}
		return nil
	})
	if err != nil {
		_ = cmd.Wait()
		msg := strings.TrimSpace(errOut.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("%s, which says: %s", intro, strings.TrimPrefix(msg, "worker: "))
	}
	return b, nil
}

// serverExitWait is how long closing a plugin's backend waits for the
// worker serving it to exit before killing it.
const serverExitWait = 10 * time.Second

// lockedBuffer is a bytes.Buffer that the process's stderr copier and nuvom share.
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
