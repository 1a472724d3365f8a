package workercmd

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/file"
)

var spec = nuvom.TaskSpec{Name: "ping", Signature: "s1", Options: nuvom.TaskOptions{Queue: "default", StoreResult: true}}

func pingTask(invoke nuvom.InvokeFunc) []nuvom.TaskDef {
	return []nuvom.TaskDef{{TaskSpec: spec, Invoke: invoke}}
}

func okInvoke(context.Context, []byte) ([]byte, error) { return []byte{0xc3}, nil }

// fileQueue points the worker at a fresh file queue and returns a client on it.
func fileQueue(t *testing.T) *nuvom.Client {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("NUVOM_BACKEND", "file")
	t.Setenv("NUVOM_QUEUE_DIR", dir)
	b, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := nuvom.NewClient(b)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestHelpAndUsageErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), nil, pingTask(okInvoke), []string{"--help"}, &out, &errOut); code != ExitOK {
		t.Fatalf("--help exit %d", code)
	}
	for _, want := range []string{"Example:", "--concurrency", "--queues", "--burst", "--grace", "--log-format", "--log-level"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
	cases := [][]string{{"--no-such-flag"}, {"--concurrency", "x"}, {"--log-format", "xml"}, {"--concurrency", "0"}, {"stray"}}
	for _, args := range cases {
		errOut.Reset()
		if code := run(context.Background(), nil, pingTask(okInvoke), args, &out, &errOut); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %s)", args, code, ExitUsage, errOut.String())
		}
	}
	t.Setenv("NUVOM_GRACE", "soon")
	errOut.Reset()
	if code := run(context.Background(), nil, pingTask(okInvoke), nil, &out, &errOut); code != ExitUsage ||
		!strings.Contains(errOut.String(), "NUVOM_GRACE") {
		t.Errorf("bad env: exit %d, stderr %s", code, errOut.String())
	}
}

func TestBurstRunsQueuedJobs(t *testing.T) {
	c := fileQueue(t)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 10; i++ {
		res, err := c.Enqueue(ctx, spec, []byte{0x90})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	var out, errOut bytes.Buffer
	code := run(ctx, nil, pingTask(okInvoke), []string{"--burst", "--concurrency", "2", "--log-format", "json", "--log-level", "debug"}, &out, &errOut)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, id := range ids {
		j, err := c.Get(ctx, id)
		if err != nil || j.State != nuvom.StateSucceeded {
			t.Fatalf("job %s: %v %v", id, j, err)
		}
	}
	if !strings.Contains(errOut.String(), `"msg":"job finished"`) || !strings.Contains(errOut.String(), `"concurrency":2`) {
		t.Errorf("JSON logs lack job lines or the flag's concurrency:\n%s", errOut.String())
	}
}

func TestCancelStopsGracefullyAndHardStopAtOnce(t *testing.T) {
	c := fileQueue(t)
	ctx := context.Background()
	started := make(chan struct{}, 1)
	block := make(chan struct{})
	defer close(block)
	deaf := func(context.Context, []byte) ([]byte, error) {
		started <- struct{}{}
		<-block // ignores its context
		return nil, nil
	}
	res, err := c.Enqueue(ctx, spec, []byte{0x90})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	hard := make(chan struct{})
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(rctx, hard, pingTask(deaf), []string{"--grace", "1h", "--concurrency", "1"}, &out, &errOut)
	}()
	<-started
	cancel()
	select {
	case code := <-done:
		t.Fatalf("stopped before the grace period with exit %d", code)
	case <-time.After(50 * time.Millisecond):
	}
	close(hard)
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a hard stop did not stop the worker")
	}
	j, err := c.Get(ctx, res.ID)
	if err != nil || j.State != nuvom.StateQueued || j.Attempt != 0 {
		t.Fatalf("job after hard stop: %+v %v", j, err)
	}
}
