package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/internal/redistest"
)

// TestBenchRedis: nuvom bench --backend redis --redis-url measures the Redis
// it is given (a real redis-server here): every job burned down, a pickup
// latency measured, and afterwards none of its keys left in that Redis.
func TestBenchRedis(t *testing.T) {
	srv := redistest.Start(t)
	var out, errOut bytes.Buffer
	code := run([]string{"bench", "--backend", "redis", "--redis-url", srv.URL(2), "--jobs", "500",
		"--batch", "100", "--concurrency", "16", "--latency-samples", "5", "--json"},
		nil, &out, &errOut, func(string) string { return "" })
	if code != 0 {
		t.Fatalf("nuvom bench exited %d: %s", code, errOut.String())
	}
	var rep struct {
		Backend       string  `json:"backend"`
		Jobs          int     `json:"jobs"`
		BurnDownRate  float64 `json:"burn_down_jobs_per_s"`
		PickupSamples int     `json:"pickup_samples"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report %q: %v", out.String(), err)
	}
	if rep.Backend != "redis" || rep.Jobs != 500 || rep.BurnDownRate <= 0 || rep.PickupSamples != 5 {
		t.Errorf("report %s: want the redis backend, 500 jobs burned down and 5 pickup samples", out.String())
	}
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, DB: 2})
	defer c.Close()
	n, err := c.DBSize(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		keys, _ := c.Keys(context.Background(), "*").Result()
		t.Errorf("%d keys left in the measured Redis after the bench: %v", n, keys[:min(5, len(keys))])
	}
}
