package dashboard_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/manifest/jsonargs"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/dashboard"
	"github.com/nuvom/nuvom/runtime/schedule"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

const xss = `<script>alert(1)</script>`

// testManifest describes task "shop.Echo"(msg string, n int) string.
func testManifest() *manifest.Manifest {
	m := manifest.New("example.com/shop")
	m.Tasks = []manifest.Task{{
		Name: "shop.Echo", Package: "example.com/shop", Func: "Echo", Doc: "Echo says msg n times.",
		Params: []manifest.Param{{Name: "msg", Type: manifest.Type{Kind: manifest.KindString}},
			{Name: "n", Type: manifest.Type{Kind: manifest.KindInt}}},
		Result:  &manifest.Type{Kind: manifest.KindString},
		Options: manifest.DefaultOptions(),
	}}
	return m
}

type fixture struct {
	b      *sqlite.Backend
	m      *manifest.Manifest
	failed string // a failed job whose args, error, chain and stack hold the XSS payload
	queued string
}

// newFixture opens a real SQLite store with a failed and a queued job.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "nuvom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	m := testManifest()
	args, err := jsonargs.Encode(&m.Tasks[0], []byte(`["`+strings.ReplaceAll(xss, `"`, `\"`)+`", 3]`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Microsecond)
	ctx := context.Background()
	mk := func(id string) *backend.Job {
		return &backend.Job{ID: id, Task: "shop.Echo", Args: args, Queue: "default", State: backend.StateQueued,
			MaxAttempts: 1, RunAt: now, CreatedAt: now, TimeoutPolicy: backend.TimeoutFail}
	}
	f := &fixture{b: b, m: m, failed: "01JFAILED0000000000000000A", queued: "01JQUEUED0000000000000000B"}
	if _, err := b.Enqueue(ctx, []*backend.Job{mk(f.failed)}); err != nil {
		t.Fatal(err)
	}
	c, err := b.Claim(ctx, backend.ClaimRequest{Limit: 1, Worker: "w-" + xss, Now: now, LeaseFor: time.Minute})
	if err != nil || len(c) != 1 {
		t.Fatalf("claim: %v %v", c, err)
	}
	end := now.Add(25 * time.Millisecond)
	if _, err := b.Complete(ctx, []backend.Outcome{{Lease: c[0].Lease(), State: backend.StateFailed, FinishedAt: end,
		Error: "boom " + xss, ErrorChain: []string{"boom " + xss, "cause " + xss}, PanicStack: "goroutine 1 " + xss,
		Attempt: backend.Attempt{Number: 1, StartedAt: now, FinishedAt: end, Worker: "w-" + xss, Outcome: backend.OutcomePanicked, Error: xss}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Enqueue(ctx, []*backend.Job{mk(f.queued)}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) handler(t *testing.T, mod func(*dashboard.Options)) *dashboard.Handler {
	t.Helper()
	o := dashboard.Options{Backend: f.b, Manifest: f.m, Schedules: schedule.NewMemoryStore()}
	if mod != nil {
		mod(&o)
	}
	h, err := dashboard.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// browser is an HTTP client with a cookie jar against srv.
type browser struct {
	t   *testing.T
	srv *httptest.Server
	c   *http.Client
}

func newBrowser(t *testing.T, h http.Handler) *browser {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, srv: srv, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.srv.URL+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body) + resp.Header.Get("Location")
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the page's CSRF token from its forms.
func (b *browser) csrf(page string) string {
	b.t.Helper()
	_, body := b.get(page)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s", page)
	}
	return m[1]
}

func TestEveryPageRendersAndEscapesJobValues(t *testing.T) {
	f := newFixture(t)
	// A queue whose name needs escaping in text and in links.
	j := &backend.Job{ID: "01JODDQUEUE00000000000000C", Task: "shop.Echo", Queue: `q"<x>&y`, State: backend.StateQueued,
		MaxAttempts: 1, RunAt: time.Now(), CreatedAt: time.Now(), TimeoutPolicy: backend.TimeoutFail}
	if _, err := f.b.Enqueue(context.Background(), []*backend.Job{j}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, f.handler(t, nil))
	if _, body := b.get("/queues"); strings.Contains(body, "<x>") ||
		!strings.Contains(body, `href="jobs?queue=q%22%3Cx%3E%26y&amp;state=queued"`) || !strings.Contains(body, `q&#34;&lt;x&gt;&amp;y`) {
		t.Fatalf("queue name not escaped in the queues page")
	}
	for _, p := range []string{"/", "/queues", "/jobs", "/jobs?state=failed", "/jobs/" + f.failed, "/tasks", "/schedules",
		"/workers", "/quarantine", "/static/style.css", "/static/app.js", "/api/live"} {
		code, body := b.get(p)
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d: %s", p, code, body)
		}
		if strings.Contains(body, xss) {
			t.Fatalf("GET %s shows the payload unescaped", p)
		}
	}
	_, body := b.get("/jobs/" + f.failed)
	esc := "&lt;script&gt;alert(1)&lt;/script&gt;"
	for _, want := range []string{
		"msg", "string", // the parameter's name and type from the manifest
		`boom ` + esc,           // the error
		`cause ` + esc,          // the chain
		`goroutine 1 ` + esc,    // the stack
		`w-` + esc,              // the worker
		`&#34;` + esc + `&#34;`, // the argument, as JSON text
		`action="jobs/` + f.failed + `/retry"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("job page lacks %q", want)
		}
	}
	if code, _ := b.get("/jobs/nope"); code != http.StatusNotFound {
		t.Errorf("GET of an unknown job = %d, want 404", code)
	}
	if code, _ := b.get("/jobs?state=bogus"); code != http.StatusBadRequest {
		t.Errorf("GET with an unknown state = %d, want 400", code)
	}
	// Search by argument text finds the job; keyset paging gives the next page.
	_, body = b.get("/jobs?q=alert")
	if !strings.Contains(body, f.failed) || !strings.Contains(body, f.queued) {
		t.Errorf("search by argument text misses jobs")
	}
	_, body = b.get("/jobs?state=failed")
	if !strings.Contains(body, f.failed) || strings.Contains(body, `href="jobs/`+f.queued) {
		t.Errorf("state filter wrong")
	}
}

func TestActionsNeedTheCSRFToken(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f.handler(t, nil))
	// No token, no cookie.
	if code, _ := b.post("/jobs/"+f.failed+"/retry", url.Values{}); code != http.StatusForbidden {
		t.Fatalf("POST without CSRF token = %d, want 403", code)
	}
	tok := b.csrf("/jobs/" + f.failed)
	// The cookie is there now, but the form's token is wrong.
	if code, _ := b.post("/jobs/"+f.failed+"/retry", url.Values{"csrf": {tok[:len(tok)-1] + "x"}}); code != http.StatusForbidden {
		t.Fatalf("POST with a wrong CSRF token = %d, want 403", code)
	}
	if j, _ := f.b.Get(context.Background(), f.failed); j.State != backend.StateFailed {
		t.Fatalf("a refused POST changed the job: %s", j.State)
	}
	// A GET cannot change anything.
	if code, _ := b.get("/jobs/" + f.failed + "/retry"); code == http.StatusOK || code == http.StatusSeeOther {
		t.Fatalf("GET of an action = %d", code)
	}
	code, loc := b.post("/jobs/"+f.failed+"/retry", url.Values{"csrf": {tok}, "back": {"/jobs/" + f.failed}})
	if code != http.StatusSeeOther || !strings.HasSuffix(loc, "/jobs/"+f.failed) {
		t.Fatalf("POST with the token = %d %s, want a redirect back", code, loc)
	}
	if _, body := b.get("/jobs/" + f.failed); !strings.Contains(body, `class="flash"`) || !strings.Contains(body, "queued again") {
		t.Fatalf("the page after the action shows no message")
	}
	if _, body := b.get("/jobs/" + f.failed); strings.Contains(body, `class="flash"`) {
		t.Fatalf("the message shows twice")
	}
	if _, body := b.get("/jobs?flash=Call+this+number"); strings.Contains(body, "Call this number") {
		t.Fatalf("a link sets the message")
	}
	if j, _ := f.b.Get(context.Background(), f.failed); j.State != backend.StateQueued {
		t.Fatalf("retry: job is %s, want queued", j.State)
	}
	// An open redirect through back is refused.
	_, loc = b.post("/jobs/"+f.queued+"/cancel", url.Values{"csrf": {tok}, "back": {"//evil.example/"}})
	if strings.Contains(loc, "evil") {
		t.Fatalf("redirected to %s", loc)
	}
	if j, _ := f.b.Get(context.Background(), f.queued); j.State != backend.StateCancelled {
		t.Fatalf("cancel: job is %s", j.State)
	}
	// Pause and resume a queue; bulk delete of every cancelled job.
	if code, _ := b.post("/queues/pause", url.Values{"csrf": {tok}, "queue": {"default"}}); code != http.StatusSeeOther {
		t.Fatalf("pause = %d", code)
	}
	if p, _ := f.b.Paused(context.Background()); len(p) != 1 || p[0] != "default" {
		t.Fatalf("paused = %v", p)
	}
	_, body := b.get("/queues")
	if !strings.Contains(body, `action="queues/resume" data-queue="default"`) {
		t.Fatalf("queues page of a paused queue offers no resume")
	}
	code, loc = b.post("/bulk", url.Values{"csrf": {tok}, "action": {"delete"}, "all": {"1"}, "state": {"cancelled"}, "back": {"/jobs"}})
	if _, body := b.get("/jobs"); code != http.StatusSeeOther || !strings.Contains(body, "delete: 1 jobs") {
		t.Fatalf("bulk delete = %d %s", code, loc)
	}
	if _, err := f.b.Get(context.Background(), f.queued); err == nil {
		t.Fatal("bulk-deleted job still there")
	}
}

func TestReadOnlyHidesAndRefusesActions(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f.handler(t, func(o *dashboard.Options) { o.ReadOnly = true }))
	for _, p := range []string{"/", "/queues", "/jobs", "/jobs/" + f.failed, "/schedules", "/quarantine"} {
		_, body := b.get(p)
		if strings.Contains(body, `method="post"`) {
			t.Fatalf("read-only page %s shows an action form", p)
		}
	}
	// Even with a valid token pair, a POST is refused.
	_, _ = b.get("/") // sets the cookie
	u, _ := url.Parse(b.srv.URL + "/")
	var tok string
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "nuvom_csrf" {
			tok = c.Value
		}
	}
	if tok == "" {
		t.Fatal("no CSRF cookie")
	}
	if code, _ := b.post("/jobs/"+f.failed+"/retry", url.Values{"csrf": {tok}}); code != http.StatusForbidden {
		t.Fatalf("read-only POST = %d, want 403", code)
	}
	if j, _ := f.b.Get(context.Background(), f.failed); j.State != backend.StateFailed {
		t.Fatalf("read-only POST changed the job: %s", j.State)
	}
}

