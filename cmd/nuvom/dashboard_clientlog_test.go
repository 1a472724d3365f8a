package main

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/runtime/dashboard"
	"github.com/nuvom/nuvom/runtime/memory"
	"github.com/nuvom/nuvom/runtime/redis"
)

// TestDashboardLogsRedisClientLines: nuvom dashboard, a process that runs
// for days, logs the lines go-redis logs by itself (a failed dial, a
// Sentinel's "new master") through its logger, as the worker does once its
// backend is open; the CLI drops them (run) only for its one-shot commands,
// whose failed call returns the error. The line here comes from a client
// dialling a port nobody listens on.
func TestDashboardLogsRedisClientLines(t *testing.T) {
	redis.RouteClientLogs(nil) // what run does for every command
	t.Cleanup(func() { redis.RouteClientLogs(nil) })
	var out, errOut syncBuffer
	a := &app{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }, wd: t.TempDir(), process: true}
	opts := dashboard.Options{Backend: memory.New(),
		Logger: slog.New(slog.NewTextHandler(&errOut, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() { done <- a.serveDashboard(ctx, "127.0.0.1:0", opts) }()
	defer func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("dashboard exited %d: %s", code, errOut.String())
		}
	}()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(out.String(), "nuvom dashboard on"); {
		if time.Now().After(deadline) { // hang guard
			t.Fatalf("the dashboard never said it serves; stderr:\n%s", errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	c := goredis.NewClient(&goredis.Options{Addr: closed, MaxRetries: -1})
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err == nil {
		t.Fatalf("PING to %s answered", closed)
	}
	if got := errOut.String(); !strings.Contains(got, "failed to dial") || !strings.Contains(got, "from=go-redis") {
		t.Errorf("dashboard stderr = %q, want go-redis's failed-dial line through the dashboard's logger", got)
	}
}
