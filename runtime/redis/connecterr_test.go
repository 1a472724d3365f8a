package redis

import (
	"context"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/internal/redistest"
)

// TestOpenTLSOnPlainPort: a rediss:// URL (TLS) pointed at a Redis that does
// not speak TLS must fail with an error that says so, not a bare "context
// deadline exceeded" after half a minute of silent retries.
func TestOpenTLSOnPlainPort(t *testing.T) {
	srv := redistest.Start(t)
	_, err := Open("rediss://" + srv.Addr + "/0?dial_timeout=1s")
	if err == nil {
		t.Fatal("Open of a rediss:// URL on a plain Redis succeeded")
	}
	for _, want := range []string{srv.Addr, "TLS", "redis://"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestOpenPasswordMistakes: a missing or wrong password is named as such,
// with the URL form that carries one.
func TestOpenPasswordMistakes(t *testing.T) {
	srv := redistest.Start(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	if err := c.ConfigSet(context.Background(), "requirepass", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	for _, tc := range []struct{ url, want string }{
		{"redis://" + srv.Addr + "/0", "wants a password"},
		{"redis://:wrong@" + srv.Addr + "/0", "user or password is wrong"},
	} {
		_, err := Open(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), srv.Addr) {
			t.Errorf("Open(%s) = %v, want an error naming %s and saying %q", tc.url, err, srv.Addr, tc.want)
		}
	}
	b, err := Open("redis://:s3cret@" + srv.Addr + "/0")
	if err != nil {
		t.Fatalf("Open with the right password: %v", err)
	}
	b.Close()
}

// TestOpenSentinelErrorNamesNoPlaceholder: a Sentinel URL's connect error
// does not name go-redis's placeholder address "FailoverClient".
func TestOpenSentinelErrorNamesNoPlaceholder(t *testing.T) {
	srv := redistest.Start(t) // a plain Redis, not a sentinel
	_, err := Open("redis://" + srv.Addr + "/0?master_name=mymaster")
	if err == nil || strings.Contains(err.Error(), "FailoverClient") || !strings.Contains(err.Error(), "sentinel") {
		t.Fatalf("Open of a Sentinel URL on a plain Redis: %v, want the sentinels' error without \"FailoverClient\"", err)
	}
}

// TestOpenClusterURLOnStandalone: a redis+cluster:// URL (WithCluster) on a
// standalone Redis says to use redis://.
func TestOpenClusterURLOnStandalone(t *testing.T) {
	srv := redistest.Start(t)
	_, err := Open("redis://"+srv.Addr, WithCluster(true))
	if err == nil || !strings.Contains(err.Error(), srv.Addr) || !strings.Contains(err.Error(), "use redis://") {
		t.Fatalf("Open of a cluster URL on a standalone Redis: %v, want an error naming %s and saying to use redis://", err, srv.Addr)
	}
}
