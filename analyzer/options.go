package analyzer

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nuvom/nuvom/manifest"
)

// optionKeys lists the annotation keys, in the order they are documented.
var optionKeys = []string{
	"name", "retries", "retry_delay", "backoff", "max_retry_delay", "timeout", "timeout_policy",
	"queue", "priority", "tags", "store_result", "version", "before", "after", "on_error",
}

// Keys returns the valid annotation keys.
func Keys() []string { return append([]string(nil), optionKeys...) }

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_./-]*$`)
	queueRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// optionProblem is a bad value at a pair's key.
type optionProblem struct {
	kv  KV
	msg string
}

// parsedOptions is what an annotation says: a task name if given, the options
// with defaults filled in, and the pair each hook came from.
type parsedOptions struct {
	name    string
	nameKV  *KV
	opts    manifest.Options
	hookKVs map[string]KV
}

// applyOptions turns pairs into options and reports every bad key or value.
func applyOptions(kvs []KV) (parsedOptions, []optionProblem) {
	p := parsedOptions{opts: manifest.DefaultOptions(), hookKVs: map[string]KV{}}
	var probs []optionProblem
	bad := func(kv KV, format string, args ...any) {
		probs = append(probs, optionProblem{kv, fmt.Sprintf(format, args...)})
	}
	duration := func(kv KV) (time.Duration, bool) {
		d, err := time.ParseDuration(kv.Value)
		if err != nil {
			bad(kv, "%s=%s: not a Go duration such as 30s or 1m30s", kv.Key, kv.Value)
			return 0, false
		}
		if d < 0 {
			bad(kv, "%s=%s: must not be negative", kv.Key, kv.Value)
			return 0, false
		}
		return d, true
	}
	integer := func(kv KV) (int, bool) {
		n, err := strconv.Atoi(kv.Value)
		if err != nil {
			bad(kv, "%s=%s: not an integer", kv.Key, kv.Value)
			return 0, false
		}
		return n, true
	}
	o := &p.opts
	for _, kv := range kvs {
		switch kv.Key {
		case "name":
			if !nameRE.MatchString(kv.Value) {
				bad(kv, "name=%q: a task name starts with a letter or '_' and holds only letters, digits, '_', '.', '/' and '-' (no spaces)", kv.Value)
				continue
			}
			p.name = kv.Value
			k := kv
			p.nameKV = &k
		case "retries":
			if n, ok := integer(kv); ok {
				if n < 0 {
					bad(kv, "retries=%d: must not be negative", n)
				} else {
					o.Retries = n
				}
			}
		case "retry_delay":
			if d, ok := duration(kv); ok {
				o.RetryDelay = manifest.Duration(d)
			}
		case "max_retry_delay":
			if d, ok := duration(kv); ok {
				o.MaxRetryDelay = manifest.Duration(d)
			}
		case "timeout":
			if d, ok := duration(kv); ok {
				o.Timeout = manifest.Duration(d)
			}
		case "backoff":
			switch kv.Value {
			case manifest.BackoffFixed, manifest.BackoffExponential:
				o.Backoff = kv.Value
			default:
				bad(kv, "backoff=%s: must be fixed or exponential", kv.Value)
			}
		case "timeout_policy":
			switch kv.Value {
			case manifest.TimeoutRetry, manifest.TimeoutFail, manifest.TimeoutIgnore:
				o.TimeoutPolicy = kv.Value
			default:
				bad(kv, "timeout_policy=%s: must be retry, fail or ignore", kv.Value)
			}
		case "queue":
			if !queueRE.MatchString(kv.Value) {
				bad(kv, "queue=%q: a queue name is non-empty and holds only letters, digits, '_', '.' and '-'", kv.Value)
				continue
			}
			o.Queue = kv.Value
		case "priority":
			if n, ok := integer(kv); ok {
				o.Priority = n
			}
		case "tags":
			tags := []string{}
			for _, t := range strings.Split(kv.Value, ",") {
				if t = strings.TrimSpace(t); t != "" {
					tags = append(tags, t)
				}
			}
			o.Tags = tags
		case "store_result":
			b, err := strconv.ParseBool(kv.Value)
			if err != nil {
				bad(kv, "store_result=%s: must be true or false", kv.Value)
				continue
			}
			o.StoreResult = b
		case "version":
			if n, ok := integer(kv); ok {
				if n < 1 {
					bad(kv, "version=%d: must be 1 or more", n)
				} else {
					o.Version = n
				}
			}
		case "before", "after", "on_error":
			if !identRE.MatchString(kv.Value) {
				bad(kv, "%s=%q: must name a top-level func of the same package", kv.Key, kv.Value)
				continue
			}
			switch kv.Key {
			case "before":
				o.Before = kv.Value
			case "after":
				o.After = kv.Value
			default:
				o.OnError = kv.Value
			}
			p.hookKVs[kv.Key] = kv
		default:
			bad(kv, "unknown key %q; valid keys are %s", kv.Key, strings.Join(optionKeys, ", "))
		}
	}
	return p, probs
}
