package redisstore

import (
	"context"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/internal/redistest"
)

// TestOpenNamesPasswordMistake: the schedule store's connect error names the
// address and says that the server wants a password (as the backend's does).
func TestOpenNamesPasswordMistake(t *testing.T) {
	srv := redistest.Start(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	if err := c.ConfigSet(context.Background(), "requirepass", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	_, err := Open("redis://"+srv.Addr+"/0", "", false)
	if err == nil || !strings.Contains(err.Error(), srv.Addr) || !strings.Contains(err.Error(), "wants a password") {
		t.Fatalf("Open without the password: %v, want an error naming %s and saying it wants a password", err, srv.Addr)
	}
}
