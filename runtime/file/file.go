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
//	locks/j-<id>, locks/k-<hash>           per-job and per-key lock files (operating-system locks)
//	locks/o-<owner>                        one per open Backend, locked for its lifetime
//	tmp/<owner>-<random>                   temp files of atomic writes, named by their writer
//	ids/<id>                               empty marker per job id (O_CREATE|O_EXCL): ids are unique
//
// # Rules that make it correct across processes
//
//   - The file's content is authoritative; its folder is an index. Every change
//     to an existing job file, and every move of it, happens while holding the
//     job's lock: an operating-system file lock (flock on Unix, LockFileEx on
//     Windows; see internal/filelock) on locks/j-<id>, which exactly one open
//     file holds at a time and which the kernel releases when its process
//     dies. Readers (Get, List, Stats) take no lock: they read whole files that
//     are only ever replaced by atomic renames.
//   - A claim takes the lock and then renames ready/…/<name> to running/<id>; if
//     the rename fails because the file is gone, another claimer won and this
//     one moves on. The lease token in the file is then raised by one.
//   - Fencing: Extend, Complete and Release read running/<id> under the lock and
//     act only when its state is running and its token equals the caller's, so
//     two processes can never both complete one job.
//   - Every write is atomic: a temp file in tmp/, fsync, close, rename over the
//     target. A crash between a content write and the move to the folder it
//     implies leaves a file whose content and folder disagree; Claim and
//     RecoverExpired move such files to where their content says.
//
// # Lock order
//
// A goroutine holds at most one job lock at a time. A key lock (k-<hash>) is
// taken either alone (Enqueue of a job with a unique key: the job is new, so
// no job lock is needed) or while holding one job lock (Purge drops the key
// index of the job it deletes): job lock before key lock, never the other way
// round. The owner lock o-<owner> is held by its Backend from Open to Close
// and is never waited for. A sweep only tries locks and never waits. So no cycle
// of waits, and no deadlock, is possible.
//
// # After a crash
//
// Nothing waits for a crashed process: its locks are free at once. What it
// leaves behind is removed by a sweep (run by Open and by every RecoverExpired):
// lock files nobody holds, and the temp files of every owner whose owner lock
// is free (its Backend is gone, so nothing can still be writing them). Temp
// files are never read as jobs: tmp/ is not a job folder.
package file

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nuvom/nuvom/internal/filelock"
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
	tmpDir       = "tmp"
	idsDir       = "ids"

	corruptExt = ".corrupt"
)

// ErrCorrupt is wrapped by errors about job files that cannot be decoded.
var ErrCorrupt = errors.New("job file cannot be decoded")

// errClosed is returned by writes through a closed Backend: its temp files
// would have no live owner lock, so a sweep could remove them mid-write.
var errClosed = errors.New("file backend is closed")

// Backend is the file-per-job backend. It implements backend.Backend and is
// safe for concurrent use by goroutines and processes.
type Backend struct {
	dir  string
	sync bool
	poll time.Duration

	// owner names this Backend's temp files; ownerLock, on locks/o-<owner>,
	// is held from Open to Close and shows a sweep that the owner is alive.
	owner     string
	ownerLock *filelock.Lock

	tasks  taskCache      // the task of ready files, for claims by task
	limits fileLimitCache // the task limits claims enforce (limits.go)

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

// WithStaleLockAge does nothing.
//
// Deprecated: locks are operating-system file locks that their holder's
// process releases when it ends, however it ends; no lock ever goes stale.
func WithStaleLockAge(time.Duration) Option { return func(*Backend) {} }

// WithPollInterval sets how often the cross-process notifier polls the ready
// folders when file-system notifications are unavailable (default 50 ms).
func WithPollInterval(d time.Duration) Option { return func(b *Backend) { b.poll = d } }

// Open opens (creating if missing) the backend folder dir, for example
// ".nuvom/queue". It removes what crashed processes left behind (see sweep).
func Open(dir string, opts ...Option) (*Backend, error) {
	b := &Backend{
		dir:  dir,
		sync: true,
		poll: 50 * time.Millisecond,
		dirs: map[string]bool{},
		subs: map[int]chan struct{}{},
	}
	for _, o := range opts {
		o(b)
	}
	for _, d := range []string{readyDir, scheduledDir, runningDir, doneDir, corruptDir, uniqueDir, locksDir, tmpDir, idsDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("open file backend: %w", err)
		}
	}
	if err := b.makeFlowDirs(); err != nil {
		return nil, fmt.Errorf("open file backend: %w", err)
	}
	if err := b.takeOwner(); err != nil {
		return nil, fmt.Errorf("open file backend: %w", err)
	}
	b.sweep()
	return b, nil
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

// Close stops the notifier and releases the owner lock. Writes through a
// closed Backend fail; reads keep working.
func (b *Backend) Close() error {
	b.mu.Lock()
	w := b.watch
	b.watch = nil
	wasClosed := b.closed
	b.closed = true
	b.mu.Unlock()
	if w != nil {
		w.stop()
	}
	if wasClosed {
		return nil
	}
	if err := b.ownerLock.UnlockRemove(); err != nil {
		return fmt.Errorf("close file backend: %w", err)
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
	case j.State == backend.StatePending:
		return b.path(pendingDir, j.ID), nil
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
