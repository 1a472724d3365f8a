package analyzer

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nuvom/nuvom/manifest"
)

// optionKeys lists the annotation keys, in the order they are documented.
var optionKeys = []string{
	"name", "retries", "retry_delay", "backoff", "max_retry_delay", "timeout", "timeout_policy",
	"queue", "priority", "tags", "store_result", "version", "before", "after", "on_error",
	"cron", "tz", "every", "max_concurrency", "rate",
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
	// schedKV is the cron= or every= pair, when the annotation declares a schedule.
	schedKV *KV
}

// minEvery is the shortest every= interval; the scheduler refuses shorter
// ones too (runtime/schedule.MinInterval).
const minEvery = 100 * time.Millisecond

// noUnit explains a bare number given as a duration: it has no unit.
func noUnit(v string) string {
	if _, err := strconv.ParseFloat(v, 64); err == nil && v != "0" {
		return fmt.Sprintf(" (a number has no unit: write %ss, %sm...)", v, v)
	}
	return ""
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
			bad(kv, "%s=%s: not a Go duration such as 30s or 1m30s%s", kv.Key, kv.Value, noUnit(kv.Value))
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
		case "cron":
			if err := checkCron(kv.Value); err != nil {
				bad(kv, "cron=%q: %v", kv.Value, err)
				continue
			}
			o.Cron = kv.Value
			k := kv
			p.schedKV = &k
		case "tz":
			if _, err := loadZone(kv.Value); err != nil {
				bad(kv, "tz=%s: %v", kv.Value, err)
				continue
			}
			o.TZ = kv.Value
		case "every":
			d, err := time.ParseDuration(kv.Value)
			if err != nil {
				bad(kv, "every=%s: not a Go duration such as 1h or 15m%s", kv.Value, noUnit(kv.Value))
				continue
			}
			if d <= 0 {
				bad(kv, "every=%s: must be positive", kv.Value)
				continue
			}
			if d < minEvery {
				bad(kv, "every=%s: below the minimum of %s: each tick enqueues a job", kv.Value, minEvery)
				continue
			}
			o.Every = manifest.Duration(d)
			k := kv
			p.schedKV = &k
		case "max_concurrency":
			if n, ok := integer(kv); ok {
				if n < 1 {
					bad(kv, "max_concurrency=%d: must be 1 or more (leave it out for no limit)", n)
				} else {
					o.MaxConcurrency = n
				}
			}
		case "rate":
			if _, _, err := manifest.ParseRate(kv.Value); err != nil {
				bad(kv, "rate=%s: %v", kv.Value, err)
				continue
			}
			o.Rate = kv.Value
		default:
			bad(kv, "unknown key %q; valid keys are %s", kv.Key, strings.Join(optionKeys, ", "))
		}
	}
	probs = append(probs, checkSchedule(kvs, p.opts)...)
	return p, probs
}

// cronParser reads what the scheduler (runtime/schedule) reads: 5 fields, an
// optional leading seconds field, and descriptors such as @hourly.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func checkCron(spec string) error {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return fmt.Errorf("give the time zone with tz=, not in the spec")
	}
	s, err := cronParser.Parse(spec)
	if err != nil {
		return fmt.Errorf("invalid cron spec: %v (want 5 fields, an optional seconds field first, or @hourly, @daily, @every 1h...)", err)
	}
	if cd, ok := s.(cron.ConstantDelaySchedule); ok && cd.Delay <= 0 {
		return fmt.Errorf("invalid cron spec: @every needs a positive duration")
	}
	return nil
}

func loadZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, fmt.Errorf("name an IANA time zone such as Europe/Berlin")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone: want an IANA name such as Europe/Berlin or UTC")
	}
	return loc, nil
}

// checkSchedule reports keys that contradict each other: cron with every,
// tz without cron.
func checkSchedule(kvs []KV, o manifest.Options) []optionProblem {
	var probs []optionProblem
	byKey := map[string]KV{}
	for _, kv := range kvs {
		byKey[kv.Key] = kv
	}
	if kv, ok := byKey["every"]; ok {
		if _, hasCron := byKey["cron"]; hasCron {
			probs = append(probs, optionProblem{kv, "every= and cron= both declare a schedule: keep one"})
		}
	}
	if kv, ok := byKey["tz"]; ok && o.TZ != "" {
		if _, hasCron := byKey["cron"]; !hasCron {
			probs = append(probs, optionProblem{kv, "tz= goes with cron=: it is the time zone the cron spec is read in"})
		}
	}
	return probs
}