func TestCheckBindRefusesOpenAddressesWithoutCredentials(t *testing.T) {
	for _, c := range []struct {
		addr string
		o    dashboard.Options
		ok   bool
	}{
		{"127.0.0.1:8181", dashboard.Options{}, true},
		{"localhost:8181", dashboard.Options{}, true},
		{"[::1]:8181", dashboard.Options{}, true},
		{"0.0.0.0:8181", dashboard.Options{}, false},
		{":8181", dashboard.Options{}, false},
		{"192.168.1.5:8181", dashboard.Options{}, false},
		{"0.0.0.0:8181", dashboard.Options{Token: "t"}, true},
		{"0.0.0.0:8181", dashboard.Options{BasicAuth: "u:p"}, true},
	} {
		err := dashboard.CheckBind(c.addr, c.o)
		if (err == nil) != c.ok {
			t.Errorf("CheckBind(%s, %+v) = %v, want ok=%t", c.addr, c.o, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--token") {
			t.Errorf("refusal does not say how to set credentials: %v", err)
		}
	}
}

func TestTokenAndBasicAuth(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f.handler(t, func(o *dashboard.Options) { o.Token = "s3cret" }))
	if code, _ := b.get("/"); code != http.StatusUnauthorized {
		t.Fatalf("no token = %d, want 401", code)
	}
	if code, _ := b.get("/?token=wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token = %d, want 401", code)
	}
	if code, loc := b.get("/jobs?token=s3cret&state=failed"); code != http.StatusSeeOther || strings.Contains(loc, "s3cret") {
		t.Fatalf("?token = %d, want a redirect that drops the token", code)
	}
	if code, _ := b.get("/jobs"); code != http.StatusOK {
		t.Fatalf("after ?token, the cookie = %d, want 200", code)
	}
	req, _ := http.NewRequest("GET", b.srv.URL+"/queues", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bearer = %d", resp.StatusCode)
	}

	ba := newBrowser(t, f.handler(t, func(o *dashboard.Options) { o.BasicAuth = "ops:pw" }))
	if code, _ := ba.get("/"); code != http.StatusUnauthorized {
		t.Fatalf("no basic auth = %d, want 401", code)
	}
	req, _ = http.NewRequest("GET", ba.srv.URL+"/", nil)
	req.SetBasicAuth("ops", "pw")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("basic auth = %d", resp.StatusCode)
	}
}

