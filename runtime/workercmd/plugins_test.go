package workercmd

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugins/prometheus"
)

// syncBuffer is a bytes.Buffer safe for the worker's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenerRE = regexp.MustCompile(`"msg":"plugin HTTP listener","addr":"([^"]+)"`)

// TestPrometheusPluginScrape runs the worker command with the prometheus
// plugin configured as nuvomgen would generate it, runs jobs, and scrapes
// /metrics over loopback HTTP until nuvom_jobs_total shows them.
func TestPrometheusPluginScrape(t *testing.T) {
	c := fileQueue(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := c.Enqueue(ctx, spec, []byte{0x90}); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("METRICS_ADDR", "127.0.0.1:0")
	pl := &Plugins{
		File:          "[[plugin]]\nname = \"prometheus\"\n[plugin.settings]\naddr = \"${METRICS_ADDR}\"\nrefresh = \"100ms\"\n",
		Registrations: []plugin.Registration{prometheus.Plugin},
	}
	var out, errOut syncBuffer
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- runWith(runCtx, nil, nil, "worker", pingTask(okInvoke), pl, []string{"--no-scheduler", "--log-format", "json"}, &out, &errOut)
	}()
	// Outcomes reach the plugin through its buffer and the queue gauges
	// refresh every 100ms: poll, with a long hang guard.
	deadline := time.Now().Add(60 * time.Second)
	want := []string{
		`nuvom_jobs_total{outcome="succeeded",queue="default",task="ping"} 3`,
		`nuvom_queue_size{queue="default",state="succeeded"} 3`,
	}
	var body string
	for !strings.Contains(body, want[0]) || !strings.Contains(body, want[1]) {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %q; last scrape:\n%s\nstderr:\n%s", want, body, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
		m := listenerRE.FindStringSubmatch(errOut.String())
		if m == nil {
			continue
		}
		resp, err := http.Get("http://" + m[1] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(data)
	}
	cancel()
	select {
	case c := <-code:
		if c != ExitOK {
			t.Fatalf("exit %d; stderr:\n%s", c, errOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not stop")
	}
	if !strings.Contains(errOut.String(), `"msg":"plugins started","plugins":["prometheus"]`) {
		t.Errorf("no start line:\n%s", errOut.String())
	}
}

// Bad plugin settings stop the worker before it opens anything, with the
// position in .nuvom_plugins.toml; an unset variable likewise.
func TestPluginSettingsErrors(t *testing.T) {
	fileQueue(t)
	for _, c := range []struct{ file, want string }{
		{"[[plugin]]\nname = \"prometheus\"\n[plugin.settings]\nadr = \"x\"\n", `worker: .nuvom_plugins.toml:4:1: plugin prometheus: unknown setting "adr" (known: addr, path, refresh)`},
		{"[[plugin]]\nname = \"prometheus\"\n[plugin.settings]\naddr = \"${NUVOM_TEST_UNSET_VAR}\"\n", `worker: .nuvom_plugins.toml:4:1: plugin prometheus: setting addr: environment variable NUVOM_TEST_UNSET_VAR is not set`},
		{"[[plugin]]\nname = \"prometheus\"\n[plugin.settings]\nrefresh = \"0s\"\n", `worker: .nuvom_plugins.toml:4:1: plugin prometheus: refresh 0s must be positive`},
	} {
		var out, errOut bytes.Buffer
		pl := &Plugins{File: c.file, Registrations: []plugin.Registration{prometheus.Plugin}}
		if code := runWith(context.Background(), nil, nil, "worker", pingTask(okInvoke), pl, []string{"--burst"}, &out, &errOut); code != ExitUsage {
			t.Errorf("exit %d, want %d", code, ExitUsage)
		}
		if got := strings.TrimSpace(errOut.String()); got != c.want {
			t.Errorf("stderr %q\nwant   %q", got, c.want)
		}
	}
}
