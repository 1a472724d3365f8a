// Package sqlite is Nuvom's default backend: one SQLite database file (WAL,
// modernc.org/sqlite, no cgo) holding the queue, the results and the history,
// so finishing a job and storing its result is one transaction.
//
// Writes in one process go through a single connection, so they queue in Go
// rather than fight over SQLite's lock; writers in other processes share the
// file through BEGIN IMMEDIATE transactions and a busy timeout. Reads use a
// separate read-only pool.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/nuvom/nuvom/runtime/backend"
)

// Defaults of the options. The poll interval trades idle CPU for
// cross-process pickup: on the 2-core reference machine an idle subscriber
// costs about 2% of a core at 5 ms (most of it the Go timer wake-up itself;
// about 5% at 2 ms) and a commit in another process is noticed after half an
// interval on average.
const (
	DefaultBusyTimeout  = 10 * time.Second
	DefaultPollInterval = 5 * time.Millisecond
	DefaultSynchronous  = "NORMAL"
)

// Option configures Open.
type Option func(*options)

type options struct {
	synchronous  string
	busyTimeout  time.Duration
	pollInterval time.Duration
	logger       *slog.Logger
	readOnly     bool
}

// WithSynchronous sets SQLite's synchronous mode: "NORMAL" (the default; in WAL
// mode a power loss may lose the last commits but never corrupts) or "FULL"
// (every commit is synced). Open refuses any other value.
func WithSynchronous(mode string) Option { return func(o *options) { o.synchronous = mode } }

// WithBusyTimeout sets how long a statement waits for another process's lock
// before failing with SQLITE_BUSY.
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

// WithPollInterval sets how often subscribers' wake-up check looks for commits
// made by other connections (other processes) where the database's folder
// cannot be watched; elsewhere file events trigger the check. It only runs
// while someone is subscribed.
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.pollInterval = d } }

// WithLogger sets where the backend reports rows it quarantines because their
// stored contents cannot be decoded. The default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithReadOnly opens an existing database for reading only (what read-only
// commands need, also in a folder they cannot write): nothing is created or
// migrated and every write fails. Where SQLite cannot create the WAL index
// (a read-only folder and no other process has the database open) the file is
// read as immutable.
func WithReadOnly() Option { return func(o *options) { o.readOnly = true } }

// Backend is a backend.Backend on one SQLite file.
type Backend struct {
	path   string
	opts   options
	write  *sql.DB // exactly one connection: all writes of this process
	read   *sql.DB // read-only pool for Get, List, Stats
	stmts  stmts
	flow   flowStmts  // workflow.go
	limits limitCache // limits.go
	notify notifier
	file   fileGuard // replaced.go
	admin  adminState
	counts countsState // counts.go
	closed sync.Once
	// beforeDelete, set only by tests, runs between each batch's find and
	// its delete (deleteWhere, store.go).
	beforeDelete func()
}

var (
	_ backend.Backend = (*Backend)(nil)
)

