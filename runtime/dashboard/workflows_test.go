package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/dashboard"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// flow builds a workflow stored through the real SQLite store.
type flow struct {
	t    testing.TB
	b    *sqlite.Backend
	wf   *backend.Workflow
	now  time.Time
	args []byte
}

func (f *fixture) flow(t *testing.T, id, name string) *flow {
	now := time.Now().Truncate(time.Microsecond)
	j, err := f.b.Get(context.Background(), f.failed)
	if err != nil {
		t.Fatal(err)
	}
	// Every step's arguments are the fixture's: msg is the XSS payload.
	return &flow{t: t, b: f.b, wf: &backend.Workflow{ID: id, Name: name, CreatedAt: now}, now: now, args: j.Args}
}

// step adds a step of task in queue waiting for parents.
func (w *flow) step(id, task, queue string, parents ...backend.Edge) string {
	j := &backend.Job{ID: id, Task: task, Args: w.args, Queue: queue, State: backend.StateQueued,
		MaxAttempts: 1, RunAt: w.now, CreatedAt: w.now, TimeoutPolicy: backend.TimeoutFail}
	if len(parents) > 0 {
		j.State = backend.StatePending
	}
	w.wf.Steps = append(w.wf.Steps, backend.Step{Job: j, Parents: parents})
	return id
}

func (w *flow) enqueue() string {
	w.t.Helper()
	if err := w.b.EnqueueWorkflow(context.Background(), w.wf); err != nil {
		w.t.Fatal(err)
	}
	return w.wf.ID
}

func after(ids ...string) []backend.Edge {
	out := make([]backend.Edge, len(ids))
	for i, id := range ids {
		out[i] = backend.Edge{Parent: id}
	}
	return out
}

