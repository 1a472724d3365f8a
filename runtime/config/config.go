// Package config resolves where a Nuvom worker or client keeps its jobs and how
// the worker runs, from defaults, NUVOM_* environment variables and flags, and
// remembers where each value came from (for `nuvom config`).
//
// The module root is the nearest directory holding a go.mod, looking upward
// from the starting directory; without one, the starting directory itself.
//
// Environment variables (flags of the worker override them):
//
//	NUVOM_BACKEND        sqlite (default), file, memory, redis, or the name of a backend that a plugin
//	                     listed in .nuvom_plugins.toml provides (see Backends)
//	NUVOM_REDIS_URL      the Redis of the redis backend (see redis.go); default redis://127.0.0.1:6379/0
//	NUVOM_DB             SQLite database path; default <root>/.nuvom/nuvom.db
//	NUVOM_QUEUE_DIR      file backend queue directory; default <root>/.nuvom/queue
//	NUVOM_SQLITE_SYNC    SQLite synchronous mode, NORMAL (default) or FULL
//	NUVOM_CONCURRENCY    jobs a worker runs at once, 1 to MaxConcurrency; default 100
//	NUVOM_QUEUES         comma-separated queues in priority order; default every queue of the worker's tasks
//	NUVOM_CLAIM_AHEAD    true lets a worker claim jobs ahead of its free runners (WorkerOptions.ClaimAhead:
//	                     for many short jobs on a store across the network); default false
//	NUVOM_KEEP_FINISHED_FOR  retention: a worker deletes the jobs that ended more than this Go
//	                     duration ago (WorkerOptions.KeepFinishedFor), at least 1m, e.g. 720h;
//	                     default 0: kept until purged
//	NUVOM_KEEP_FINISHED  retention by count: a worker keeps the newest this many ended jobs of each
//	                     queue and deletes the others (WorkerOptions.KeepFinished), e.g. 100000;
//	                     default 0: no limit
//	NUVOM_GRACE          shutdown grace period for running jobs, a Go duration; default 10s; 0 means
//	                     none: a shutdown hands running jobs back at once
//	NUVOM_LEASE          how long a worker's claim holds a job without a heartbeat (heartbeats
//	                     every second keep live jobs however long they run); default 5s: a killed
//	                     worker's jobs run again about that long after; raise it when heartbeats
//	                     may be starved (many processes on one SQLite file on a loaded host)
//	NUVOM_POLL_INTERVAL  fallback poll for due scheduled and retrying jobs; default 1s (new jobs
//	                     wake workers at once: in-process directly, across processes through
//	                     the backend's change notification: file events on SQLite's WAL)
//	NUVOM_LOG_FORMAT     text (default) or json
//	NUVOM_LOG_LEVEL      debug, info (default), warn or error
//	NUVOM_SCHEDULER_BACKEND  where schedules live: sqlite, file, memory or redis; default the same as
//	                     NUVOM_BACKEND, sqlite for a backend a plugin provides
//	                     (sqlite: tables in NUVOM_DB; file: <NUVOM_QUEUE_DIR>/schedules)
//
// Relative paths are taken relative to the module root. Embedding Nuvom takes
// a few lines:
//
//	cfg, err := config.Load(".", os.Getenv)
//	if err != nil { ... }
//	client, err := cfg.OpenClient(ctx)
package config

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/internal/clip"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// SourceDefault is the source of a value nobody set.
const SourceDefault = "default"

// MaxConcurrency is the most jobs a worker may run at once: every running job
// is a goroutine with its buffers, and a typo such as 10000000 would exhaust
// memory instead of failing.
const MaxConcurrency = 10000

// NoGrace is the WorkerOptions.Grace that a grace period of 0 becomes: no
// waiting for running jobs at all (a zero Grace would mean the default).
const NoGrace time.Duration = -1

// Setting is one configuration value and where it came from: "default",
// "env NUVOM_X" or "flag --x".
type Setting[T any] struct {
	Value  T
	Source string
}

