package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// ConnectError is the error of a first PING of c that failed with err. It
// names the address and says what a NOAUTH or WRONGPASS reply means, what a
// cluster URL on a standalone Redis needs, and, with TLS (rediss://), when
// the failure looks like a server that does not speak TLS: go-redis alone
// reports only "context deadline exceeded", after five dial timeouts.
func ConnectError(c goredis.UniversalClient, err error) error {
	var addr string
	var tlsOn, cluster bool
	switch cl := c.(type) {
	case *goredis.Client:
		addr, tlsOn = cl.Options().Addr, cl.Options().TLSConfig != nil
	case *goredis.ClusterClient:
		addr, tlsOn, cluster = strings.Join(cl.Options().Addrs, ","), cl.Options().TLSConfig != nil, true
	}
	what := "redis: connect"
	if addr != "" && addr != "FailoverClient" { // go-redis's placeholder for Sentinel: its error names the sentinels
		what += " to " + addr
	}
	var rec tls.RecordHeaderError
	if tlsOn && (errors.Is(err, context.DeadlineExceeded) || errors.As(err, &rec) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return fmt.Errorf("%s: %w (the URL is rediss://, TLS, and no TLS handshake completed: "+
			"if that port serves plain Redis, use redis://)", what, err)
	}
	switch msg := err.Error(); {
	case strings.HasPrefix(msg, "NOAUTH"):
		return fmt.Errorf("%s: %w (the server wants a password: "+
			"redis://:PASSWORD@host:port/db, or redis://USER:PASSWORD@... for an ACL user)", what, err)
	case strings.HasPrefix(msg, "WRONGPASS"):
		return fmt.Errorf("%s: %w (the URL's user or password is wrong)", what, err)
	case cluster && strings.Contains(msg, "cluster support disabled"):
		return fmt.Errorf("%s: %w (the URL is redis+cluster://: for a standalone Redis use redis://)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