func TestMountedUnderAPrefix(t *testing.T) {
	f := newFixture(t)
	mux := http.NewServeMux()
	mux.Handle("/admin/nuvom/", http.StripPrefix("/admin/nuvom", f.handler(t, nil)))
	b := newBrowser(t, mux)
	code, body := b.get("/admin/nuvom/jobs")
	if code != http.StatusOK || !strings.Contains(body, `<base href="/admin/nuvom/">`) {
		t.Fatalf("GET under the prefix = %d, base href missing", code)
	}
	tok := csrfRE.FindStringSubmatch(body)[1]
	code, loc := b.post("/admin/nuvom/jobs/"+f.failed+"/retry", url.Values{"csrf": {tok}, "back": {"/jobs"}})
	if code != http.StatusSeeOther || loc != "/admin/nuvom/jobs" {
		t.Fatalf("POST under the prefix = %d, redirect %q", code, loc)
	}
}

// countingAdmin counts the aggregate reads of the live poll (per minute,
// not grouped: the charts' reads, made at start to warm their cache, are
// grouped).
type countingAdmin struct {
	*sqlite.Backend
	minutes atomic.Int64
}

func (c *countingAdmin) Minutes(ctx context.Context, f backend.MinuteFilter) ([]backend.MinuteStat, error) {
	if f.Step == 0 && f.Group == backend.GroupNone {
		c.minutes.Add(1)
	}
	return c.Backend.Minutes(ctx, f)
}