// Config is the effective configuration.
type Config struct {
	// Root is the module root (see the package doc).
	Root        string
	Backend     Setting[string]
	DB          Setting[string]
	QueueDir    Setting[string]
	SQLiteSync  Setting[string]
	Concurrency Setting[int]
	Queues      Setting[[]string]
	ClaimAhead  Setting[bool]
	// KeepFinishedFor is the retention of ended jobs by age
	// (WorkerOptions.KeepFinishedFor); 0 keeps them.
	KeepFinishedFor Setting[time.Duration]
	// KeepFinished is the retention of ended jobs by count, per queue
	// (WorkerOptions.KeepFinished); 0 sets no limit.
	KeepFinished Setting[int]
	Grace        Setting[time.Duration]
	Lease        Setting[time.Duration]
	PollInterval Setting[time.Duration]
	LogFormat    Setting[string]
	LogLevel     Setting[slog.Level]
	// SchedulerBackend is where schedules live; an empty value means the same as Backend.
	SchedulerBackend Setting[string]
	// Logger, when set, receives the backends' own lines (a damaged row or
	// file quarantined, with its job id); the worker sets its logger here.
	Logger *slog.Logger
	// RedisURL is the Redis of the redis backend and schedule store.
	RedisURL Setting[string]
	// Backends is where OpenBackend looks NUVOM_BACKEND up; nil means
	// BuiltinBackends(). The worker adds the backends its plugins provide.
	Backends *Backends
}

// varNames are the environment variables Load reads, in the order Entries shows them.
var varNames = []string{"NUVOM_BACKEND", "NUVOM_DB", "NUVOM_QUEUE_DIR", "NUVOM_SQLITE_SYNC", "NUVOM_CONCURRENCY",
	"NUVOM_QUEUES", "NUVOM_GRACE", "NUVOM_LEASE", "NUVOM_POLL_INTERVAL", "NUVOM_LOG_FORMAT", "NUVOM_LOG_LEVEL",
	"NUVOM_SCHEDULER_BACKEND", "NUVOM_REDIS_URL", "NUVOM_CLAIM_AHEAD", "NUVOM_KEEP_FINISHED_FOR", "NUVOM_KEEP_FINISHED"}

// Load returns the configuration for a process started in dir, reading
// NUVOM_* variables through getenv (os.Getenv in production). A bad value is
// an error naming the variable and the value.
func Load(dir string, getenv func(string) string) (Config, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Config{}, fmt.Errorf("config: resolve %s: %w", dir, err)
	}
	root := moduleRoot(abs)
	c := Config{
		Root:             root,
		Backend:          Setting[string]{"sqlite", SourceDefault},
		DB:               Setting[string]{filepath.Join(root, ".nuvom", "nuvom.db"), SourceDefault},
		QueueDir:         Setting[string]{filepath.Join(root, ".nuvom", "queue"), SourceDefault},
		SQLiteSync:       Setting[string]{"NORMAL", SourceDefault},
		Concurrency:      Setting[int]{nuvom.DefaultConcurrency, SourceDefault},
		Queues:           Setting[[]string]{nil, SourceDefault},
		ClaimAhead:       Setting[bool]{false, SourceDefault},
		KeepFinishedFor:  Setting[time.Duration]{0, SourceDefault},
		KeepFinished:     Setting[int]{0, SourceDefault},
		Grace:            Setting[time.Duration]{nuvom.DefaultGrace, SourceDefault},
		Lease:            Setting[time.Duration]{nuvom.DefaultLeaseFor, SourceDefault},
		PollInterval:     Setting[time.Duration]{nuvom.DefaultPollInterval, SourceDefault},
		LogFormat:        Setting[string]{"text", SourceDefault},
		LogLevel:         Setting[slog.Level]{slog.LevelInfo, SourceDefault},
		SchedulerBackend: Setting[string]{"", SourceDefault},
		RedisURL:         Setting[string]{defaultRedisURL, SourceDefault},
	}
	for _, name := range varNames {
		if v := getenv(name); v != "" {
			if err := c.Set(name, v, "env "+name); err != nil {
				return Config{}, err
			}
		}
	}
	return c, nil
}

// VarNames returns the environment variables Load reads, in the order Entries shows them.
func VarNames() []string { return append([]string(nil), varNames...) }

// moduleRoot is the nearest directory upward from dir holding a go.mod, else dir.
func moduleRoot(dir string) string {
	for d := dir; ; {
		if fi, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !fi.IsDir() {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return dir
		}
		d = parent
	}
}