// Open opens (creating if needed, with its parent directories) the database at
// path, brings its schema up to date and returns the backend.
func Open(path string, opts ...Option) (*Backend, error) {
	o := options{synchronous: DefaultSynchronous, busyTimeout: DefaultBusyTimeout, pollInterval: DefaultPollInterval}
	for _, f := range opts {
		f(&o)
	}
	o.synchronous = strings.ToUpper(strings.TrimSpace(o.synchronous))
	if o.synchronous != "NORMAL" && o.synchronous != "FULL" {
		return nil, fmt.Errorf("open sqlite %s: synchronous mode %q is not NORMAL or FULL", path, o.synchronous)
	}
	if o.busyTimeout < 0 {
		return nil, fmt.Errorf("open sqlite %s: busy timeout %s is negative", path, o.busyTimeout)
	}
	if o.pollInterval <= 0 {
		return nil, fmt.Errorf("open sqlite %s: poll interval %s must be positive", path, o.pollInterval)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, errors.New("open sqlite: path is empty")
	}
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open sqlite %s: path must not contain '?'", path)
	}
	// SQLite resolves a relative path once, when a connection opens it: the
	// connections opened later (the read pool's) and the replaced-file check
	// must find that file again after the process changed its directory.
	file := path
	if abs, err := filepath.Abs(path); err == nil && path != ":memory:" && !strings.HasPrefix(path, "file:") {
		file = abs
	}
	if o.readOnly {
		return openReadOnly(path, file, o)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite %s: create directory: %w", path, err)
		}
	}
	b := &Backend{path: path, opts: o}
	var err error
	b.write, err = sql.Open("sqlite", dsn(file, o, false))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	b.write.SetMaxOpenConns(1)
	b.write.SetMaxIdleConns(1)
	b.write.SetConnMaxLifetime(0)
	b.write.SetConnMaxIdleTime(0)
	// WAL is a persistent setting of the file, so readers opened later find it.
	var mode string
	if err := b.write.QueryRow(`PRAGMA journal_mode = WAL`).Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		b.write.Close()
		return nil, fmt.Errorf("open sqlite %s: journal mode is %q, want wal: %v", path, mode, err)
	}
	if err := migrate(context.Background(), b.write); err != nil {
		b.write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	b.read, err = sql.Open("sqlite", dsn(file, o, true))
	if err != nil {
		b.write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	b.read.SetMaxOpenConns(4)
	b.read.SetMaxIdleConns(4)
	if err := b.stmts.prepare(b.write, false); err != nil {
		b.read.Close()
		b.write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := b.flow.prepare(b.write); err != nil {
		b.stmts.close()
		b.read.Close()
		b.write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	b.notify.init(b.write, file, o.pollInterval)
	b.file.init(file)
	return b, nil
}

// openReadOnly opens both pools of b on an existing database with mode=ro,
// falling back to immutable=1 when the WAL index cannot be created. file is
// path made absolute.
func openReadOnly(path, file string, o options) (*Backend, error) {
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("open sqlite %s read-only: %w", path, err)
	}
	var first error
	for _, mode := range []string{"&mode=ro", "&mode=ro&immutable=1"} {
		uri := fileURI(file)
		b := &Backend{path: path, opts: o}
		var err error
		if b.write, err = sql.Open("sqlite", dsn(uri, o, false)+mode); err != nil {
			return nil, fmt.Errorf("open sqlite %s read-only: %w", path, err)
		}
		b.write.SetMaxOpenConns(1)
		if b.read, err = sql.Open("sqlite", dsn(uri, o, true)+mode); err != nil {
			b.write.Close()
			return nil, fmt.Errorf("open sqlite %s read-only: %w", path, err)
		}
		b.read.SetMaxOpenConns(4)
		var n int
		if err = b.read.QueryRow(`SELECT count(*) FROM sqlite_master`).Scan(&n); err == nil {
			err = b.stmts.prepare(b.write, true)
		}
		if err == nil {
			b.notify.init(b.write, file, o.pollInterval)
			return b, nil
		}
		b.read.Close()
		b.write.Close()
		if first == nil {
			first = err
		}
	}
	return nil, fmt.Errorf("open sqlite %s read-only: %w", path, first)
}

// fileURI is path as a file: URI, the form in which SQLite reads mode=.
func fileURI(path string) string {
	p := filepath.ToSlash(path)
	if filepath.VolumeName(path) != "" && !strings.HasPrefix(p, "/") {
		p = "/" + p // file:///C:/... on Windows
	}
	return "file:" + strings.NewReplacer("%", "%25", "#", "%23").Replace(p)
}

// dsn builds the driver's connection string. The path is passed verbatim
// (not as a file: URI), so Windows paths and spaces need no escaping.
func dsn(path string, o options, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(o.busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "synchronous("+o.synchronous+")")
	q.Add("_pragma", "cache_size(-16000)") // 16 MB of page cache per connection
	if readOnly {
		// Readers keep SQLite's file-backed temp store: a Stats or List over a
		// million rows sorts through temp files instead of growing the heap.
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "temp_store(MEMORY)") // the writer only sorts claim candidates
		q.Set("_txlock", "immediate")
	}
	return path + "?" + q.Encode()
}

// Path returns the database file's path.
func (b *Backend) Path() string { return b.path }

// Close stops the wake-up poller and closes the connections.
func (b *Backend) Close() error {
	var err error
	b.closed.Do(func() {
		b.notify.close()
		b.counts.close()
		b.stmts.close()
		b.flow.close()
		err = errors.Join(b.read.Close(), b.write.Close())
		if err != nil {
			err = fmt.Errorf("close sqlite %s: %w", b.path, err)
		}
	})
	return err
}

// wrap adds the operation and the database path to err.
func (b *Backend) wrap(op string, err error) error {
	return fmt.Errorf("sqlite %s (%s): %w", op, b.path, err)
}

// wrapCtx is wrap, adding ctx's error when ctx has ended: a transaction
// that database/sql rolled back because ctx ended may fail with an error
// that does not say so ("statement is closed").
func (b *Backend) wrapCtx(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("sqlite %s (%s): %w (%w)", op, b.path, err, cerr)
	}
	return b.wrap(op, err)
}
