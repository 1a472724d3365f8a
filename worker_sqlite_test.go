package nuvom_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// TestEngineOnSQLite runs the engine's main paths on a real database: success
// with a stored result, retry then success, panic, unknown task, timeout, and a
// graceful shutdown that hands a running job back.
func TestEngineOnSQLite(t *testing.T) {
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "nuvom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var flakyCalls atomic.Int64
	okSpec := spec("ok", nuvom.TaskOptions{StoreResult: true})
	flaky := spec("flaky", nuvom.TaskOptions{Retries: 1})
	boom := spec("boom", nuvom.TaskOptions{})
	slow := spec("slow", nuvom.TaskOptions{Timeout: 5 * time.Millisecond, TimeoutPolicy: nuvom.TimeoutFail})
	reg := registry(t,
		def(okSpec, func(context.Context, []byte) ([]byte, error) { return []byte{0x2a}, nil }),
		def(flaky, func(context.Context, []byte) ([]byte, error) {
			if flakyCalls.Add(1) == 1 {
				return nil, errors.New("first try fails")
			}
			return nil, nil
		}),
		def(boom, func(context.Context, []byte) ([]byte, error) { panic("sqlite boom") }),
		def(slow, func(ctx context.Context, _ []byte) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() }),
	)
	ids := map[string]string{}
	for _, s := range []nuvom.TaskSpec{okSpec, flaky, boom, slow, spec("ghost", nuvom.TaskOptions{})} {
		ids[s.Name] = enqueue(t, b, s)
	}
	burst(t, b, reg, nuvom.WorkerOptions{Queues: []string{"default"}})
	want := map[string]nuvom.State{"ok": nuvom.StateSucceeded, "flaky": nuvom.StateSucceeded, "boom": nuvom.StateFailed,
		"slow": nuvom.StateFailed, "ghost": nuvom.StateQueued} // no worker has ghost: it waits
	for name, id := range ids {
		j := getJob(t, b, id)
		if j.State != want[name] {
			t.Errorf("%s: state %s, want %s (attempts %v, error %q)", name, j.State, want[name], outcomes(j), j.Error)
		}
	}
	if j := getJob(t, b, ids["ok"]); len(j.Result) != 1 || j.Result[0] != 0x2a {
		t.Errorf("result %x", j.Result)
	}
	if j := getJob(t, b, ids["boom"]); j.PanicStack == "" || j.Attempts[0].Outcome != nuvom.OutcomePanicked {
		t.Errorf("panic not recorded: %+v", j.Attempts)
	}
	if j := getJob(t, b, ids["slow"]); j.Attempts[0].Outcome != nuvom.OutcomeTimedOut {
		t.Errorf("timeout not recorded: %+v", j.Attempts)
	}

	// Graceful shutdown hands a running job back with its attempt count unchanged.
	started := make(chan struct{})
	long := spec("long", nuvom.TaskOptions{})
	reg2 := registry(t, def(long, func(ctx context.Context, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}))
	id := enqueue(t, b, long)
	w := newWorker(t, b, reg2, nuvom.WorkerOptions{Grace: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	<-started
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if j := getJob(t, b, id); j.State != nuvom.StateQueued || j.Attempt != 0 || len(j.Attempts) != 0 {
		t.Fatalf("handed-back job: state %s attempt %d attempts %v", j.State, j.Attempt, outcomes(j))
	}
}
