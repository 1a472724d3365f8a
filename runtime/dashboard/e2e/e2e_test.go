// The browser tests drive the dashboard in a real headless Chromium (through
// chromedp) against a real SQLite store with a real worker. The tests skip
// when no chromium is installed (.ci/run installs the distribution's).
//
//	go test ./runtime/dashboard/e2e                 # the browser tests
//	go test ./runtime/dashboard/e2e -screenshots    # also rewrite docs/dashboard-*.png

package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/manifest/jsonargs"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/dashboard"
	"github.com/nuvom/nuvom/runtime/schedule"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

var screenshots = flag.Bool("screenshots", false, "write screenshots of the main pages to docs/")

const xss = `<script>alert(1)</script>`

// hangGuard bounds every wait; it is no timing assertion.
const hangGuard = 3 * time.Minute

func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH: install the distribution's (apt-get install -y chromium) to run the dashboard's browser tests")
	return ""
}

func task(name string, params ...manifest.Param) manifest.Task {
	o := manifest.DefaultOptions()
	return manifest.Task{Name: name, Package: "example.com/shop", Func: strings.TrimPrefix(name, "shop."),
		Doc: name + " is a test task.", Params: params, Options: o, Signature: "sig-" + name}
}

type env struct {
	t      *testing.T
	b      *sqlite.Backend
	m      *manifest.Manifest
	client *nuvom.Client
	url    string
	ctx    context.Context
	flaky  atomic.Bool // shop.Flaky fails while set
	slowIn chan string // shop.Slow sends its job id when it starts
	alerts atomic.Int64
}

func spec(m *manifest.Manifest, name, queue string) nuvom.TaskSpec {
	t := m.Lookup(name)
	return nuvom.TaskSpec{Name: name, Signature: t.Signature, Options: nuvom.TaskOptions{Queue: queue}}
}