// Every open page shares one poll per tick: the snapshots that pages receive
// carry the poll's sequence number, and the store saw one aggregate read per
// poll, not one per page.
func TestLivePagesShareOnePoll(t *testing.T) {
	f := newFixture(t)
	cb := &countingAdmin{Backend: f.b}
	h := f.handler(t, func(o *dashboard.Options) { o.Backend = cb; o.PollEvery = 20 * time.Millisecond })
	srv := httptest.NewServer(h)
	defer srv.Close()
	const pages, events = 5, 4
	seqs := make([][]int64, pages)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()
	for i := range pages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			buf := make([]byte, 0, 4096)
			tmp := make([]byte, 1024)
			re := regexp.MustCompile(`"seq":(\d+)`)
			for len(seqs[i]) < events {
				n, err := resp.Body.Read(tmp)
				buf = append(buf, tmp[:n]...)
				for {
					k := strings.Index(string(buf), "\n\n")
					if k < 0 {
						break
					}
					if m := re.FindSubmatch(buf[:k]); m != nil {
						var s int64
						for _, c := range m[1] {
							s = s*10 + int64(c-'0')
						}
						seqs[i] = append(seqs[i], s)
					}
					buf = buf[k+2:]
				}
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	h.Close()
	var maxSeq int64
	for i, s := range seqs {
		if len(s) < events {
			t.Fatalf("page %d got %d events", i, len(s))
		}
		maxSeq = max(maxSeq, s[len(s)-1])
	}
	if got := cb.minutes.Load(); got > maxSeq+1 {
		t.Fatalf("%d aggregate reads for %d polls seen by %d pages: the pages did not share the poll", got, maxSeq, pages)
	}
	if maxSeq >= pages*events {
		t.Fatalf("%d polls for %d pages × %d events", maxSeq, pages, events)
	}
}

// slowStats is a store whose count of jobs by state waits for release.
type slowStats struct {
	*sqlite.Backend
	release chan struct{}
}

func (s *slowStats) Stats(ctx context.Context, now time.Time) ([]backend.QueueStat, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Backend.Stats(ctx, now)
}

// While the first count of the jobs runs, pages show without counts and
// reload; once it is done they show the counts.
func TestPagesDoNotWaitForTheFirstCount(t *testing.T) {
	f := newFixture(t)
	slow := &slowStats{Backend: f.b, release: make(chan struct{})}
	b := newBrowser(t, f.handler(t, func(o *dashboard.Options) { o.Backend = slow }))
	for _, p := range []string{"/", "/queues"} {
		code, body := b.get(p)
		if code != http.StatusOK || !strings.Contains(body, "Counting the jobs") || !strings.Contains(body, `http-equiv="refresh"`) {
			t.Fatalf("GET %s during the first count = %d, no counting note:\n%s", p, code, body)
		}
	}
	close(slow.release)
	deadline := time.Now().Add(2 * time.Minute) // hang guard
	for {
		_, body := b.get("/queues")
		if !strings.Contains(body, "Counting the jobs") {
			if strings.Contains(body, `http-equiv="refresh"`) || !strings.Contains(body, `href="jobs?queue=default&amp;state=failed">1</a>`) {
				t.Fatalf("queues page after the count:\n%s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the count never finished")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// formFields returns the hidden fields of the page's form posting to action,
// in document order, as a browser submits them.
func formFields(t *testing.T, page, action string) url.Values {
	t.Helper()
	i := strings.Index(page, `action="`+action+`"`)
	if i < 0 {
		t.Fatalf("no form posting to %s", action)
	}
	form := page[i:]
	form = form[:strings.Index(form, "</form>")]
	v := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(form, -1) {
		v.Add(m[1], m[2])
	}
	return v
}

// Deleting a job from its own page goes back to the jobs, not to the page of
// the job that no longer exists.
func TestDeleteFromJobPageGoesBackToJobs(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f.handler(t, nil))
	_, page := b.get("/jobs/" + f.failed)
	code, loc := b.post("/jobs/"+f.failed+"/delete", formFields(t, page, "jobs/"+f.failed+"/delete"))
	if code != http.StatusSeeOther || loc != "/jobs" {
		t.Fatalf("delete from the job's page = %d, redirect %q, want 303 to /jobs", code, loc)
	}
	if _, err := f.b.Get(context.Background(), f.failed); err == nil {
		t.Fatal("deleted job still there")
	}
}

// The live count of workers follows the registry in wall time: a worker that
// died shows as gone within statsEvery poll intervals, however few polls
// (open pages) there were in between.
func TestLiveWorkersFollowTheRegistry(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx := context.Background()
	if err := f.b.Heartbeat(ctx, backend.WorkerInfo{ID: "w1", Host: "h", PID: 1, Concurrency: 1, StartedAt: now, LastHeartbeat: now}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, f.handler(t, func(o *dashboard.Options) { o.Now = clock }))
	live := func() int {
		t.Helper()
		_, body := b.get("/api/live")
		var s struct{ Workers int }
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatalf("api/live: %v: %s", err, body)
		}
		return s.Workers
	}
	if n := live(); n != 1 {
		t.Fatalf("live workers = %d, want 1", n)
	}
	mu.Lock()
	now = now.Add(time.Hour) // the worker stopped beating long ago
	mu.Unlock()
	if n := live(); n != 0 {
		t.Fatalf("live workers an hour after the last heartbeat = %d, want 0", n)
	}
}

// An address that is not host:port is named as such, with or without
// credentials, rather than refused as "without credentials".
func TestCheckBindNamesAMalformedAddress(t *testing.T) {
	for _, c := range []struct {
		addr string
		o    dashboard.Options
	}{
		{"nonsense", dashboard.Options{}},
		{"8181", dashboard.Options{Token: "t"}},
		{"localhost", dashboard.Options{}},
	} {
		err := dashboard.CheckBind(c.addr, c.o)
		if err == nil || !strings.Contains(err.Error(), `address "`+c.addr+`" is not host:port`) {
			t.Errorf("CheckBind(%q) = %v, want it named as not host:port", c.addr, err)
		}
	}
}

// A browser still holding the cookie of a previous run's token (the README
// suggests a fresh random token per start) gets in by opening ?token= with
// the new one, as the 401 page tells it to.
func TestNewTokenLinkReplacesAStaleCookie(t *testing.T) {
	f := newFixture(t)
	old := newBrowser(t, f.handler(t, func(o *dashboard.Options) { o.Token = "old-token" }))
	if code, _ := old.get("/?token=old-token"); code != http.StatusSeeOther {
		t.Fatalf("?token = %d, want 303", code)
	}
	// The dashboard restarts with a new token, the browser keeps its cookies.
	b := newBrowser(t, f.handler(t, func(o *dashboard.Options) { o.Token = "new-token" }))
	b.c.Jar = old.c.Jar
	u, _ := url.Parse(old.srv.URL)
	nu, _ := url.Parse(b.srv.URL)
	b.c.Jar.SetCookies(nu, old.c.Jar.Cookies(u))
	if code, _ := b.get("/jobs"); code != http.StatusUnauthorized {
		t.Fatalf("stale cookie = %d, want 401", code)
	}
	if code, _ := b.get("/jobs?token=new-token"); code != http.StatusSeeOther {
		t.Fatalf("?token with the new token and a stale cookie = %d, want 303", code)
	}
	if code, _ := b.get("/jobs"); code != http.StatusOK {
		t.Fatalf("after ?token with the new token = %d, want 200", code)
	}
}

// A bulk action on every job of an unknown state names the state.
func TestBulkNamesAnUnknownState(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f.handler(t, nil))
	_, page := b.get("/jobs")
	tok := csrfRE.FindStringSubmatch(page)[1]
	b.post("/bulk", url.Values{"csrf": {tok}, "action": {"retry"}, "all": {"1"}, "state": {"faild"}, "back": {"/jobs"}})
	if _, body := b.get("/jobs"); !strings.Contains(body, "unknown state &#34;faild&#34;") {
		t.Fatalf("the message does not name the state:\n%s", body)
	}
}