// Set parses raw as the value of the variable name (one of VarNames) and records
// source as its origin; flags call it with sources such as "flag --queues".
func (c *Config) Set(name, raw, source string) error {
	bad := func(why string) error {
		return fmt.Errorf("config: %s (%s): bad value %s: %s", name, source, clip.Quote(raw), why)
	}
	v := strings.TrimSpace(raw)
	switch name {
	case "NUVOM_BACKEND":
		// Any backend name: plugins provide backends that only the worker
		// binary knows; OpenBackend looks the name up.
		if !backendNameRE.MatchString(strings.ToLower(v)) {
			return bad("want sqlite, file, memory, redis or the name of a backend a plugin provides")
		}
		c.Backend = Setting[string]{strings.ToLower(v), source}
	case "NUVOM_SCHEDULER_BACKEND":
		switch strings.ToLower(v) {
		case "sqlite", "file", "memory", "redis":
			c.SchedulerBackend = Setting[string]{strings.ToLower(v), source}
		default:
			return bad("want sqlite, file, memory or redis")
		}
	case "NUVOM_REDIS_URL":
		if err := checkRedisURL(v); err != nil { // quoted with its password hidden
			return fmt.Errorf("config: %s (%s): bad value %s: %s", name, source, clip.Quote(redactURL(raw)), err)
		}
		c.RedisURL = Setting[string]{v, source}
	case "NUVOM_DB":
		if v == "" {
			return bad("empty path")
		}
		if fi, err := os.Stat(c.abs(v)); err == nil && fi.IsDir() {
			return bad("is a folder; NUVOM_DB names the database file, such as " + filepath.Join(v, "nuvom.db"))
		}
		c.DB = Setting[string]{c.abs(v), source}
	case "NUVOM_QUEUE_DIR":
		if v == "" {
			return bad("empty path")
		}
		c.QueueDir = Setting[string]{c.abs(v), source}
	case "NUVOM_SQLITE_SYNC":
		switch strings.ToUpper(v) {
		case "NORMAL", "FULL":
			c.SQLiteSync = Setting[string]{strings.ToUpper(v), source}
		default:
			return bad("want NORMAL or FULL")
		}
	case "NUVOM_CLAIM_AHEAD":
		on, err := strconv.ParseBool(v)
		if err != nil {
			return bad("want true or false")
		}
		c.ClaimAhead = Setting[bool]{on, source}
	case "NUVOM_KEEP_FINISHED_FOR":
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || (d > 0 && d < nuvom.MinKeepFinishedFor) {
			return bad(fmt.Sprintf("want a Go duration of at least %s such as 720h, or 0 to keep ended jobs until purged", nuvom.MinKeepFinishedFor))
		}
		c.KeepFinishedFor = Setting[time.Duration]{d, source}
	case "NUVOM_KEEP_FINISHED":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return bad("want a whole number of ended jobs to keep per queue, such as 100000, or 0 for no limit")
		}
		c.KeepFinished = Setting[int]{n, source}
	case "NUVOM_CONCURRENCY":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return bad(fmt.Sprintf("want a whole number from 1 to %d", MaxConcurrency))
		}
		if n > MaxConcurrency {
			return bad(fmt.Sprintf("at most %d jobs may run at once in one worker; run more workers instead", MaxConcurrency))
		}
		c.Concurrency = Setting[int]{n, source}
	case "NUVOM_QUEUES":
		var qs []string
		for _, q := range strings.Split(v, ",") {
			if q = strings.TrimSpace(q); q != "" {
				if strings.IndexFunc(q, notQueueNameRune) >= 0 {
					return bad(fmt.Sprintf("queue %q: want comma-separated queue names (a name holds no spaces or ';')", q))
				}
				qs = append(qs, q)
			}
		}
		if len(qs) == 0 {
			return bad("want comma-separated queue names")
		}
		c.Queues = Setting[[]string]{qs, source}
	case "NUVOM_GRACE", "NUVOM_LEASE", "NUVOM_POLL_INTERVAL":
		d, err := time.ParseDuration(v)
		switch {
		case name == "NUVOM_GRACE" && (err != nil || d < 0):
			return bad("want a Go duration such as 30s, or 0 for none")
		case name == "NUVOM_POLL_INTERVAL" && (err != nil || d <= 0):
			return bad("want a positive Go duration such as 500ms or 30s")
		case name == "NUVOM_LEASE" && (err != nil || d < time.Second):
			return bad("want a Go duration of at least 1s, such as 5s or 1m")
		}
		switch name {
		case "NUVOM_GRACE":
			c.Grace = Setting[time.Duration]{d, source}
		case "NUVOM_LEASE":
			c.Lease = Setting[time.Duration]{d, source}
		default:
			c.PollInterval = Setting[time.Duration]{d, source}
		}
	case "NUVOM_LOG_FORMAT":
		switch strings.ToLower(v) {
		case "text", "json":
			c.LogFormat = Setting[string]{strings.ToLower(v), source}
		default:
			return bad("want text or json")
		}
	case "NUVOM_LOG_LEVEL":
		var l slog.Level
		if err := l.UnmarshalText([]byte(v)); err != nil {
			return bad("want debug, info, warn or error")
		}
		c.LogLevel = Setting[slog.Level]{l, source}
	default:
		return fmt.Errorf("config: unknown setting %s", name)
	}
	return nil
}

