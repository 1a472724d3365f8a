package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

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
// Nuvom's own query parameters (the others are go-redis's):
//
//	prefix=name              every key under name (default nuvom): several installations on one Redis
//	keep_finished=N          keep the newest N finished jobs per queue (retention; default all)
//	keep_finished_for=720h   delete finished jobs older than that (default never)

// checkRedisURL checks a Redis URL without connecting: its scheme, Nuvom's
// parameters, and what go-redis would refuse or fail to dial (options, ports).
// Its errors do not quote the URL (which may hold a password).
func checkRedisURL(v string) error {
	u, err := url.Parse(v)
	if err != nil {
		return notAURL(v, err)
	}
	if misplacedUserInfo(u) {
		return notAURL(v, errors.New("user info after the host"))
	}
	switch u.Scheme {
	case "redis", "rediss", "redis+cluster", "rediss+cluster":
		raw, cluster, _, err := redisURL(v)
		if err != nil {
			return err
		}
		return redis.CheckURL(raw, cluster)
	}
	return errors.New("want a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL")
}

// redisParams are the query parameters of NUVOM_REDIS_URL that are Nuvom's,
// not go-redis's.
type redisParams struct {
	prefix  string
	keep    int
	keepFor time.Duration
}

// redisURL returns the URL go-redis parses, whether it names a cluster, and
// Nuvom's own parameters (prefix=, keep_finished=, keep_finished_for=), taken out of it.
func redisURL(v string) (string, bool, redisParams, error) {
	var p redisParams
	u, err := url.Parse(v)
	if err != nil {
		return v, false, p, notAURL(v, err)
	}
	q := u.Query()
	p.prefix = q.Get("prefix")
	if s := q.Get("keep_finished"); s != "" {
		if p.keep, err = strconv.Atoi(s); err != nil || p.keep < 0 {
			return v, false, p, fmt.Errorf("keep_finished=%q: want a count of jobs per queue", s)
		}
	}
	if s := q.Get("keep_finished_for"); s != "" {
		if p.keepFor, err = time.ParseDuration(s); err != nil || p.keepFor < 0 {
			return v, false, p, fmt.Errorf("keep_finished_for=%q: want a Go duration such as 720h", s)
		}
	}
	for _, k := range []string{"prefix", "keep_finished", "keep_finished_for"} {
		q.Del(k)
	}
	u.RawQuery = q.Encode()
	cluster := false
	switch u.Scheme {
	case "redis+cluster":
		u.Scheme, cluster = "redis", true
	case "rediss+cluster":
		u.Scheme, cluster = "rediss", true
	}
	return u.String(), cluster, p, nil
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

// notAURL is url.Parse's error for v without the URL it quotes (which may
// hold a password). When v has user info (an '@' after the scheme), the
// detail is left out too: it can quote part of a password ("invalid port
// \":<start of the password>\"" when the password holds a '/'), which is
// then the likely mistake, and said.
func notAURL(v string, err error) error {
	if _, rest, ok := strings.Cut(v, "://"); ok && strings.Contains(rest, "@") {
		return errors.New("not a URL (a password holding '/', '?', '#', '@' or '%' must be percent-encoded: %2F, %3F, %23, %40, %25)")
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	return fmt.Errorf("not a URL: %w", err)
}

// misplacedUserInfo reports a URL that parsed without user info but has an
// '@' in its path or fragment: a password holding a '/' or '#', not
// percent-encoded, after digits that parsed as a port (":1234/rest@host").
// A Redis URL's path is a database number, so no such URL can be meant.
func misplacedUserInfo(u *url.URL) bool {
	return u.User == nil && (strings.Contains(u.Path, "@") || strings.Contains(u.Fragment, "@"))
}

// redactURL hides a URL's password (for `nuvom config` and errors), also in
// a URL that does not parse: whatever lies between the user's colon and the
// last @ (a password that is not percent-encoded may hold '/', '?' or '#',
// which would end the authority).
func redactURL(v string) string {
	u, err := url.Parse(v)
	if err == nil && !misplacedUserInfo(u) {
		if u.User == nil {
			return v
		}
		return u.Redacted()
	}
	start := strings.Index(v, "://")
	if start < 0 {
		return v
	}
	start += len("://")
	at := strings.LastIndex(v[start:], "@")
	if at < 0 {
		return v
	}
	colon := strings.Index(v[start:start+at], ":")
	if colon < 0 {
		return v
	}
	return v[:start+colon+1] + "xxxxx" + v[start+at:]
}

func (c Config) openRedisBackend() (nuvom.Backend, error) {
	raw, cluster, p, err := redisURL(c.RedisURL.Value)
	if err != nil {
		return nil, fmt.Errorf("open redis backend: %w", err)
	}
	opts := []redis.Option{redis.WithCluster(cluster), redis.WithRetention(p.keep, p.keepFor)}
	if p.prefix != "" {
		opts = append(opts, redis.WithPrefix(p.prefix))
	}
	b, err := redis.Open(raw, opts...)
	if err != nil {
		return nil, fmt.Errorf("open redis backend at %s: %w", redactURL(c.RedisURL.Value), err)
	}
	return b, nil
}

func (c Config) openRedisScheduleStore() (schedule.Store, error) {
	raw, cluster, p, err := redisURL(c.RedisURL.Value)
	if err != nil {
		return nil, fmt.Errorf("open redis schedule store: %w", err)
	}
	s, err := redisstore.Open(raw, p.prefix, cluster)
	if err != nil {
		return nil, fmt.Errorf("open redis schedule store at %s: %w", redactURL(c.RedisURL.Value), err)
	}
	return s, nil
}
