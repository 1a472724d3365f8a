package config

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/schedule"
)

func TestRedisURLRedactedAndCluster(t *testing.T) {
	c, err := Load(t.TempDir(), env(map[string]string{"NUVOM_BACKEND": "redis",
		"NUVOM_REDIS_URL": "rediss://worker:s3cret@redis.internal:6380/2"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.Entries() {
		if strings.Contains(e.Value, "s3cret") {
			t.Fatalf("entry %s shows the password: %s", e.Name, e.Value)
		}
	}
	u, cl, p, err := redisURL("redis+cluster://a:1?addr=b:2&prefix=x&keep_finished=10&keep_finished_for=1h")
	if err != nil || !cl || u != "redis://a:1?addr=b%3A2" || p != (redisParams{"x", 10, time.Hour}) {
		t.Fatalf("redis+cluster URL parsed as %s cluster=%v %+v %v", u, cl, p, err)
	}
	if _, err := Load(t.TempDir(), env(map[string]string{"NUVOM_REDIS_URL": "redis://a:1?keep_finished=many"})); err == nil ||
		!strings.Contains(err.Error(), "keep_finished") {
		t.Fatalf("a bad keep_finished: %v", err)
	}
}

// TestRedisBackendAndStore opens the backend and the schedule store that
// NUVOM_BACKEND=redis selects, on a private redis-server, and round-trips a job.
func TestRedisBackendAndStore(t *testing.T) {
	srv := redistest.Start(t)
	c, err := Load(t.TempDir(), env(map[string]string{"NUVOM_BACKEND": "redis", "NUVOM_REDIS_URL": srv.URL(3)}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := c.OpenBackend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	now := time.Now().UTC().Truncate(time.Microsecond)
	j := &backend.Job{ID: "01J0000000000000000000000A", Task: "t", Queue: "default", State: backend.StateQueued,
		MaxAttempts: 1, RunAt: now, CreatedAt: now}
	if _, err := b.Enqueue(ctx, []*backend.Job{j}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, j.ID); err != nil || got.Task != "t" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	s, err := c.OpenScheduleStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, "none"); err == nil || !strings.Contains(err.Error(), schedule.ErrNotFound.Error()) {
		t.Fatalf("Get of a missing schedule: %v", err)
	}
}
