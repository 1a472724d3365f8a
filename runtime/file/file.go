// Package file is Nuvom's file-per-job backend: every job is one msgpack file
// under a folder (by default .nuvom/queue), shared safely by several
// goroutines and several processes, on Unix and on Windows.
//
// # Layout
//
//	ready/<queue>/<prio>-<runat>-<id>      ready to claim; sorted names give the claim order
//	scheduled/<queue>/<runat>-<prio>-<id>  waiting for run-at (scheduled and retrying jobs)
//	running/<id>                           leased; lease owner, token and deadline are in the file
//	done/<id>                              final: succeeded, failed, cancelled, quarantined
//	corrupt/<id>.corrupt                   files that could not be decoded (quarantine)
//	unique/<hash>                          unique-key index (hash of task and key): job id and window end
//	locks/j-<id>, locks/k-<hash>           per-job and per-key lock files (O_CREATE|O_EXCL)
//	ids/<id>                               empty marker per job id (O_CREATE|O_EXCL): ids are unique
//
// # Rules that make it correct across processes
//
//   - The file's content is authoritative; its folder is an index. Every change
//     to an existing job file, and every move of it, happens while holding the
//     job's lock file, created with O_CREATE|O_EXCL (exactly one process
//     succeeds) and removed afterwards. Readers (Get, List, Stats) take no lock:
//     they read whole files that are only ever replaced by atomic renames.
//   - A claim takes the lock and then renames ready/…/<name> to running/<id>; if
//     the rename fails because the file is gone, another claimer won and this
//     one moves on. The lease token in the file is then raised by one.
//   - Fencing: Extend, Complete and Release read running/<id> under the lock and
//     act only when its state is running and its token equals the caller's, so
//     two processes can never both complete one job.
//   - Every write is atomic: a temp file in the same folder, fsync, close,
//     rename over the target. A crash between a content write and the move to
//     the folder it implies leaves a file whose content and folder disagree;
//     Claim and RecoverExpired move such files to where their content says.
//   - A lock left behind by a crashed process is broken when older than the
//     stale-lock age (30 s by default; operations hold locks for milliseconds).
package file

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Folder names inside the backend folder.
const (
	readyDir     = "ready"
	scheduledDir = "scheduled"
	runningDir   = "running"
	doneDir      = "done"
	corruptDir   = "corrupt"
	uniqueDir    = "unique"
	locksDir     = "locks"
	idsDir       = "ids"

	corruptExt = ".corrupt"
)

// ErrCorrupt is wrapped by errors about job files that cannot be decoded.
var ErrCorrupt = errors.New("job file cannot be decoded")

// Backend is the file-per-job backend. It implements backend.Backend and is
// safe for concurrent use by goroutines and processes.
type Backend struct {
	dir       string
	sync      bool
	staleLock time.Duration
	poll      time.Duration

	// token is this Backend's file under locks/ that lock files hard-link to;
	// noLink is set when hard links turn out to be unavailable.
	token     string
	tokenPath string // the token file, removed at Close
	noLink    atomic.Bool
	beat      chan struct{} // closed by Close to stop the token heartbeat
	beats     sync.WaitGroup

	tasks taskCache // the task of ready files, for claims by task

	mu     sync.Mutex
	log    *slog.Logger
	dirs   map[string]bool // queue folders known to exist
	subs   map[int]chan struct{}
	nextID int
	watch  *watcher
	closed bool
}

// Option configures a Backend.
type Option func(*Backend)

// WithLogger sets the logger that receives quarantine and repair messages
// (slog.Default() when unset).
func WithLogger(l *slog.Logger) Option { return func(b *Backend) { b.log = l } }

// WithSync chooses whether job files are fsynced before they are renamed into
// place (default true). Without it a power loss may lose recent changes; a
// killed process still loses nothing.
func WithSync(on bool) Option { return func(b *Backend) { b.sync = on } }

// WithStaleLockAge sets how old a lock file must be before it is treated as
// left behind by a crashed process and broken (default 30 s).
func WithStaleLockAge(d time.Duration) Option { return func(b *Backend) { b.staleLock = d } }

