package workercmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/schedule"
	"github.com/nuvom/nuvom/runtime/schedule/filestore"
)

// TestWorkerRunsAnnotationSchedules: a worker stores the schedule its task's
// annotation declares and its dispatcher enqueues the ticks the worker runs;
// with --no-scheduler nothing is stored.
func TestWorkerRunsAnnotationSchedules(t *testing.T) {
	fileQueue(t)
	var runs atomic.Int32
	every := nuvom.TaskSpec{Name: "tick", Signature: "s", Options: nuvom.TaskOptions{Queue: "default", Every: 100 * time.Millisecond}}
	tasks := []nuvom.TaskDef{{TaskSpec: every, Invoke: func(context.Context, []byte) ([]byte, error) {
		runs.Add(1)
		return nil, nil
	}}}
	store, err := filestore.Open(filepath.Join(getenvDir(t), "schedules"))
	if err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	if code := run(context.Background(), nil, nil, "worker", tasks, []string{"--burst", "--no-scheduler"}, &out, &errOut); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if l, _ := store.List(context.Background()); len(l) != 0 {
		t.Fatalf("--no-scheduler stored %d schedules", len(l))
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, nil, "worker", tasks, []string{"--concurrency", "1"}, &out, &errOut) }()
	deadline := time.Now().Add(5 * time.Minute) // hang guard
	for runs.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if n := runs.Load(); n < 3 {
		t.Fatalf("the annotation schedule ran the task %d times in 10s, want at least 3\n%s", n, errOut.String())
	}
	sc, err := store.Get(context.Background(), schedule.AnnotationID("tick"))
	if err != nil || sc.Source != schedule.SourceAnnotation || sc.Spec != "100ms" || sc.LastJobID == "" {
		t.Fatalf("annotation schedule %+v, %v", sc, err)
	}
}

func getenvDir(t *testing.T) string {
	t.Helper()
	d := filepath.Clean(os.Getenv("NUVOM_QUEUE_DIR"))
	if d == "." {
		t.Fatal("NUVOM_QUEUE_DIR not set")
	}
	return d
}

// TestWorkerWarnsOfChangedSignatures: at start a worker logs a warning for
// each stored schedule whose task has another signature in its registry (its
// ticks would fail to decode), and none for the others.
func TestWorkerWarnsOfChangedSignatures(t *testing.T) {
	fileQueue(t)
	ctx := context.Background()
	store, err := filestore.Open(filepath.Join(getenvDir(t), "schedules"))
	if err != nil {
		t.Fatal(err)
	}
	report := nuvom.TaskSpec{Name: "app.Report", Signature: "new-sig", Options: nuvom.TaskOptions{Queue: "default"}}
	svc := schedule.NewService(store)
	old := report
	old.Signature = "old-sig"
	if _, err := svc.Create(ctx, old, []byte{0x91, 0x01}, nuvom.Every(time.Hour).WithID("stale")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(ctx, report, []byte{0x91, 0x01}, nuvom.Every(time.Hour).WithID("fine")); err != nil {
		t.Fatal(err)
	}
	other := nuvom.TaskSpec{Name: "other.Task", Signature: "x", Options: nuvom.TaskOptions{Queue: "default"}}
	if _, err := svc.Create(ctx, other, nil, nuvom.Every(time.Hour).WithID("elsewhere")); err != nil {
		t.Fatal(err)
	}
	tasks := []nuvom.TaskDef{{TaskSpec: report, Invoke: func(context.Context, []byte) ([]byte, error) { return nil, nil }}}
	var out, errOut bytes.Buffer
	if code := run(ctx, nil, nil, "worker", tasks, []string{"--burst"}, &out, &errOut); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	log := errOut.String()
	if n := strings.Count(log, "task signature differs"); n != 1 ||
		!strings.Contains(log, "schedule=stale") || !strings.Contains(log, "schedule_signature=old-sig") || !strings.Contains(log, "task_signature=new-sig") {
		t.Errorf("want one warning, for schedule stale; log:\n%s", log)
	}
}