func newEnv(t *testing.T) *env {
	exe := chromiumPath(t)
	dir := t.TempDir()
	b, err := sqlite.Open(filepath.Join(dir, "nuvom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	m := manifest.New("example.com/shop")
	m.Tasks = []manifest.Task{
		task("shop.Echo", manifest.Param{Name: "msg", Type: manifest.Type{Kind: manifest.KindString}}),
		task("shop.Flaky"),
		task("shop.Slow"),
	}
	e := &env{t: t, b: b, m: m, client: nuvom.NewClient(b), slowIn: make(chan string, 4)}
	e.flaky.Store(true)
	reg, err := nuvom.NewRegistry(
		nuvom.TaskDef{TaskSpec: spec(m, "shop.Echo", "default"), Invoke: func(context.Context, []byte) ([]byte, error) { return nil, nil }},
		nuvom.TaskDef{TaskSpec: spec(m, "shop.Flaky", "default"), Invoke: func(context.Context, []byte) ([]byte, error) {
			if e.flaky.Load() {
				return nil, errors.New("flaky: the payment service said no")
			}
			return nil, nil
		}},
		nuvom.TaskDef{TaskSpec: spec(m, "shop.Slow", "default"), Invoke: func(ctx context.Context, _ []byte) ([]byte, error) {
			info, _ := nuvom.JobInfoFromContext(ctx)
			e.slowIn <- info.ID
			<-ctx.Done()
			return nil, ctx.Err()
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	w, err := nuvom.NewWorker(b, reg, nuvom.WorkerOptions{ID: "e2e-worker", Concurrency: 4, PollInterval: 20 * time.Millisecond,
		Grace: -1, Version: "v1.2.3", ManifestHash: "abc123", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(context.Background())
	werr := make(chan error, 1)
	go func() { werr <- w.Run(wctx) }()
	t.Cleanup(func() {
		stopWorker()
		if err := <-werr; err != nil {
			t.Errorf("worker: %v", err)
		}
	})

	sched := schedule.NewMemoryStore()
	svc := schedule.NewService(sched)
	if _, err := svc.Create(context.Background(), spec(m, "shop.Echo", "default"), mustArgs(t, m, "shop.Echo", `["tick"]`),
		nuvom.Cron("*/5 * * * *", "")); err != nil {
		t.Fatal(err)
	}
	h, err := dashboard.New(dashboard.Options{Backend: b, Manifest: m, Schedules: sched})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); h.Close() })
	e.url = srv.URL

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	guard, cancelG := context.WithTimeout(ctx, 10*time.Minute) // hang guard for the whole test
	t.Cleanup(func() { cancelG(); cancelC(); cancelA() })
	// Starting the browser must not run under a timeout (it would stop the
	// browser); the hang guard bounds the actions after it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Count (and dismiss) every JavaScript dialog: the XSS payload would open one.
	opening := chromedp.Events(guard, page.JavascriptDialogOpening)
	go func() {
		for _, err := range opening {
			if err != nil {
				return
			}
			e.alerts.Add(1)
			go chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error { //nolint:errcheck // the test fails on the count
				_, err := cdp.Call(ctx, t, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
				return err
			}))
		}
	}()
	e.ctx = guard
	return e
}

func mustArgs(t *testing.T, m *manifest.Manifest, name, js string) []byte {
	t.Helper()
	a, err := jsonargs.Encode(m.Lookup(name), []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (e *env) enqueue(name, queue, js string) string {
	e.t.Helper()
	res, err := e.client.Enqueue(context.Background(), spec(e.m, name, queue), mustArgs(e.t, e.m, name, js), nuvom.Queue(queue))
	if err != nil {
		e.t.Fatal(err)
	}
	return res.ID
}

// waitState polls the store until job id is in state want (hang guard only).
func (e *env) waitState(id string, want backend.State) *backend.Job {
	e.t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		j, err := e.b.Get(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if j.State == want {
			return j
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %s is %s, waited for %s", id, j.State, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) run(actions ...chromedp.Action[chromedp.Void]) {
	e.t.Helper()
	if err := chromedp.Do(e.ctx, actions...); err != nil {
		e.t.Fatal(err)
	}
}

// value runs one action and returns its value.
func value[T any](e *env, a chromedp.Action[T]) T {
	e.t.Helper()
	v, err := chromedp.Run(e.ctx, a)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// open navigates to path and waits for the page's heading.
func (e *env) open(path string) string {
	e.t.Helper()
	e.run(chromedp.Navigate(e.url+path), chromedp.WaitVisible(chromedp.CSS("h1")))
	return value(e, chromedp.Text(chromedp.CSS("h1")))
}

func (e *env) text(sel string) string {
	e.t.Helper()
	return value(e, chromedp.Text(chromedp.CSS(sel)))
}

func (e *env) shot(name string) {
	if !*screenshots {
		return
	}
	e.t.Helper()
	buf := value(e, chromedp.FullScreenshot(100))
	path := filepath.Join("..", "..", "..", "docs", "dashboard-"+name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func TestDashboardInChromium(t *testing.T) {
	e := newEnv(t)

	// A failed job, a job whose argument is an XSS payload, and a few
	// successes for the history.
	failed := e.enqueue("shop.Flaky", "default", `[]`)
	e.waitState(failed, backend.StateFailed)
	hostile := e.enqueue("shop.Echo", "default", fmt.Sprintf("[%q]", xss))
	e.waitState(hostile, backend.StateSucceeded)
	for i := range 5 {
		e.waitState(e.enqueue("shop.Echo", "default", fmt.Sprintf(`["hello %d"]`, i)), backend.StateSucceeded)
	}

	t.Run("EveryPageOpens", func(t *testing.T) {
		for _, p := range []struct{ path, h1 string }{
			{"/", "Overview"}, {"/queues", "Queues"}, {"/jobs", "Jobs"}, {"/jobs/" + failed, "Job " + failed},
			{"/tasks", "Tasks"}, {"/schedules", "Schedules"}, {"/workers", "Workers"}, {"/quarantine", "Quarantine"}, {"/workflows", "Workflows"},
		} {
			if got := e.open(p.path); got != p.h1 {
				t.Fatalf("%s: heading %q, want %q", p.path, got, p.h1)
			}
		}
		e.open("/workers")
		if got := e.text("table tbody"); !strings.Contains(got, "e2e-worker") || !strings.Contains(got, "v1.2.3") || !strings.Contains(got, "live") {
			t.Fatalf("workers page: %q", got)
		}
		e.open("/schedules")
		if got := e.text("table tbody"); !strings.Contains(got, "*/5 * * * *") {
			t.Fatalf("schedules page: %q", got)
		}
	})

	t.Run("WorkflowGraph", func(t *testing.T) {
		// resize -> three thumbnails -> merge -> a 50-wide fan-out (drawn as
		// one summary box) -> notify, run by the real worker.
		step := func(msg string) nuvom.Step[struct{}] {
			return nuvom.NewStep[struct{}](spec(e.m, "shop.Echo", "default"), mustArgs(t, e.m, "shop.Echo", fmt.Sprintf("[%q]", msg)), nil, nil)
		}
		root := step("resize " + xss)
		merge := step("merge")
		for i := range 3 {
			merge = merge.After(step(fmt.Sprintf("thumb %d", i)).After(root))
		}
		notify := step("notify")
		for i := range 50 {
			notify = notify.After(step(fmt.Sprintf("upload %d", i)).After(merge))
		}
		id, err := nuvom.Workflow("e2e "+xss, notify).Enqueue(context.Background(), e.client)
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		info, err := e.client.WaitWorkflow(wctx, id)
		if err != nil || info.State != backend.WorkflowSucceeded {
			t.Fatalf("workflow ended %v: %v", info, err)
		}
		e.open("/workflows")
		e.run(chromedp.Click(chromedp.CSS(`a[href="workflows/`+id+`"]`)), chromedp.WaitVisible(chromedp.CSS("svg.graph")))
		if got := e.text("h1"); got != "Workflow e2e "+xss {
			t.Fatalf("workflow page heading %q", got)
		}
		if n := value(e, chromedp.Evaluate[int](`document.querySelectorAll("svg.graph a.step g.st-succeeded rect").length`)); n != 6 {
			t.Fatalf("%d succeeded step boxes drawn, want 6", n)
		}
		if n := value(e, chromedp.Evaluate[int](`document.querySelectorAll("svg.graph a.summary").length`)); n != 1 {
			t.Fatalf("%d summary boxes, want 1 for the 50-wide layer", n)
		}
		// The boxes are laid out: every box has a size, none overlaps another.
		overlaps := value(e, chromedp.Evaluate[int](`(() => {
			const r = [...document.querySelectorAll("svg.graph rect")].map(x => x.getBoundingClientRect());
			let n = 0;
			for (let i = 0; i < r.length; i++) { if (r[i].width < 10 || r[i].height < 10) n++;
				for (let j = i + 1; j < r.length; j++) if (r[i].left < r[j].right && r[j].left < r[i].right && r[i].top < r[j].bottom && r[j].top < r[i].bottom) n++; }
			return n; })()`))
		if overlaps != 0 {
			t.Fatalf("%d boxes overlap or have no size", overlaps)
		}
		if n := e.alerts.Load(); n != 0 {
			t.Fatalf("%d alert dialogs opened", n)
		}
		e.shot("workflow")
		// The summary box leads to the layer's table; a row leads to the job,
		// whose origin leads back to the workflow.
		e.run(chromedp.Click(chromedp.CSS(`svg.graph a.summary`)), chromedp.WaitVisible(chromedp.CSS(`#layer`)))
		if n := value(e, chromedp.Evaluate[int](`document.querySelectorAll("table.jobs tbody tr").length`)); n != 50 {
			t.Fatalf("layer table has %d rows, want 50", n)
		}
		e.run(chromedp.Click(chromedp.CSS(`table.jobs tbody tr a`)), chromedp.WaitVisible(chromedp.CSS(`a.origin-workflow`)))
		e.run(chromedp.Click(chromedp.CSS(`a.origin-workflow`)), chromedp.WaitVisible(chromedp.CSS("svg.graph")))
	})

	t.Run("LiveCountersUpdate", func(t *testing.T) {
		e.open("/")
		// The page's EventSource fills in the live counters: wait for a snapshot.
		e.run(chromedp.WaitVisible(chromedp.CSS(`#live[data-seq]`)))
		e.shot("overview")
	})

	t.Run("XSSPayloadRendersAsText", func(t *testing.T) {
		e.open("/jobs/" + hostile)
		got := e.text("table pre.value")
		if !strings.Contains(got, xss) {
			t.Fatalf("argument shown as %q, want the payload as text", got)
		}
		scripts := value(e, chromedp.Evaluate[int](`document.querySelectorAll("script").length`))
		if scripts != 1 { // the dashboard's own app.js
			t.Fatalf("%d script elements on the page, want 1", scripts)
		}
		if n := e.alerts.Load(); n != 0 {
			t.Fatalf("%d alert dialogs opened", n)
		}
	})

	t.Run("RetryAFailedJob", func(t *testing.T) {
		e.flaky.Store(false)
		e.open("/jobs/" + failed)
		if got := e.text(".facts .state"); got != "failed" {
			t.Fatalf("state shown %q", got)
		}
		e.shot("job")
		e.run(chromedp.Click(chromedp.CSS(`form[action$="/retry"] button`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
		if got := e.text(".flash"); !strings.Contains(got, "queued again") {
			t.Fatalf("flash after retry: %q", got)
		}
		e.waitState(failed, backend.StateSucceeded)
		e.open("/jobs/" + failed)
		if got := e.text(".facts .state"); got != "succeeded" {
			t.Fatalf("after the worker ran it, state shown %q", got)
		}
	})

	t.Run("PauseAQueue", func(t *testing.T) {
		held := e.enqueue("shop.Echo", "slowq", `["later"]`)
		e.waitState(held, backend.StateSucceeded) // the queue exists now
		e.open("/queues")
		e.run(chromedp.Click(chromedp.CSS(`form[action="queues/pause"][data-queue="slowq"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`form[action="queues/resume"][data-queue="slowq"]`)))
		e.shot("queues")
		// The paused queue's job has the higher priority: the worker running
		// the other one skipped it.
		res, err := e.client.Enqueue(context.Background(), spec(e.m, "shop.Echo", "slowq"), mustArgs(t, e.m, "shop.Echo", `["waits"]`),
			nuvom.Queue("slowq"), nuvom.Priority(9))
		if err != nil {
			t.Fatal(err)
		}
		e.waitState(e.enqueue("shop.Echo", "default", `["runs"]`), backend.StateSucceeded)
		if j, _ := e.b.Get(context.Background(), res.ID); j.State != backend.StateQueued {
			t.Fatalf("job of the paused queue is %s", j.State)
		}
		e.run(chromedp.Click(chromedp.CSS(`form[action="queues/resume"][data-queue="slowq"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`form[action="queues/pause"][data-queue="slowq"]`)))
		e.waitState(res.ID, backend.StateSucceeded)
	})

	t.Run("CancelARunningJob", func(t *testing.T) {
		id := e.enqueue("shop.Slow", "default", `[]`)
		select {
		case got := <-e.slowIn:
			if got != id {
				t.Fatalf("slow task started job %s, want %s", got, id)
			}
		case <-time.After(hangGuard):
			t.Fatal("the slow job did not start")
		}
		e.open("/jobs/" + id)
		if got := e.text(".facts .state"); got != "running" {
			t.Fatalf("state shown %q", got)
		}
		e.run(chromedp.Click(chromedp.CSS(`form[action$="/cancel"] button`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
		j := e.waitState(id, backend.StateCancelled)
		if n := len(j.Attempts); n == 0 || j.Attempts[n-1].Outcome != backend.OutcomeCancelled {
			t.Fatalf("attempts after cancel: %+v", j.Attempts)
		}
	})

	t.Run("JobsPageFiltersAndSearch", func(t *testing.T) {
		e.open("/jobs?q=" + "hello+3")
		if got := e.text("table.jobs tbody"); strings.Count(got, "shop.Echo") != 1 {
			t.Fatalf("search for 'hello 3': %q", got)
		}
		e.open("/jobs")
		e.shot("jobs")
		e.open("/tasks")
		e.shot("tasks")
	})

	t.Run("PostWithoutCSRFTokenIsRejected", func(t *testing.T) {
		id := e.enqueue("shop.Flaky", "default", `[]`)
		e.flaky.Store(true)
		e.open("/jobs")
		status := value(e, chromedp.Evaluate[int](fmt.Sprintf(`fetch("jobs/%s/cancel", {method: "POST"}).then(r => r.status)`, id),
			chromedp.EvalAwaitPromise))
		if status != 403 {
			t.Fatalf("POST without a CSRF token = %d, want 403", status)
		}
		// A form posted from another origin carries no token either.
		status = value(e, chromedp.Evaluate[int](fmt.Sprintf(`fetch("jobs/%s/cancel", {method: "POST", body: new URLSearchParams({csrf: "forged-token-forged-token-forged-token"})}).then(r => r.status)`, id),
			chromedp.EvalAwaitPromise))
		if status != 403 {
			t.Fatalf("POST with a forged CSRF token = %d, want 403", status)
		}
	})
}
