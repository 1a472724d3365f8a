package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// RouteClientLogs sends the lines that go-redis logs by itself (a connection
// pool that failed to dial, a dropped pub/sub connection, ...) to l at level
// Warn, instead of go-redis's default: unformatted "redis: <date> pool.go:..."
// lines on stderr, which break a command's one-line error and a worker's JSON
// logs. A nil l drops them: the call that needed the connection returns the
// same error. go-redis keeps one logger per process, so this is for a
// program's main (the nuvom CLI, the worker binary), not for libraries.
func RouteClientLogs(l *slog.Logger) {
	goredis.SetLogger(clientLog{l: l})
}

// clientLog adapts a *slog.Logger to go-redis's logging interface.
type clientLog struct{ l *slog.Logger }

// Printf logs one go-redis line at level Warn (nothing without a logger).
func (c clientLog) Printf(ctx context.Context, format string, v ...any) {
	if c.l == nil {
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	c.l.WarnContext(ctx, msg, "from", "go-redis")
}
