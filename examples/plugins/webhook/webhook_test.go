package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/examples/plugins/webhook"
	"github.com/nuvom/nuvom/runtime/memory"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugin/pluginconf"
	"github.com/nuvom/nuvom/runtime/plugin/pluginhost"
	"github.com/nuvom/nuvom/runtime/plugin/plugintest"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// guard bounds waits for things that should happen soon; it only stops a hung test.
const guard = 2 * time.Minute

// receiver is an HTTP server that records the POSTs it gets and answers
// with the status codes of statuses in turn (then 204).
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	statuses []int
	got      []request
	arrived  chan struct{} // one value per request
}

type request struct {
	msg      webhook.Message
	delivery string
	ctype    string
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses, arrived: make(chan struct{}, 1<<20)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var m webhook.Message
		if req.Method != http.MethodPost || json.Unmarshal(body, &m) != nil {
			t.Errorf("receiver got %s with body %q, want a POST of a JSON message", req.Method, body)
		}
		r.mu.Lock()
		r.got = append(r.got, request{msg: m, delivery: req.Header.Get(webhook.DeliveryHeader), ctype: req.Header.Get("Content-Type")})
		status := http.StatusNoContent
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
		r.arrived <- struct{}{}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// wait waits for n more requests.
func (r *receiver) wait(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-r.arrived:
		case <-time.After(guard):
			t.Fatalf("the receiver got %d of %d expected requests", i, n)
		}
	}
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...)
}

// env expands ${WEBHOOK_URL} to the receiver's URL.
func (r *receiver) env(name string) (string, bool) {
	if name == "WEBHOOK_URL" {
		return r.srv.URL + "/hooks/nuvom", true
	}
	return "", false
}

func TestConformance(t *testing.T) {
	r := newReceiver(t)
	plugintest.Run(t, webhook.Plugin,
		plugintest.Sample(`url = "${WEBHOOK_URL}"`+"\n"+`timeout = "30s"`),
		plugintest.Env(r.env))
}

