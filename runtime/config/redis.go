package config

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/redis"
	"github.com/nuvom/nuvom/runtime/schedule"
	"github.com/nuvom/nuvom/runtime/schedule/redisstore"
)

// defaultRedisURL is NUVOM_REDIS_URL when unset.
const defaultRedisURL = "redis://127.0.0.1:6379/0"

// The URL forms NUVOM_REDIS_URL takes (runtime/redis.ParseURL):
//
//	redis://[user:password@]host:port[/db]        plain TCP (ACL user and password)
//	rediss://[user:password@]host:port[/db]       TLS
//	redis://host:port/db?master_name=mymaster&addr=host2:port   Sentinel
//	redis+cluster://[user:password@]host:port[?addr=host2:port] Redis Cluster
//
// A prefix=name query parameter puts every key under name (default nuvom):
// several installations can share one Redis.

// checkRedisURL checks the scheme of a Redis URL.
func checkRedisURL(v string) error {
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	switch u.Scheme {
	case "redis", "rediss", "redis+cluster", "rediss+cluster":
		return nil
	}
	return errors.New("want a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL")
}

// redisURL returns the URL go-redis parses, whether it names a cluster, and
// the key prefix its prefix= query parameter sets ("" when none).
func redisURL(v string) (string, bool, string) {
	u, err := url.Parse(v)
	if err != nil {
		return v, false, ""
	}
	q := u.Query()
	prefix := q.Get("prefix")
	q.Del("prefix")
	u.RawQuery = q.Encode()
	cluster := false
	switch u.Scheme {
	case "redis+cluster":
		u.Scheme, cluster = "redis", true
	case "rediss+cluster":
		u.Scheme, cluster = "rediss", true
	}
	return u.String(), cluster, prefix
}

// FreshRedisPrefix returns rawURL with its keys under the prefix
// nuvom-<name> (prefix= query parameter), for runs that must not touch the
// queue already on that Redis (nuvom bench).
func FreshRedisPrefix(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	q := u.Query()
	q.Set("prefix", "nuvom-"+name)
	u.RawQuery = q.Encode()
	return u.String()
}

// redactURL hides a URL's password (for `nuvom config`).
func redactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	return u.Redacted()
}

func (c Config) openRedisBackend() (nuvom.Backend, error) {
	raw, cluster, prefix := redisURL(c.RedisURL.Value)
	opts := []redis.Option{redis.WithCluster(cluster)}
	if prefix != "" {
		opts = append(opts, redis.WithPrefix(prefix))
	}
	b, err := redis.Open(raw, opts...)
	if err != nil {
		return nil, fmt.Errorf("open redis backend at %s: %w", redactURL(c.RedisURL.Value), err)
	}
	return b, nil
}

func (c Config) openRedisScheduleStore() (schedule.Store, error) {
	raw, cluster, prefix := redisURL(c.RedisURL.Value)
	s, err := redisstore.Open(raw, prefix, cluster)
	if err != nil {
		return nil, fmt.Errorf("open redis schedule store at %s: %w", redactURL(c.RedisURL.Value), err)
	}
	return s, nil
}
