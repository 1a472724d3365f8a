package workercmd

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/config"
	"github.com/nuvom/nuvom/runtime/file"
	"github.com/nuvom/nuvom/runtime/memory"
	"github.com/nuvom/nuvom/runtime/schedule"
	"github.com/nuvom/nuvom/runtime/schedule/filestore"
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
	if code := run(context.Background(), nil, nil, "worker", pingTask(okInvoke), []string{"--help"}, &out, &errOut); code != ExitOK {
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
		if code := run(context.Background(), nil, nil, "worker", pingTask(okInvoke), args, &out, &errOut); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %s)", args, code, ExitUsage, errOut.String())
		}
	}
	t.Setenv("NUVOM_GRACE", "soon")
	errOut.Reset()
	if code := run(context.Background(), nil, nil, "worker", pingTask(okInvoke), nil, &out, &errOut); code != ExitUsage ||
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
	code := run(ctx, nil, nil, "worker", pingTask(okInvoke), []string{"--burst", "--concurrency", "2", "--log-format", "json", "--log-level", "debug"}, &out, &errOut)
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
		done <- run(rctx, hard, nil, "worker", pingTask(deaf), []string{"--grace", "1h", "--concurrency", "1"}, &out, &errOut)
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

// TestBadFlagPrintsErrorAndUsage: a bad flag is reported with the usage, exit 2.
func TestBadFlagPrintsErrorAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), nil, nil, "worker", pingTask(okInvoke), []string{"--no-such-flag"}, &out, &errOut)
	if code != ExitUsage {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(errOut.String(), "worker: unknown flag: --no-such-flag\n") || !strings.Contains(errOut.String(), "Usage: worker [flags]") ||
		!strings.Contains(errOut.String(), "--concurrency") {
		t.Fatalf("stderr:\n%s", errOut.String())
	}
}

// TestConcurrencyAboveTheCapIsRefused: --concurrency 10000000 exhausted memory;
// it is a usage error naming the flag and the cap.
func TestConcurrencyAboveTheCapIsRefused(t *testing.T) {
	fileQueue(t)
	var out, errOut bytes.Buffer
	code := run(context.Background(), nil, nil, "worker", pingTask(okInvoke), []string{"--burst", "--concurrency", "10000000"}, &out, &errOut)
	if code != ExitUsage || !strings.Contains(errOut.String(), "flag --concurrency") || !strings.Contains(errOut.String(), "at most 10000") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
}

// TestStartErrorIsOneLine: a worker that cannot start says why on one line
// starting with its name, exit 1 (not a log record).
func TestStartErrorIsOneLine(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NUVOM_BACKEND", "sqlite")
	t.Setenv("NUVOM_DB", filepath.Join(notDir, "nuvom.db"))
	var out, errOut bytes.Buffer
	code := run(context.Background(), nil, nil, "nuvom", pingTask(okInvoke), []string{"--burst"}, &out, &errOut)
	lines := strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n")
	if code != ExitFailure || len(lines) != 1 || !strings.HasPrefix(lines[0], "nuvom: open sqlite backend") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
}

// TestUnknownZoneIsLoggedAndOtherTasksRun: one task's tz= that names no zone
// is an error in the log for that schedule; the worker runs the other tasks.
func TestUnknownZoneIsLoggedAndOtherTasksRun(t *testing.T) {
	c := fileQueue(t)
	ctx := context.Background()
	res, err := c.Enqueue(ctx, spec, []byte{0x90})
	if err != nil {
		t.Fatal(err)
	}
	badZone := nuvom.TaskSpec{Name: "nightly", Signature: "s2", Options: nuvom.TaskOptions{Queue: "default", Cron: "0 3 * * *", Zone: "Mars/Olympus"}}
	goodZone := nuvom.TaskSpec{Name: "morning", Signature: "s3", Options: nuvom.TaskOptions{Queue: "default", Cron: "0 7 * * *", Zone: "Europe/Berlin"}}
	tasks := append(pingTask(okInvoke), nuvom.TaskDef{TaskSpec: badZone, Invoke: okInvoke}, nuvom.TaskDef{TaskSpec: goodZone, Invoke: okInvoke})
	var out, errOut bytes.Buffer
	if code := run(ctx, nil, nil, "worker", tasks, []string{"--burst", "--log-format", "json"}, &out, &errOut); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, errOut.String())
	}
	if j, err := c.Get(ctx, res.ID); err != nil || j.State != nuvom.StateSucceeded {
		t.Fatalf("the other task's job: %+v %v", j, err)
	}
	if !strings.Contains(errOut.String(), `"level":"ERROR"`) || !strings.Contains(errOut.String(), "nightly") ||
		!strings.Contains(errOut.String(), "Mars/Olympus") {
		t.Fatalf("no error naming the task and the zone:\n%s", errOut.String())
	}
	store, err := filestore.Open(filepath.Join(getenvDir(t), "schedules"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Get(ctx, schedule.AnnotationID("morning")); err != nil {
		t.Fatalf("the good schedule was not stored: %v", err)
	}
}

// TestEmbedsTimeZoneData: distroless images have no /usr/share/zoneinfo, so
// the worker binary carries the zone database itself.
func TestEmbedsTimeZoneData(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if !slices.Contains(strings.Fields(string(out)), "time/tzdata") {
		t.Fatal("runtime/workercmd does not import time/tzdata")
	}
}

// TestGraceZeroHandsBackAtOnce: --grace 0s means no grace period, not the
// default 10 s: a stop hands a running job back at once.
func TestGraceZeroHandsBackAtOnce(t *testing.T) {
	if _, err := nuvom.NewWorker(memory.New(), &nuvom.Registry{}, nuvom.WorkerOptions{Grace: config.NoGrace}); err != nil &&
		strings.Contains(err.Error(), "negative") {
		t.Skip("the engine does not accept a negative Grace (config.NoGrace) yet: ", err)
	}
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
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(rctx, nil, nil, "worker", pingTask(deaf), []string{"--grace", "0s", "--concurrency", "1"}, &out, &errOut)
	}()
	<-started
	cancel() // a graceful stop with no grace: nothing else stops it
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(120 * time.Second):
		t.Fatal("hang: --grace 0s waited for the running job")
	}
	if j, err := c.Get(ctx, res.ID); err != nil || j.State != nuvom.StateQueued || j.Attempt != 0 {
		t.Fatalf("job after the stop: %+v %v", j, err)
	}
}