// load loads the plugin from a .nuvom_plugins.toml with the given settings
// body, as the worker does.
func load(t *testing.T, settings string, getenv func(string) (string, bool)) (*pluginhost.Set, error) {
	t.Helper()
	file := "[[plugin]]\nimport = \"github.com/nuvom/nuvom/examples/plugins/webhook\"\n[plugin.settings]\n" + settings + "\n"
	f, err := pluginconf.Parse(pluginconf.FileName, []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	return pluginhost.Load(f, []plugin.Registration{webhook.Plugin}, getenv)
}

// start loads and starts the plugin; the returned function stops it (within the hang guard).
func start(t *testing.T, settings string, getenv func(string) (string, bool), in *nuvom.Inspector) (*pluginhost.Set, func()) {
	t.Helper()
	s, err := load(t, settings, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if in == nil {
		b := memory.New()
		t.Cleanup(func() { b.Close() })
		in = nuvom.NewInspector(b)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	if err := s.Start(context.Background(), pluginhost.Options{Logger: logger, Inspector: in, WorkerID: "w1"}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			if err := s.Stop(ctx); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func failed(id string, attempt int) (nuvom.JobInfo, nuvom.Outcome) {
	now := time.Now()
	job := nuvom.JobInfo{ID: id, Task: "billing.Charge", Queue: "default", Attempt: attempt, MaxAttempts: 3, CreatedAt: now, Worker: "w1"}
	return job, nuvom.Outcome{State: nuvom.StateFailed, FinishedAt: now, Error: "card declined",
		Attempt: nuvom.Attempt{Number: attempt, StartedAt: now, FinishedAt: now, Worker: "w1", Outcome: nuvom.OutcomeFailed, Error: "card declined"}}
}

// TestFailedJobOnSQLite: a real worker on a real SQLite database runs a job
// that fails its two attempts and one that succeeds; the receiver gets one
// POST, for the final failure, with the job's details, and nothing for the
// retried attempt or the success.
func TestFailedJobOnSQLite(t *testing.T) {
	r := newReceiver(t)
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "nuvom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	set, stopPlugins := start(t, `url = "${WEBHOOK_URL}"`, r.env, nuvom.NewInspector(b))

	charge := nuvom.TaskSpec{Name: "billing.Charge", Options: nuvom.TaskOptions{Retries: 1, RetryDelay: time.Millisecond}}
	ping := nuvom.TaskSpec{Name: "billing.Ping"}
	reg, err := nuvom.NewRegistry(
		nuvom.TaskDef{TaskSpec: charge, Invoke: func(context.Context, []byte) ([]byte, error) { return nil, errors.New("card declined") }},
		nuvom.TaskDef{TaskSpec: ping, Invoke: func(context.Context, []byte) ([]byte, error) { return nil, nil }},
	)
	if err != nil {
		t.Fatal(err)
	}
	client := nuvom.NewClient(b)
	ctx := context.Background()
	failing, err := client.Enqueue(ctx, charge, []byte{0x90})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(ctx, ping, []byte{0x90}); err != nil {
		t.Fatal(err)
	}
	w, err := nuvom.NewWorker(b, reg, nuvom.WorkerOptions{OnStored: set.Publish, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()

	r.wait(t, 1)
	got := r.requests()[0]
	if got.msg.JobID != failing.ID || got.msg.Task != "billing.Charge" || got.msg.State != nuvom.StateFailed ||
		got.msg.Attempt != 2 || got.msg.MaxAttempts != 2 || got.msg.Outcome != nuvom.OutcomeFailed ||
		!strings.Contains(got.msg.Error, "card declined") || got.msg.Worker != w.ID() {
		t.Errorf("message %+v, want the final failure of job %s (attempt 2 of 2, by worker %s)", got.msg, failing.ID, w.ID())
	}
	if got.delivery != failing.ID+"/2" || got.ctype != "application/json" {
		t.Errorf("headers: delivery %q, content type %q", got.delivery, got.ctype)
	}

	// Both jobs are final; stopping the worker and then the plugins delivers
	// whatever is left: still exactly one POST.
	j, err := nuvom.NewInspector(b).Get(ctx, failing.ID)
	if err != nil || j.State != nuvom.StateFailed {
		t.Fatalf("job %v, %v", j, err)
	}
	stopWorker()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stopPlugins()
	if n := len(r.requests()); n != 1 {
		t.Errorf("the receiver got %d POSTs, want 1 (only the final failure)", n)
	}
}

// TestAllOutcomes: only_failures = false reports every stored outcome.
func TestAllOutcomes(t *testing.T) {
	r := newReceiver(t)
	set, stop := start(t, `url = "${WEBHOOK_URL}"`+"\nonly_failures = false", r.env, nil)
	job, o := failed("j1", 1)
	o.State, o.Attempt.Outcome = nuvom.StateSucceeded, nuvom.OutcomeSucceeded
	set.Publish(job, o)
	o.State, o.Attempt.Outcome = nuvom.StateRetrying, nuvom.OutcomeFailed
	set.Publish(job, o)
	r.wait(t, 2)
	stop()
	got := r.requests()
	if len(got) != 2 || got[0].msg.State != nuvom.StateSucceeded || got[1].msg.State != nuvom.StateRetrying {
		t.Errorf("got %+v, want the succeeded then the retrying outcome", got)
	}
}

// TestRetries: a receiver that answers 503 twice gets the same delivery a
// third time; a 400 is not retried.
func TestRetries(t *testing.T) {
	r := newReceiver(t, http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusNoContent, http.StatusBadRequest)
	set, stop := start(t, `url = "${WEBHOOK_URL}"`+"\nretry_delay = \"1ms\"", r.env, nil)
	set.Publish(failed("j1", 3))
	r.wait(t, 3)
	set.Publish(failed("j2", 1))
	r.wait(t, 1)
	stop()
	var deliveries []string
	for _, q := range r.requests() {
		deliveries = append(deliveries, q.delivery)
	}
	if got := strings.Join(deliveries, " "); got != "j1/3 j1/3 j1/3 j2/1" {
		t.Errorf("deliveries %q, want j1/3 three times (503, 503, 204) then j2/1 once (400)", got)
	}
}

// TestStopDuringBackoff: a receiver that always fails, with a backoff of an
// hour, does not hold up Stop.
func TestStopDuringBackoff(t *testing.T) {
	r := newReceiver(t, http.StatusInternalServerError)
	set, stop := start(t, `url = "${WEBHOOK_URL}"`+"\nretry_delay = \"1h\"\nretries = 5", r.env, nil)
	set.Publish(failed("j1", 1))
	r.wait(t, 1) // the first try failed; the next waits an hour
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(guard):
		t.Fatal("Stop waited for the backoff")
	}
	if n := len(r.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestSettingsErrors: bad settings stop the worker with a positioned message.
func TestSettingsErrors(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	for _, c := range []struct{ settings, want string }{
		{`url = ""`, "setting url is empty"},
		{`url = "ftp://example.com/x"`, "want an http:// or https:// URL"},
		{`url = "http://example.com/x"` + "\ntimeout = \"0s\"", "setting timeout 0s"},
		{`url = "http://example.com/x"` + "\nretries = -1", "setting retries -1"},
		{`url = "${NO_SUCH_WEBHOOK_VAR}"`, "NO_SUCH_WEBHOOK_VAR"},
		{`url = "http://example.com/x"` + "\nonly_failures = \"yes\"", "only_failures"},
	} {
		_, err := load(t, c.settings, none)
		if err == nil || !strings.Contains(err.Error(), pluginconf.FileName+":") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("settings %q: error %v, want a positioned error containing %q", c.settings, err, c.want)
		}
	}
}
