package prometheus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugin/pluginhost"
	"github.com/nuvom/nuvom/runtime/plugins/prometheus"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// countingBackend counts the calls that read the store (what an inspector does).
type countingBackend struct {
	backend.Backend
	reads atomic.Int64
}

func (c *countingBackend) Stats(ctx context.Context, now time.Time) ([]backend.QueueStat, error) {
	c.reads.Add(1)
	return c.Backend.Stats(ctx, now)
}

func (c *countingBackend) List(ctx context.Context, f backend.ListFilter) ([]*backend.Job, error) {
	c.reads.Add(1)
	return c.Backend.List(ctx, f)
}

func (c *countingBackend) Get(ctx context.Context, id string) (*backend.Job, error) {
	c.reads.Add(1)
	return c.Backend.Get(ctx, id)
}

// fill enqueues n queued jobs over the given queues in batches of 5,000
// (one transaction each).
func fill(tb testing.TB, be backend.Backend, n int, queues []string) {
	tb.Helper()
	now := time.Now()
	const batch = 5000
	jobs := make([]*backend.Job, 0, batch)
	for i := 0; i < n; i += batch {
		jobs = jobs[:0]
		for k := i; k < min(i+batch, n); k++ {
			jobs = append(jobs, &backend.Job{ID: ulid.Make().String(), Task: "shop.Task", Args: []byte{0x90},
				Queue: queues[k%len(queues)], State: backend.StateQueued, MaxAttempts: 1, RunAt: now,
				TimeoutPolicy: backend.TimeoutFail, CreatedAt: now})
		}
		if _, err := be.Enqueue(context.Background(), jobs); err != nil {
			tb.Fatal(err)
		}
	}
}

// startMetrics starts the plugin over be with a refresh period long enough
// that only its first read (at Start) happens during the caller's work, and
// returns the metrics URL once the queue gauges show want.
func startMetrics(tb testing.TB, be backend.Backend, want string) string {
	tb.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := prometheus.Plugin.NewSettings().(*prometheus.Settings)
	st.Addr, st.Refresh = "127.0.0.1:0", time.Hour
	set, err := pluginhost.New([]plugin.Registration{prometheus.Plugin}, []any{st})
	if err != nil {
		tb.Fatal(err)
	}
	if err := set.Start(context.Background(), pluginhost.Options{Logger: quiet, Inspector: nuvom.NewInspector(be), WorkerID: "bench"}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { set.Stop(context.Background()) })
	url := "http://" + set.Addr("127.0.0.1:0") + "/metrics"
	deadline := time.Now().Add(5 * time.Minute) // hang guard: the first Stats reads every row
	for {
		if body := scrapeTB(tb, url); strings.Contains(body, want) {
			return url
		}
		if time.Now().After(deadline) {
			tb.Fatalf("queue gauges never showed %s", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func scrapeTB(tb testing.TB, url string) string {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(data)
}

// TestScrapeDoesNotTouchStore: a scrape serves the queue gauges from the
// last background refresh; it makes no call to the store.
func TestScrapeDoesNotTouchStore(t *testing.T) {
	be, err := sqlite.Open(filepath.Join(t.TempDir(), "nuvom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	fill(t, be, 1000, []string{"default", "mail"})
	cb := &countingBackend{Backend: be}
	url := startMetrics(t, cb, `nuvom_queue_size{queue="mail",state="queued"} 500`)
	before := cb.reads.Load()
	for range 20 {
		scrapeTB(t, url)
	}
	if n := cb.reads.Load() - before; n != 0 {
		t.Fatalf("20 scrapes made %d calls to the store, want 0", n)
	}
}

// BenchmarkScrapeMillionQueued measures one /metrics scrape over loopback
// HTTP with 1,000,000 queued jobs (4 queues) in a real SQLite store, and
// reports how many store calls the scrapes made (store-calls/op, 0: the
// gauges come from the background refresh). The refresh sub-benchmark
// measures what the background refresher pays every refresh period (one
// Stats over the million rows). NUVOM_BENCH_QUEUED overrides the row count.
func BenchmarkScrapeMillionQueued(b *testing.B) {
	n := 1_000_000
	if v := benchQueued(); v > 0 {
		n = v
	}
	be, err := sqlite.Open(filepath.Join(b.TempDir(), "million.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	queues := []string{"default", "mail", "images", "reports"}
	start := time.Now()
	fill(b, be, n, queues)
	b.Logf("enqueued %d jobs in %v", n, time.Since(start))
	cb := &countingBackend{Backend: be}
	url := startMetrics(b, cb, fmt.Sprintf(`nuvom_queue_size{queue="reports",state="queued"} %d`, n/len(queues)))

	b.Run("scrape", func(b *testing.B) {
		before := cb.reads.Load()
		b.ResetTimer()
		for range b.N {
			scrapeTB(b, url)
		}
		b.StopTimer()
		b.ReportMetric(float64(cb.reads.Load()-before)/float64(b.N), "store-calls/op")
	})
	b.Run("refresh", func(b *testing.B) {
		in := nuvom.NewInspector(be)
		for range b.N {
			st, err := in.Stats(context.Background())
			if err != nil || len(st) != len(queues) {
				b.Fatalf("Stats = %v, %v", st, err)
			}
		}
	})
}

// benchQueued reads NUVOM_BENCH_QUEUED (0 when unset or invalid).
func benchQueued() int {
	var v int
	if _, err := fmt.Sscan(os.Getenv("NUVOM_BENCH_QUEUED"), &v); err != nil {
		return 0
	}
	return v
}
