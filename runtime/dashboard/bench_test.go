package dashboard_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom/manifest/jsonargs"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/dashboard"
	"github.com/nuvom/nuvom/runtime/schedule"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

var benchJobs = flag.Int("dashboard.jobs", 1_000_000, "jobs in the store of BenchmarkPages")

// BenchmarkPages serves every page and API call of the dashboard from a
// SQLite store holding -dashboard.jobs jobs (default 1,000,000: 94%
// succeeded, 5% failed, 1% queued, a few quarantined, over 5 tasks and 3
// queues, plus a week of per-minute aggregates) and reports each page's
// server time: first-ms for the first view after the dashboard started,
// then p50-ms and p95-ms over the iterations (run with -benchtime 20x or
// more for meaningful quantiles).
func BenchmarkPages(b *testing.B) {
	n := *benchJobs
	path := filepath.Join(b.TempDir(), "nuvom.db")
	start := time.Now()
	ids := fill(b, path, n)
	b.Logf("filled %d jobs in %s", n, time.Since(start).Round(time.Millisecond))
	st, err := sqlite.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	h, err := dashboard.New(dashboard.Options{Backend: st, Manifest: testManifest(), Schedules: schedule.NewMemoryStore()})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	mid := ids[len(ids)/2]
	pages := []struct{ name, path string }{
		{"overview", "/"},
		{"queues", "/queues"},
		{"jobs", "/jobs"},
		{"jobs-deep-page", "/jobs?after=" + mid},
		{"jobs-failed", "/jobs?state=failed"},
		{"jobs-failed-deep", "/jobs?state=failed&after=" + mid},
		{"jobs-queued", "/jobs?state=queued"},
		{"jobs-task", "/jobs?task=shop.Echo"},
		{"jobs-queue-state", "/jobs?queue=emails&state=succeeded"},
		{"jobs-time-range", "/jobs?since=2030-01-01T00:00&until=2030-01-01T01:00"},
		{"jobs-search-id", "/jobs?q=" + mid},
		{"jobs-search-unique-key", "/jobs?q=order-77"},
		{"jobs-search-args", "/jobs?q=needle"},
		{"job", "/jobs/" + mid},
		{"tasks", "/tasks"},
		{"schedules", "/schedules"},
		{"workers", "/workers"},
		{"quarantine", "/quarantine"},
		{"api-live", "/api/live"},
	}
	first := map[string]time.Duration{}
	// The first view of the Overview. With a backend whose Stats scans
	// (the file backend) it shows "Counting the jobs" while the first
	// count (started with the dashboard) runs; SQLite's counters answer at
	// once. Steady state is measured once the count is done.
	for i := 0; ; i++ {
		req := httptest.NewRequest("GET", "/", nil)
		rec := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(rec, req)
		if i == 0 {
			first["overview"] = time.Since(t0)
		}
		if !strings.Contains(rec.Body.String(), "Counting the jobs") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			// The first view of each page, once per process (the counts by
			// state and the history's closed buckets are read at start, in
			// the background, then shared), is reported apart.
			if _, ok := first[p.name]; !ok {
				req := httptest.NewRequest("GET", p.path, nil)
				rec := httptest.NewRecorder()
				t0 := time.Now()
				h.ServeHTTP(rec, req)
				first[p.name] = time.Since(t0)
			}
			var times []time.Duration
			for b.Loop() {
				req := httptest.NewRequest("GET", p.path, nil)
				rec := httptest.NewRecorder()
				t0 := time.Now()
				h.ServeHTTP(rec, req)
				times = append(times, time.Since(t0))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s = %d: %s", p.path, rec.Code, rec.Body.String())
				}
			}
			slices.Sort(times)
			q := func(f float64) float64 {
				return float64(times[min(len(times)-1, int(f*float64(len(times))))]) / 1e6
			}
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.95), "p95-ms")
			b.ReportMetric(float64(first[p.name])/1e6, "first-ms") // after the loop: b.Loop resets reported metrics
		})
	}
}

