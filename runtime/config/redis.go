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

// redisURL returns the URL go-redis parses and whether it names a cluster.
func redisURL(v string) (string, bool) {
	u, err := url.Parse(v)
	if err != nil {
		return v, false
	}
	switch u.Scheme {
	case "redis+cluster":
		u.Scheme = "redis"
		return u.String(), true
	case "rediss+cluster":
		u.Scheme = "rediss"
		return u.String(), true
	}
	return v, false
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
	raw, cluster := redisURL(c.RedisURL.Value)
	b, err := redis.Open(raw, redis.WithCluster(cluster))
	if err != nil {
		return nil, fmt.Errorf("open redis backend at %s: %w", redactURL(c.RedisURL.Value), err)
	}
	return b, nil
}

func (c Config) openRedisScheduleStore() (schedule.Store, error) {
	raw, cluster := redisURL(c.RedisURL.Value)
	s, err := redisstore.Open(raw, "", cluster)
	if err != nil {
		return nil, fmt.Errorf("open redis schedule store at %s: %w", redactURL(c.RedisURL.Value), err)
	}
	return s, nil
}
