package prometheus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugin/pluginhost"
	"github.com/nuvom/nuvom/runtime/plugin/plugintest"
	"github.com/nuvom/nuvom/runtime/plugins/prometheus"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

func TestConformance(t *testing.T) {
	plugintest.Run(t, prometheus.Plugin, plugintest.Sample(`addr = "127.0.0.1:0"`+"\nrefresh = \"50ms\""))
}

var noArgs = []byte{0x90}

// TestScrapeRealWorker runs a worker on a real SQLite file with the plugin,
// runs jobs that succeed, fail and retry, and scrapes /metrics over HTTP:
// counters match what the store committed and the queue gauges appear.
func TestScrapeRealWorker(t *testing.T) {
	ctx := context.Background()
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "nuvom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ok := nuvom.TaskDef{TaskSpec: nuvom.TaskSpec{Name: "shop.Ok", Options: nuvom.TaskOptions{Queue: "default"}},
		Invoke: func(context.Context, []byte) ([]byte, error) { return nil, nil }}
	bad := nuvom.TaskDef{TaskSpec: nuvom.TaskSpec{Name: "shop.Bad", Options: nuvom.TaskOptions{Queue: "mail", Retries: 1, RetryDelay: time.Millisecond, Backoff: nuvom.BackoffFixed}},
		Invoke: func(context.Context, []byte) ([]byte, error) { return nil, errors.New("nope") }}
	client := nuvom.NewClient(b)
	for i := 0; i < 5; i++ {
		if _, err := client.Enqueue(ctx, ok.TaskSpec, noArgs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.Enqueue(ctx, bad.TaskSpec, noArgs); err != nil {
		t.Fatal(err)
	}
	// A job of a queue this worker does not serve stays queued for the gauge.
	if _, err := client.Enqueue(ctx, nuvom.TaskSpec{Name: "shop.Later", Options: nuvom.TaskOptions{Queue: "later"}}, noArgs); err != nil {
		t.Fatal(err)
	}

	settings := prometheus.Plugin.NewSettings().(*prometheus.Settings)
	settings.Addr = "127.0.0.1:0"
	settings.Refresh = 10 * time.Millisecond
	set, err := pluginhost.New([]plugin.Registration{prometheus.Plugin}, []any{settings})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := set.Start(ctx, pluginhost.Options{Logger: quiet, Inspector: client.Inspector(), WorkerID: "w1"}); err != nil {
		t.Fatal(err)
	}
	defer set.Stop(context.Background())
	reg, err := nuvom.NewRegistry(ok, bad)
	if err != nil {
		t.Fatal(err)
	}
	w, err := nuvom.NewWorker(b, reg, nuvom.WorkerOptions{Logger: quiet, PollInterval: 10 * time.Millisecond, Queues: []string{"default", "mail"},
		Middleware: set.Middleware(), OnStored: set.Publish})
	if err != nil {
		t.Fatal(err)
	}
	set.SetAbandoned(w.Abandoned)
	// The worker runs until the metrics show every outcome, the retry included.
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-runErr; err != nil {
			t.Error(err)
		}
	}()

	url := "http://" + set.Addr("127.0.0.1:0") + "/metrics"
	want := []string{
		`nuvom_jobs_total{outcome="succeeded",queue="default",task="shop.Ok"} 5`,
		`nuvom_jobs_total{outcome="failed",queue="mail",task="shop.Bad"} 2`,
		`nuvom_retries_total{queue="mail",task="shop.Bad"} 1`,
		`nuvom_queue_size{queue="later",state="queued"} 1`,
		`nuvom_queue_size{queue="default",state="succeeded"} 5`,
		`nuvom_job_duration_seconds_count{task="shop.Ok"} 5`,
		`nuvom_pickup_delay_seconds_count{queue="default"} 5`,
		`nuvom_inflight_jobs{queue="default",task="shop.Ok"} 0`,
		`nuvom_abandoned_tasks 0`,
		`nuvom_up 1`,
		`nuvom_worker_info{go_version=`,
	}
	// Outcomes reach the plugin through its buffer and the gauges refresh in
	// the background: poll, with a long hang guard.
	deadline := time.Now().Add(60 * time.Second)
	var body string
	for {
		body = scrape(t, url)
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s never appeared; last scrape:\n%s", missing, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(data)
}

// Settings the plugin cannot use are refused when it is made (which nuvom
// plugins check runs too), each error starting with the setting's name, not
// when its listener starts.
func TestNewRefusesBadSettings(t *testing.T) {
	for _, c := range []struct {
		s    prometheus.Settings
		want string
	}{
		{prometheus.Settings{Addr: "not an addr", Path: "/metrics", Refresh: time.Second}, `addr "not an addr" is not host:port`},
		{prometheus.Settings{Addr: "9464", Path: "/metrics", Refresh: time.Second}, `addr "9464" is not host:port`},
		{prometheus.Settings{Addr: "127.0.0.1:9464", Path: "metrics", Refresh: time.Second}, `path "metrics" must start with /`},
		{prometheus.Settings{Addr: "127.0.0.1:9464", Path: "/metrics", Refresh: -time.Second}, `refresh -1s must be positive`},
	} {
		s := c.s
		if _, err := prometheus.Plugin.New(&s); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want %q", c.s, err, c.want)
		}
	}
	s := prometheus.Settings{Addr: ":0", Path: "/metrics", Refresh: time.Second}
	if _, err := prometheus.Plugin.New(&s); err != nil {
		t.Errorf("New(%+v) = %v", s, err)
	}
}