// fill writes n jobs through the backend's Enqueue, then gives them their
// final states with plain SQL (claiming and completing a million jobs would
// measure the queue, not the dashboard), and a week of aggregates. It
// returns the ids, oldest first.
func fill(b *testing.B, path string, n int) []string {
	st, err := sqlite.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	m := testManifest()
	tasks := []string{"shop.Echo", "shop.Resize", "shop.Mail", "shop.Bill", "shop.Sync"}
	queues := []string{"default", "emails", "images"}
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ids := make([]string, 0, n)
	ctx := context.Background()
	batch := make([]*backend.Job, 0, 5000)
	for i := 0; i < n; i++ {
		at := base.Add(time.Duration(i) * 10 * time.Millisecond)
		id := ulid.MustNew(ulid.Timestamp(at), ulidEntropy(uint64(i))).String()
		ids = append(ids, id)
		msg := fmt.Sprintf("hello %d", i)
		if i == n/3 {
			msg = "needle in the haystack"
		}
		args, err := jsonargs.Encode(&m.Tasks[0], []byte(fmt.Sprintf(`[%q, %d]`, msg, i)))
		if err != nil {
			b.Fatal(err)
		}
		j := &backend.Job{ID: id, Task: tasks[i%len(tasks)], Args: args, Queue: queues[i%len(queues)], State: backend.StateQueued,
			MaxAttempts: 3, RunAt: at, CreatedAt: at, TimeoutPolicy: backend.TimeoutFail}
		if i%1000 == 77 {
			j.UniqueKey, j.UniqueUntil = fmt.Sprintf("order-%d", i), at.Add(time.Hour)
		}
		batch = append(batch, j)
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := st.Enqueue(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`UPDATE jobs SET state = 'succeeded', attempt = 1, started_at = created_at, finished_at = created_at + 5000000 WHERE rowid % 100 >= 6`,
		`UPDATE jobs SET state = 'failed', attempt = 3, error = 'boom: the service said no', finished_at = created_at + 5000000 WHERE rowid % 100 BETWEEN 1 AND 5`,
		`UPDATE jobs SET state = 'quarantined', error = 'cannot decode args' WHERE rowid % 100000 = 50`,
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	// A week of aggregates for every task and queue.
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Minute)
	ins, err := tx.Prepare(`INSERT OR REPLACE INTO nuvom_minutes (minute, queue, task, succeeded, failed, duration, h3, h5) VALUES (?, ?, ?, 50, 2, 600000000, 40, 12)`)
	if err != nil {
		b.Fatal(err)
	}
	for m := now.Add(-7 * 24 * time.Hour); !m.After(now); m = m.Add(time.Minute) {
		for _, q := range queues {
			for _, t := range tasks {
				if _, err := ins.Exec(m.UnixNano(), q, t); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	// The hourly roll-up the store keeps beside the minutes (whole-hour
	// charts read it).
	if _, err := tx.Exec(`INSERT INTO nuvom_hours (hour, queue, task, succeeded, failed, duration, h3, h5)
		SELECT minute - minute % 3600000000000, queue, task, sum(succeeded), sum(failed), sum(duration), sum(h3), sum(h5)
		FROM nuvom_minutes GROUP BY 1, 2, 3`); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	// The plain SQL above changed states behind the backend's back: rebuild
	// the counters its Stats reads.
	if st, err = sqlite.Open(path); err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Recount(ctx); err != nil {
		b.Fatal(err)
	}
	return ids
}

type seqEntropy struct{ n uint64 }

func (s *seqEntropy) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	for i := 0; i < 8 && i < len(p); i++ {
		p[len(p)-1-i] = byte(s.n >> (8 * i))
	}
	return len(p), nil
}

func ulidEntropy(n uint64) *seqEntropy { return &seqEntropy{n: n} }