// drain runs every ready job of queue until none is left, as a worker
// would: task "shop.Fail" fails, every other task succeeds.
func drain(t *testing.T, b backend.Backend, queue string) {
	t.Helper()
	ctx := context.Background()
	for {
		now := time.Now()
		jobs, err := b.Claim(ctx, backend.ClaimRequest{Queues: []string{queue}, Limit: 1000, Worker: "w", Now: now, LeaseFor: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) == 0 {
			return
		}
		var outs []backend.Outcome
		for _, j := range jobs {
			o := backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: now,
				Attempt: backend.Attempt{Number: 1, StartedAt: now, FinishedAt: now, Worker: "w", Outcome: backend.OutcomeSucceeded}}
			if j.Task == "shop.Fail" {
				o.State, o.Error, o.Attempt.Outcome = backend.StateFailed, "it failed "+xss, backend.OutcomeFailed
			}
			outs = append(outs, o)
		}
		if _, err := b.Complete(ctx, outs); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	stepBoxRE = regexp.MustCompile(`<a class="step" href="jobs/([^"]+)"[^>]*><g class="box st-([a-z]+)">`)
	edgeRE    = regexp.MustCompile(`<line class="edge( order)?( ignore)?"`)
)

// boxes returns the state of each drawn step box by job id.
func boxes(body string) map[string]string {
	out := map[string]string{}
	for _, m := range stepBoxRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func TestWorkflowPagesDrawTheGraph(t *testing.T) {
	f := newFixture(t)
	esc := "&lt;script&gt;alert(1)&lt;/script&gt;"

	// A chain a -> b -> c, run to the end.
	ch := f.flow(t, "01WFCHAIN0000000000000000A", "chain "+xss)
	a := ch.step("01WCA000000000000000000000", "shop.Echo", "chain")
	bb := ch.step("01WCB000000000000000000000", "shop.Echo", "chain", after(a)...)
	c := ch.step("01WCC000000000000000000000", "shop.Echo", "chain", after(bb)...)
	chain := ch.enqueue()
	drain(t, f.b, "chain")

	// A fan-out of 150 and a fan-in, the root run: the children wait queued.
	fo := f.flow(t, "01WFFAN00000000000000000AA", "fan")
	root := fo.step("01WFR000000000000000000000", "shop.Echo", "fan")
	var kids []string
	for i := range 150 {
		kids = append(kids, fo.step(fmt.Sprintf("01WFK%021d", i), "shop.Echo", "fanout", after(root)...))
	}
	in := after(kids...)
	in[len(in)-1].OrderOnly = true
	merge := fo.step("01WFM000000000000000000000", "shop.Echo", "fan", in...)
	fan := fo.enqueue()
	drain(t, f.b, "fan")

	// A failed parent: its default dependent is cancelled, the one that
	// ignores failure runs.
	fl := f.flow(t, "01WFFAIL00000000000000000A", "fails")
	p := fl.step("01WXP000000000000000000000", "shop.Fail", "fails")
	d1 := fl.step("01WXD100000000000000000000", "shop.Echo", "fails", after(p)...)
	d2 := fl.step("01WXD200000000000000000000", "shop.Echo", "fails", backend.Edge{Parent: p, IgnoreFailure: true})
	failing := fl.enqueue()
	drain(t, f.b, "fails")

	b := newBrowser(t, f.handler(t, nil))
	code, body := b.get("/workflows")
	if code != http.StatusOK || strings.Contains(body, xss) || !strings.Contains(body, "chain "+esc) {
		t.Fatalf("workflows list = %d, name not shown escaped:\n%s", code, body)
	}
	for _, want := range []string{`href="workflows/` + chain + `"`, `href="workflows/` + fan + `"`, `href="workflows/` + failing + `"`,
		`w-succeeded">succeeded`, `w-running">running`, `w-failed">failed`} {
		if !strings.Contains(body, want) {
			t.Errorf("workflows list lacks %q", want)
		}
	}

	// The chain: three succeeded boxes and two plain edges.
	code, body = b.get("/workflows/" + chain)
	if code != http.StatusOK || strings.Contains(body, xss) {
		t.Fatalf("chain page = %d or shows the payload unescaped", code)
	}
	if got := boxes(body); len(got) != 3 || got[a] != "succeeded" || got[bb] != "succeeded" || got[c] != "succeeded" {
		t.Errorf("chain boxes = %v", got)
	}
	if e := edgeRE.FindAllString(body, -1); len(e) != 2 || strings.Contains(strings.Join(e, ""), "order") {
		t.Errorf("chain edges = %v", e)
	}
	if !strings.Contains(body, "<h1>Workflow chain "+esc+"</h1>") || strings.Contains(body, "Cancel workflow") {
		t.Errorf("chain page: title not escaped, or a finished workflow offers cancel")
	}
	// Boxes sit in layers: the chain's steps go down one layer each.
	var xs, ys []int
	for _, m := range regexp.MustCompile(`<rect x="(\d+)" y="(\d+)"`).FindAllStringSubmatch(body, -1) {
		x, _ := strconv.Atoi(m[1])
		y, _ := strconv.Atoi(m[2])
		xs, ys = append(xs, x), append(ys, y)
	}
	if len(ys) != 3 || !(ys[0] < ys[1] && ys[1] < ys[2]) || xs[0] != xs[1] || xs[1] != xs[2] {
		t.Errorf("chain positions x %v y %v", xs, ys)
	}

	// The fan-out: the 150-wide layer is one summary box with counts and a
	// link to a paged table of the layer; its edges merge into three lines,
	// the order-only one marked.
	_, body = b.get("/workflows/" + fan)
	if got := boxes(body); len(got) != 2 || got[root] != "succeeded" || got[merge] != "pending" {
		t.Errorf("fan boxes = %v", got)
	}
	if n := strings.Count(body, `<a class="summary"`); n != 1 || !strings.Contains(body, "150 steps") || !strings.Contains(body, "150 queued") {
		t.Errorf("fan: %d summary boxes, or no counts", n)
	}
	if e := edgeRE.FindAllString(body, -1); len(e) != 3 || strings.Count(strings.Join(e, "|"), " order") != 1 {
		t.Errorf("fan edges = %v", e)
	}
	if !strings.Contains(body, `<title>149 edges</title>`) || !strings.Contains(body, `<title>150 edges</title>`) {
		t.Errorf("fan: merged edges do not say how many they stand for")
	}
	if !strings.Contains(body, `href="workflows/`+fan+`?layer=1#layer"`) {
		t.Fatalf("the summary box does not link to its layer")
	}
	if !strings.Contains(body, "Cancel workflow") {
		t.Errorf("a running workflow offers no cancel")
	}
	_, body = b.get("/workflows/" + fan + "?layer=1")
	rows := regexp.MustCompile(`<tr><td>#\d+</td><td class="mono"><a href="jobs/(01WFK\d+)">`).FindAllStringSubmatch(body, -1)
	if len(rows) != 100 || rows[0][1] != kids[0] || !strings.Contains(body, "Page 1 of 2") {
		t.Errorf("layer table: %d rows, want 100 of 150 on page 1", len(rows))
	}
	_, body = b.get("/workflows/" + fan + "?layer=1&page=1")
	rows = regexp.MustCompile(`<tr><td>#\d+</td><td class="mono"><a href="jobs/(01WFK\d+)">`).FindAllStringSubmatch(body, -1)
	if len(rows) != 50 || rows[49][1] != kids[149] {
		t.Errorf("layer table page 2: %d rows", len(rows))
	}

	// The failed parent cancelled its default dependent only.
	_, body = b.get("/workflows/" + failing)
	if got := boxes(body); got[p] != "failed" || got[d1] != "cancelled" || got[d2] != "succeeded" {
		t.Errorf("failed workflow boxes = %v", got)
	}
	if e := edgeRE.FindAllString(body, -1); len(e) != 2 || strings.Count(strings.Join(e, "|"), " ignore") != 1 {
		t.Errorf("failed workflow edges = %v", e)
	}
	if strings.Contains(body, xss) || !strings.Contains(body, "it failed "+esc) || !strings.Contains(body, "ended failed") {
		t.Errorf("failed workflow: errors not shown escaped")
	}

	// Job detail: the origin names the workflow and the parent steps.
	_, body = b.get("/jobs/" + d2)
	if strings.Contains(body, xss) || !strings.Contains(body, `<a class="origin-workflow" href="workflows/`+failing+`">fails</a>`) ||
		!strings.Contains(body, `<a class="origin-parent mono" href="jobs/`+p+`">`+p+`</a> (ignores failure)`) {
		t.Errorf("step's job page lacks its origin")
	}
	_, body = b.get("/jobs/" + merge)
	if n := strings.Count(body, `class="origin-parent mono"`); n != 20 || !strings.Contains(body, `and <a href="workflows/`+fan+`">130 more</a>`) {
		t.Errorf("fan-in job page names %d parents, want the first 20 and a link to the 130 others", n)
	}
	_, body = b.get("/jobs/" + root)
	if !strings.Contains(body, `href="workflows/`+fan+`">fan</a> (a root step)`) {
		t.Errorf("root step's origin")
	}
	_, body = b.get("/jobs/" + f.queued)
	if !strings.Contains(body, "enqueued directly") || strings.Contains(body, "origin-workflow") {
		t.Errorf("a plain job's origin")
	}
	if code, _ := b.get("/workflows/nope"); code != http.StatusNotFound {
		t.Errorf("GET of an unknown workflow = %d, want 404", code)
	}
}

func TestWorkflowCancelNeedsCSRFAndIsRefusedReadOnly(t *testing.T) {
	f := newFixture(t)
	w := f.flow(t, "01WFCANCEL000000000000000A", "to cancel")
	a := w.step("01WKA000000000000000000000", "shop.Echo", "held")
	bb := w.step("01WKB000000000000000000000", "shop.Echo", "held", after(a)...)
	id := w.enqueue()
	states := func() (backend.State, backend.State) {
		ja, err := f.b.Get(context.Background(), a)
		if err != nil {
			t.Fatal(err)
		}
		jb, err := f.b.Get(context.Background(), bb)
		if err != nil {
			t.Fatal(err)
		}
		return ja.State, jb.State
	}

	ro := newBrowser(t, f.handler(t, func(o *dashboard.Options) { o.ReadOnly = true }))
	if _, body := ro.get("/workflows/" + id); strings.Contains(body, `method="post"`) || strings.Contains(body, "Cancel workflow") {
		t.Fatal("read-only workflow page shows the cancel form")
	}
	rotok := ""
	u, _ := url.Parse(ro.srv.URL + "/")
	for _, c := range ro.c.Jar.Cookies(u) {
		if c.Name == "nuvom_csrf" {
			rotok = c.Value
		}
	}
	if code, _ := ro.post("/workflows/"+id+"/cancel", url.Values{"csrf": {rotok}}); code != http.StatusForbidden {
		t.Fatalf("read-only cancel = %d, want 403", code)
	}

	b := newBrowser(t, f.handler(t, nil))
	if code, _ := b.post("/workflows/"+id+"/cancel", url.Values{}); code != http.StatusForbidden {
		t.Fatalf("cancel without CSRF token = %d, want 403", code)
	}
	tok := b.csrf("/workflows/" + id)
	if code, _ := b.post("/workflows/"+id+"/cancel", url.Values{"csrf": {tok[:len(tok)-1] + "x"}}); code != http.StatusForbidden {
		t.Fatalf("cancel with a wrong CSRF token = %d, want 403", code)
	}
	if sa, sb := states(); sa != backend.StateQueued || sb != backend.StatePending {
		t.Fatalf("refused cancels changed the steps: %s %s", sa, sb)
	}
	code, loc := b.post("/workflows/"+id+"/cancel", url.Values{"csrf": {tok}, "back": {"/workflows/" + id}})
	if code != http.StatusSeeOther || !strings.HasSuffix(loc, "/workflows/"+id) {
		t.Fatalf("cancel with the token = %d %s", code, loc)
	}
	if sa, sb := states(); sa != backend.StateCancelled || sb != backend.StateCancelled {
		t.Fatalf("after cancel: %s %s", sa, sb)
	}
	_, body := b.get("/workflows/" + id)
	if !strings.Contains(body, "cancelled 2 steps") || strings.Contains(body, "Cancel workflow") {
		t.Fatalf("after cancel the page shows no message, or still offers cancel")
	}
	if got := boxes(body); got[a] != "cancelled" || got[bb] != "cancelled" {
		t.Fatalf("boxes after cancel: %v", got)
	}
}

// failingOrigins is a store whose StepOrigin always fails, as a remote
// worker built with an older nuvom does.
type failingOrigins struct{ *sqlite.Backend }

func (failingOrigins) StepOrigin(context.Context, string) (*backend.StepOrigin, error) {
	return nil, fmt.Errorf("remote: unknown method %q", "StepOrigin")
}

func TestJobPageWithoutStepOriginStillRenders(t *testing.T) {
	f := newFixture(t)
	w := f.flow(t, "01WFORIGIN000000000000000A", "origin")
	a := w.step("01WOA000000000000000000000", "shop.Echo", "default")
	w.step("01WOB000000000000000000000", "shop.Echo", "default", after(a)...)
	w.enqueue()
	b := newBrowser(t, f.handler(t, func(o *dashboard.Options) { o.Backend = failingOrigins{f.b} }))
	code, body := b.get("/jobs/" + a)
	if code != http.StatusOK || !strings.Contains(body, "enqueued directly") {
		t.Fatalf("job page with a failing StepOrigin = %d, want 200 without a workflow origin", code)
	}
}

// TestWorkflowPageAfterParentDeleted: when retention deleted a step's job,
// the steps left keep the numbers they were enqueued with, and a deleted
// parent is named by its id, not shown as another step's number.
func TestWorkflowPageAfterParentDeleted(t *testing.T) {
	f := newFixture(t)
	w := f.flow(t, "01WFDEL0000000000000000000", "deleted root")
	root := w.step("01WDR000000000000000000000", "shop.Echo", "delroot")
	var kids []string
	for i := range 3 {
		kids = append(kids, w.step(fmt.Sprintf("01WDK%021d", i), "shop.Echo", "delkids", after(root)...))
	}
	id := w.enqueue()
	drain(t, f.b, "delroot")
	if n, err := f.b.PurgeEnded(context.Background(), time.Now().Add(time.Hour), backend.PurgeFilter{Queue: "delroot"}); err != nil || n != 1 {
		t.Fatalf("PurgeEnded of the root = %d, %v; want 1", n, err)
	}
	_, body := newBrowser(t, f.handler(t, nil)).get("/workflows/" + id + "?layer=0")
	rows := regexp.MustCompile(`<tr><td>(#\d+)</td><td class="mono"><a href="jobs/(01WDK\d+)">.*\n<td>(.*)</td></tr>`).FindAllStringSubmatch(body, -1)
	if len(rows) != 3 {
		t.Fatalf("layer 0 shows %d of the 3 children:\n%s", len(rows), body)
	}
	for i, r := range rows {
		if r[1] != "#"+strconv.Itoa(i+1) || r[2] != kids[i] || r[3] != `<span class="mono">`+root+`</span> (deleted) ` {
			t.Errorf("row %d = %q %q waits for %q; want #%d %s waiting for the deleted root", i, r[1], r[2], r[3], i+1, kids[i])
		}
	}
}