// WithPollInterval sets how often the cross-process notifier polls the ready
// folders when file-system notifications are unavailable (default 50 ms).
func WithPollInterval(d time.Duration) Option { return func(b *Backend) { b.poll = d } }

// Open opens (creating if missing) the backend folder dir, for example ".nuvom/queue".
func Open(dir string, opts ...Option) (*Backend, error) {
	b := &Backend{
		dir:       dir,
		sync:      true,
		staleLock: 30 * time.Second,
		poll:      50 * time.Millisecond,
		dirs:      map[string]bool{},
		subs:      map[int]chan struct{}{},
	}
	for _, o := range opts {
		o(b)
	}
	for _, d := range []string{readyDir, scheduledDir, runningDir, doneDir, corruptDir, uniqueDir, locksDir, idsDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("open file backend: %w", err)
		}
	}
	tok, err := os.CreateTemp(b.path(locksDir), ".token-*")
	if err != nil {
		return nil, fmt.Errorf("open file backend: create lock token: %w", err)
	}
	_ = tok.Close()
	b.token, b.tokenPath = tok.Name(), tok.Name()
	b.beat = make(chan struct{})
	b.beats.Add(1)
	go b.heartbeat(b.token)
	return b, nil
}

// heartbeat touches the token file so that the locks this Backend holds never
// look stale to other processes; it stops at Close, which removes the token.
func (b *Backend) heartbeat(token string) {
	defer b.beats.Done()
	t := time.NewTicker(b.staleLock / 4)
	defer t.Stop()
	for {
		select {
		case <-b.beat:
			return
		case <-t.C:
			now := time.Now()
			_ = os.Chtimes(token, now, now)
		}
	}
}

// SetLogger replaces the logger that receives quarantine and repair messages.
func (b *Backend) SetLogger(l *slog.Logger) {
	b.mu.Lock()
	b.log = l
	b.mu.Unlock()
}

// Dir returns the backend folder.
func (b *Backend) Dir() string { return b.dir }

func (b *Backend) logger() *slog.Logger {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.log == nil {
		return slog.Default()
	}
	return b.log
}

// Close stops the notifier. Files need no closing: none is kept open.
func (b *Backend) Close() error {
	b.mu.Lock()
	w := b.watch
	b.watch = nil
	wasClosed := b.closed
	b.closed = true
	token := b.tokenPath
	b.mu.Unlock()
	if w != nil {
		w.stop()
	}
	if !wasClosed {
		close(b.beat)
		b.beats.Wait()
		_ = remove(token)
	}
	return nil
}

// path joins parts under the backend folder.
func (b *Backend) path(parts ...string) string {
	return filepath.Join(append([]string{b.dir}, parts...)...)
}

// queueFolder returns (creating once per process) the folder of queue q under
// top (ready or scheduled).
func (b *Backend) queueFolder(top, q string) (string, error) {
	p := b.path(top, queueDir(q))
	return p, b.ensureDir(p)
}

// ensureDir creates folder p unless this process already knows it exists.
// Queue folders are never removed, so the memo stays true.
func (b *Backend) ensureDir(p string) error {
	b.mu.Lock()
	known := b.dirs[p]
	b.mu.Unlock()
	if known {
		return nil
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("create queue folder: %w", err)
	}
	b.mu.Lock()
	b.dirs[p] = true
	b.mu.Unlock()
	return nil
}

// home returns the path where a job with this content belongs, creating its
// queue folder when needed. now decides between ready and scheduled for jobs
// that wait for their run-at time.
func (b *Backend) home(j *backend.Job, now time.Time) (string, error) {
	switch {
	case j.State == backend.StateRunning:
		return b.path(runningDir, j.ID), nil
	case j.State.Final():
		return b.path(doneDir, j.ID), nil
	case j.State == backend.StateQueued || !j.RunAt.After(now):
		d, err := b.queueFolder(readyDir, j.Queue)
		if err != nil {
			return "", err
		}
		return filepath.Join(d, readyName(j.Priority, j.RunAt, j.ID)), nil
	default:
		d, err := b.queueFolder(scheduledDir, j.Queue)
		if err != nil {
			return "", err
		}
		return filepath.Join(d, scheduledName(j.Priority, j.RunAt, j.ID)), nil
	}
}
