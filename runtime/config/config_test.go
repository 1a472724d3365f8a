package config

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func moduleDir(t *testing.T) (root, sub string) {
	t.Helper()
	root = t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub = filepath.Join(root, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	return root, sub
}

func TestDefaultsUseTheModuleRoot(t *testing.T) {
	root, sub := moduleDir(t)
	c, err := Load(sub, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Root != root {
		t.Fatalf("root %s, want %s", c.Root, root)
	}
	want := []Entry{
		{"NUVOM_BACKEND", "sqlite", "default"},
		{"NUVOM_DB", filepath.Join(root, ".nuvom", "nuvom.db"), "default"},
		{"NUVOM_QUEUE_DIR", filepath.Join(root, ".nuvom", "queue"), "default"},
		{"NUVOM_SQLITE_SYNC", "NORMAL", "default"},
		{"NUVOM_CONCURRENCY", c.Entries()[4].Value, "default"},
		{"NUVOM_QUEUES", "", "default"},
		{"NUVOM_GRACE", "10s", "default"},
		{"NUVOM_LEASE", "5s", "default"},
		{"NUVOM_POLL_INTERVAL", "1s", "default"},
		{"NUVOM_LOG_FORMAT", "text", "default"},
		{"NUVOM_LOG_LEVEL", "info", "default"},
		{"NUVOM_SCHEDULER_BACKEND", "sqlite", "default: as NUVOM_BACKEND"},
		{"NUVOM_REDIS_URL", "redis://127.0.0.1:6379/0", "default"},
		{"NUVOM_CLAIM_AHEAD", "false", "default"},
		{"NUVOM_KEEP_FINISHED_FOR", "0s", "default"},
		{"NUVOM_KEEP_FINISHED", "0", "default"},
	}
	if got := c.Entries(); !slices.Equal(got, want) {
		t.Fatalf("entries\n%v\nwant\n%v", got, want)
	}
	if !slices.Equal(VarNames(), []string{"NUVOM_BACKEND", "NUVOM_DB", "NUVOM_QUEUE_DIR", "NUVOM_SQLITE_SYNC", "NUVOM_CONCURRENCY",
		"NUVOM_QUEUES", "NUVOM_GRACE", "NUVOM_LEASE", "NUVOM_POLL_INTERVAL", "NUVOM_LOG_FORMAT", "NUVOM_LOG_LEVEL", "NUVOM_SCHEDULER_BACKEND", "NUVOM_REDIS_URL", "NUVOM_CLAIM_AHEAD",
		"NUVOM_KEEP_FINISHED_FOR", "NUVOM_KEEP_FINISHED"}) {
		t.Fatalf("VarNames %v", VarNames())
	}
}

func TestNoModuleMeansTheDirectory(t *testing.T) {
	dir := t.TempDir() // no go.mod up to / on a test machine's temp dir is not guaranteed, so check the rule directly
	if got := moduleRoot(dir); got != dir {
		if _, err := os.Stat(filepath.Join(got, "go.mod")); err != nil {
			t.Fatalf("root %s holds no go.mod", got)
		}
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	root, sub := moduleDir(t)
	c, err := Load(sub, env(map[string]string{
		"NUVOM_BACKEND": "File", "NUVOM_DB": "data/x.db", "NUVOM_QUEUE_DIR": "/abs/q", "NUVOM_SQLITE_SYNC": "full",
		"NUVOM_CONCURRENCY": "7", "NUVOM_QUEUES": "hi, lo,", "NUVOM_CLAIM_AHEAD": "TRUE", "NUVOM_GRACE": "1m", "NUVOM_LEASE": "30s", "NUVOM_POLL_INTERVAL": "50ms",
		"NUVOM_LOG_FORMAT": "json", "NUVOM_LOG_LEVEL": "debug", "NUVOM_SCHEDULER_BACKEND": "Memory",
		"NUVOM_REDIS_URL": "redis://127.0.0.1:1/0", "NUVOM_KEEP_FINISHED_FOR": "720h",
		"NUVOM_KEEP_FINISHED": "100000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend.Value != "file" || c.Backend.Source != "env NUVOM_BACKEND" {
		t.Errorf("backend %+v", c.Backend)
	}
	if c.DB.Value != filepath.Join(root, "data", "x.db") {
		t.Errorf("relative db path %s not under the root", c.DB.Value)
	}
	if c.QueueDir.Value != filepath.Clean("/abs/q") || c.SQLiteSync.Value != "FULL" || c.Concurrency.Value != 7 ||
		!slices.Equal(c.Queues.Value, []string{"hi", "lo"}) || c.Grace.Value != time.Minute ||
		c.Lease.Value != 30*time.Second || c.WorkerOptions().LeaseFor != 30*time.Second ||
		c.PollInterval.Value != 50*time.Millisecond || c.LogFormat.Value != "json" || c.LogLevel.Value != slog.LevelDebug {
		t.Errorf("config %+v", c)
	}
	for _, e := range c.Entries() {
		if e.Source != "env "+e.Name {
			t.Errorf("%s source %q", e.Name, e.Source)
		}
	}
	if err := c.Set("NUVOM_CONCURRENCY", "3", "flag --concurrency"); err != nil || c.Concurrency.Value != 3 || c.Concurrency.Source != "flag --concurrency" {
		t.Errorf("flag override: %v %+v", err, c.Concurrency)
	}
	wo := c.WorkerOptions()
	if wo.Concurrency != 3 || !wo.ClaimAhead || wo.KeepFinishedFor != 720*time.Hour || wo.KeepFinished != 100000 || wo.Grace != time.Minute || wo.PollInterval != 50*time.Millisecond || !slices.Equal(wo.Queues, []string{"hi", "lo"}) {
		t.Errorf("worker options %+v", wo)
	}
}

func TestBadValuesNameVariableAndValue(t *testing.T) {
	cases := []struct{ name, value string }{
		{"NUVOM_BACKEND", "post gres!"},
		{"NUVOM_SCHEDULER_BACKEND", "postgres"},
		{"NUVOM_REDIS_URL", "http://127.0.0.1:6379"},
		{"NUVOM_SQLITE_SYNC", "OFF"},
		{"NUVOM_CONCURRENCY", "0"},
		{"NUVOM_CONCURRENCY", "many"},
		{"NUVOM_QUEUES", " , "},
		{"NUVOM_CLAIM_AHEAD", "maybe"},
		{"NUVOM_KEEP_FINISHED_FOR", "-1h"},
		{"NUVOM_KEEP_FINISHED_FOR", "a month"},
		{"NUVOM_KEEP_FINISHED_FOR", "10s"},
		{"NUVOM_KEEP_FINISHED", "-5"},
		{"NUVOM_KEEP_FINISHED", "lots"},
		{"NUVOM_GRACE", "soon"},
		{"NUVOM_LEASE", "10ms"},
		{"NUVOM_POLL_INTERVAL", "0s"},
		{"NUVOM_LOG_FORMAT", "xml"},
		{"NUVOM_LOG_LEVEL", "loud"},
	}
	for _, c := range cases {
		_, err := Load(t.TempDir(), env(map[string]string{c.name: c.value}))
		if err == nil {
			t.Errorf("%s=%q accepted", c.name, c.value)
			continue
		}
		if !strings.Contains(err.Error(), c.name) || !strings.Contains(err.Error(), `"`+c.value+`"`) {
			t.Errorf("%s=%q: error %q does not name both", c.name, c.value, err)
		}
	}
}

// TestConcurrencyIsCapped: 10,000,000 ran a worker out of memory; values
// above MaxConcurrency are refused with a message naming the setting, where it
// came from and the cap.
func TestConcurrencyIsCapped(t *testing.T) {
	c, err := Load(t.TempDir(), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("NUVOM_CONCURRENCY", fmt.Sprint(MaxConcurrency), "flag --concurrency"); err != nil {
		t.Fatalf("the cap itself is refused: %v", err)
	}
	err = c.Set("NUVOM_CONCURRENCY", "10000000", "flag --concurrency")
	if err == nil {
		t.Fatal("10000000 accepted")
	}
	for _, want := range []string{"NUVOM_CONCURRENCY", "flag --concurrency", `"10000000"`, "at most 10000"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if c.Concurrency.Value != MaxConcurrency {
		t.Errorf("a refused value changed the setting to %d", c.Concurrency.Value)
	}
}

// TestGraceZeroMeansNone: NUVOM_GRACE=0 (or --grace 0s) is no grace period,
// not the worker's 10 s default: the worker options carry NoGrace.
func TestGraceZeroMeansNone(t *testing.T) {
	c, err := Load(t.TempDir(), env(map[string]string{"NUVOM_GRACE": "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Grace.Value != 0 || c.Entries()[6].Value != "0s" {
		t.Errorf("grace %v, entry %+v", c.Grace.Value, c.Entries()[6])
	}
	if g := c.WorkerOptions().Grace; g >= 0 || g != NoGrace {
		t.Errorf("WorkerOptions().Grace = %v, want NoGrace (negative: zero would mean the default)", g)
	}
	if err := c.Set("NUVOM_GRACE", "1ns", "flag --grace"); err != nil || c.WorkerOptions().Grace != time.Nanosecond {
		t.Errorf("1ns: %v %v", err, c.WorkerOptions().Grace)
	}
	d, err := Load(t.TempDir(), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if g := d.WorkerOptions().Grace; g != nuvom.DefaultGrace {
		t.Errorf("default grace %v", g)
	}
	if err := d.Set("NUVOM_GRACE", "-1s", "flag --grace"); err == nil {
		t.Error("a negative grace is accepted")
	}
}

// TestHugeBadValueIsClipped: the error echoes the start of a bad value and its size.
func TestHugeBadValueIsClipped(t *testing.T) {
	raw := strings.Repeat("q", 1<<20)
	_, err := Load(t.TempDir(), env(map[string]string{"NUVOM_LOG_FORMAT": raw}))
	if err == nil || len(err.Error()) > 300 || !strings.Contains(err.Error(), "(1048576 bytes)") {
		t.Fatalf("error of %d bytes: %.300v", len(fmt.Sprint(err)), err)
	}
}

// TestOpenReadOnlyClient reads what a writer stored and creates nothing.
func TestOpenReadOnlyClient(t *testing.T) {
	ctx := context.Background()
	_, sub := moduleDir(t)
	c, err := Load(sub, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenReadOnlyClient(ctx); err == nil {
		t.Fatal("opened a missing database")
	}
	if _, err := os.Stat(filepath.Dir(c.DB.Value)); err == nil {
		t.Fatalf("a read-only open created %s", filepath.Dir(c.DB.Value))
	}
	w, err := c.OpenClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spec := nuvom.TaskSpec{Name: "t", Signature: "s", Options: nuvom.TaskOptions{Queue: "default"}}
	res, err := w.Enqueue(ctx, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := c.OpenReadOnlyClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if j, err := r.Get(ctx, res.ID); err != nil || j.Task != "t" {
		t.Fatalf("Get: %v %v", j, err)
	}
	if _, err := r.Enqueue(ctx, spec, nil); err == nil {
		t.Fatal("a read-only client enqueued")
	}
}

func TestOpenBackends(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"memory", "sqlite", "file"} {
		t.Run(kind, func(t *testing.T) {
			_, sub := moduleDir(t)
			c, err := Load(sub, env(map[string]string{"NUVOM_BACKEND": kind}))
			if err != nil {
				t.Fatal(err)
			}
			client, err := c.OpenClient(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			spec := nuvom.TaskSpec{Name: "t", Options: nuvom.TaskOptions{Queue: "q"}}
			res, err := client.Enqueue(ctx, spec, []byte{0x90})
			if err != nil {
				t.Fatal(err)
			}
			j, err := client.Get(ctx, res.ID)
			if err != nil || j.State != nuvom.StateQueued {
				t.Fatalf("get: %v %v", j, err)
			}
			switch kind {
			case "sqlite":
				if _, err := os.Stat(c.DB.Value); err != nil {
					t.Fatalf("database not created: %v", err)
				}
			case "file":
				if _, err := os.Stat(c.QueueDir.Value); err != nil {
					t.Fatalf("queue dir not created: %v", err)
				}
			}
		})
	}
}

func TestScheduleStoreFollowsBackend(t *testing.T) {
	_, sub := moduleDir(t)
	ctx := context.Background()
	for _, tc := range []struct{ backend, sched, want string }{
		{"sqlite", "", "*sqlitestore.Store"}, {"file", "", "*filestore.Store"}, {"memory", "", "*schedule.MemoryStore"},
		{"sqlite", "file", "*filestore.Store"},
	} {
		c, err := Load(sub, env(map[string]string{"NUVOM_BACKEND": tc.backend, "NUVOM_SCHEDULER_BACKEND": tc.sched}))
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.OpenScheduleStore(ctx)
		if err != nil {
			t.Fatalf("%s/%s: %v", tc.backend, tc.sched, err)
		}
		if got := fmt.Sprintf("%T", s); got != tc.want {
			t.Errorf("backend %s scheduler %q: store %s, want %s", tc.backend, tc.sched, got, tc.want)
		}
		s.Close()
	}
	// A client from OpenClient can schedule, through the configured store.
	c, err := Load(sub, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.OpenClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := cl.Schedule(ctx, nuvom.TaskSpec{Name: "a.B"}, nil, nuvom.Every(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := c.OpenScheduleStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if sc, err := s.Get(ctx, id); err != nil || sc.Task.Name != "a.B" {
		t.Fatalf("stored schedule %+v, %v", sc, err)
	}
}