func (c *Config) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.Root, p)
}

// Entry is one effective value as `nuvom config` prints it.
type Entry struct {
	Name   string // the environment variable
	Value  string
	Source string
}

// Entries returns every setting, in the order of VarNames.
func (c Config) Entries() []Entry {
	return []Entry{
		{"NUVOM_BACKEND", c.Backend.Value, c.Backend.Source},
		{"NUVOM_DB", c.DB.Value, c.DB.Source},
		{"NUVOM_QUEUE_DIR", c.QueueDir.Value, c.QueueDir.Source},
		{"NUVOM_SQLITE_SYNC", c.SQLiteSync.Value, c.SQLiteSync.Source},
		{"NUVOM_CONCURRENCY", strconv.Itoa(c.Concurrency.Value), c.Concurrency.Source},
		{"NUVOM_QUEUES", strings.Join(c.Queues.Value, ","), c.Queues.Source},
		{"NUVOM_GRACE", c.Grace.Value.String(), c.Grace.Source},
		{"NUVOM_LEASE", c.Lease.Value.String(), c.Lease.Source},
		{"NUVOM_POLL_INTERVAL", c.PollInterval.Value.String(), c.PollInterval.Source},
		{"NUVOM_LOG_FORMAT", c.LogFormat.Value, c.LogFormat.Source},
		{"NUVOM_LOG_LEVEL", strings.ToLower(c.LogLevel.Value.String()), c.LogLevel.Source},
		c.schedulerEntry(),
		{"NUVOM_REDIS_URL", redactURL(c.RedisURL.Value), c.RedisURL.Source},
		{"NUVOM_CLAIM_AHEAD", strconv.FormatBool(c.ClaimAhead.Value), c.ClaimAhead.Source},
		{"NUVOM_KEEP_FINISHED_FOR", c.KeepFinishedFor.Value.String(), c.KeepFinishedFor.Source},
		{"NUVOM_KEEP_FINISHED", strconv.Itoa(c.KeepFinished.Value), c.KeepFinished.Source},
	}
}

// OpenClient opens the configured backend and returns a client over it,
// made with opts too (for example a plugin's ClientOption); closing the
// client closes the backend.
func (c Config) OpenClient(ctx context.Context, opts ...nuvom.ClientOption) (*nuvom.Client, error) {
	b, err := c.OpenBackend(ctx)
	if err != nil {
		return nil, err
	}
	return c.ClientFor(b, opts...), nil
}

// OpenReadOnlyClient opens the configured backend for commands that only read
// jobs: the SQLite database must exist, nothing is created or migrated, writes
// fail, and a database in a folder the process cannot write is still read.
// (The file backend has no read-only mode; it opens as OpenClient does.)
// Closing the client closes the backend.
func (c Config) OpenReadOnlyClient(ctx context.Context) (*nuvom.Client, error) {
	if c.Backend.Value != "sqlite" && c.Backend.Value != "" {
		return c.OpenClient(ctx)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open sqlite backend: %w", err)
	}
	b, err := sqlite.Open(c.DB.Value, sqlite.WithReadOnly())
	if err != nil {
		return nil, fmt.Errorf("open sqlite backend at %s: %w", c.DB.Value, err)
	}
	return nuvom.NewClient(b, nuvom.OwnBackend()), nil
}

// WorkerOptions returns the worker options the configuration sets (the rest
// keep the worker's defaults). A grace period of 0 becomes NoGrace: the
// worker's own zero value means its default.
func (c Config) WorkerOptions() nuvom.WorkerOptions {
	grace := c.Grace.Value
	if grace == 0 {
		grace = NoGrace
	}
	return nuvom.WorkerOptions{
		Concurrency:     c.Concurrency.Value,
		Queues:          c.Queues.Value,
		ClaimAhead:      c.ClaimAhead.Value,
		KeepFinishedFor: c.KeepFinishedFor.Value,
		KeepFinished:    c.KeepFinished.Value,
		Grace:           grace,
		LeaseFor:        c.Lease.Value,
		PollInterval:    c.PollInterval.Value,
	}
}

// notQueueNameRune reports a rune that, in NUVOM_QUEUES, stands where a
// comma was meant (a space, a ';') or that no one types in a queue name (a
// control character). Other names are taken: enqueue --queue and queue=
// take letters, digits, '_', '.' and '-', but nuvom.Queue takes any name
// ("emails:high", "tenant/a"), and a worker must be able to serve it.
func notQueueNameRune(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || r == ';'
}
