package config

import (
	"strings"
	"testing"
)

// TestRedisURLMistakesAtLoad: a Redis URL that cannot work is refused when
// the settings are read (nuvom config, before any dial or build), naming
// NUVOM_REDIS_URL and what in it is wrong; a URL that can work is accepted.
func TestRedisURLMistakesAtLoad(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"redis://127.0.0.1:99999/0", `port "99999"`},
		{"redis://127.0.0.1:0/0", `port "0"`},
		{"redis://127.0.0.1:6379/0?bogus=1", "bogus"},
		{"redis://127.0.0.1:6379/0?dial_timeout=fast", "dial_timeout"},
		{"redis://127.0.0.1:6379/x", `database number: "x"`},
		{"redis://sentinel:26379/0?master_name=m&addr=other:70000", `port "70000"`},
		{"redis+cluster://node1:7000?addr=node2:99999", `port "99999"`},
		{"redis+cluster://node1:7000?bogus=1", "bogus"},
	} {
		_, err := Load(t.TempDir(), env(map[string]string{"NUVOM_BACKEND": "redis", "NUVOM_REDIS_URL": tc.url}))
		if err == nil || !strings.Contains(err.Error(), "NUVOM_REDIS_URL") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NUVOM_REDIS_URL=%s: err = %v, want one naming NUVOM_REDIS_URL and %s", tc.url, err, tc.want)
		}
	}
	for _, ok := range []string{
		"redis://127.0.0.1:6379/0",
		"redis://127.0.0.1/0",
		"redis://:pw@127.0.0.1:6379/0?dial_timeout=5s&pool_size=50&prefix=team-a&keep_finished=10",
		"rediss://user:pw@redis.internal:6380/2",
		"redis://s1:26379/0?master_name=mymaster&addr=s2:26379",
		"redis+cluster://node1:7000?addr=node2:7001&addr=node3:7002",
	} {
		if _, err := Load(t.TempDir(), env(map[string]string{"NUVOM_BACKEND": "redis", "NUVOM_REDIS_URL": ok})); err != nil {
			t.Errorf("NUVOM_REDIS_URL=%s refused: %v", ok, err)
		}
	}
}

// TestRedisURLErrorHidesPassword: a refused NUVOM_REDIS_URL is quoted in the
// error with its password hidden, as nuvom config shows it, even when the URL
// does not parse (errors end up in CI logs and terminals).
func TestRedisURLErrorHidesPassword(t *testing.T) {
	for _, u := range []string{
		"http://user:s3cret@h:6379/0",
		"redis://:s3cret@h:99999/0",
		"redis://:s3cret@h:6379/0?keep_finished=many",
		"redis://:s3cret@h:6379/0?bogus=1",
		"redis://user:s3cret@h:abc/0",
		"redis://:s3cret@h:6379/0\x7f",
	} {
		_, err := Load(t.TempDir(), env(map[string]string{"NUVOM_REDIS_URL": u}))
		if err == nil {
			t.Errorf("NUVOM_REDIS_URL=%q accepted", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "NUVOM_REDIS_URL") {
			t.Errorf("NUVOM_REDIS_URL=%q: err = %v, want it naming NUVOM_REDIS_URL without the password", u, err)
		}
	}
}

// TestRedisURLErrorHidesUnencodedPassword: a password holding '/', '?' or
// '#' not percent-encoded (a base64 secret pasted as is) makes the URL
// unparsable; the error hides every part of that password too (url.Parse's
// own message quotes the text before the '/' as an "invalid port"), and
// says what to encode.
func TestRedisURLErrorHidesUnencodedPassword(t *testing.T) {
	for _, u := range []string{
		"redis://:s3cr/3t+x=@h:6379/0",
		"redis://:s3cr#3t@h:6379/0",
		"redis://:s3cr?3t@h:6379/0",
		"redis://user:s3cr/3t@h:6379/0",
		"rediss+cluster://user:s3cr/3t@h:7000?addr=h2:7001",
		// Parsed, but wrongly: host ":1234", the rest path or fragment.
		"redis://:1234/s3cr3t@h:6379/0",
		"redis://user:1234#s3cr3t@h:6379/0",
	} {
		_, err := Load(t.TempDir(), env(map[string]string{"NUVOM_BACKEND": "redis", "NUVOM_REDIS_URL": u}))
		if err == nil {
			t.Errorf("NUVOM_REDIS_URL=%q accepted", u)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "s3cr") || strings.Contains(msg, "3t") || strings.Contains(msg, "1234") || !strings.Contains(msg, "percent-encoded") {
			t.Errorf("NUVOM_REDIS_URL=%q: err = %v, want no part of the password, and a word on percent-encoding", u, err)
		}
	}
}
