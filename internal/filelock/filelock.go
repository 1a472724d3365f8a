// Package filelock takes exclusive locks on lock files through the operating
// system's file locks (flock(2) on Unix, LockFileEx on Windows, by way of
// github.com/gofrs/flock). The kernel releases such a lock when the process
// holding it ends, however it ends (kill -9 included), so a crashed holder
// never leaves a lock behind that others must wait out or break.
//
// A lock belongs to one open file, not to a process: two goroutines of one
// process that lock the same path exclude each other like two processes do.
// That needs a file system whose locks behave like a local one's: on Linux,
// flock on NFS is emulated with per-process fcntl locks, under which only
// processes exclude each other.
// Windows releases the locks of a terminated process soon, though not
// necessarily by the time its exit is reported.
//
// A lock file may be removed when its lock is released (UnlockRemove), so
// that a folder of per-item lock files does not grow without bound. That is
// safe because every acquirer checks, once it holds the lock, that the path
// still names the file it locked; when the previous holder removed it in the
// meantime, the acquirer lets go and tries again on the file now at the path.
// On Unix the holder removes the file before it unlocks; on Windows, where a
// file cannot be removed while any process has it open, the holder unlocks
// and closes first and then removes the file only if nobody has it open.
package filelock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/gofrs/flock"
)

// Lock is a held lock on one lock file.
type Lock struct {
	f    *flock.Flock
	path string
}

// TryLock takes the lock of the file at path (creating the file when it is
// missing) without waiting. It returns nil and no error while another holder,
// in this process or another, has the lock.
func TryLock(path string) (*Lock, error) {
	for {
		f := flock.New(path, flock.SetPermissions(0o644))
		ok, err := f.TryLock()
		if err != nil {
			if busy(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !ok {
			return nil, nil
		}
		held, err := f.Stat()
		if err != nil {
			_ = f.Unlock()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		now, err := os.Stat(path)
		if err == nil && os.SameFile(held, now) {
			return &Lock{f: f, path: path}, nil
		}
		_ = f.Unlock()
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !busy(err) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		// The previous holder removed the file after this one opened it (and
		// perhaps another process created a new one): lock the current file.
	}
}

// Wait waits for the lock of the file at path, polling with short growing
// sleeps, until it is free or ctx ends. It tries once even when ctx has
// already ended.
func Wait(ctx context.Context, path string) (*Lock, error) {
	delay := 20 * time.Microsecond
	for {
		l, err := TryLock(path)
		if err != nil || l != nil {
			return l, err
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("wait for lock %s: %w", path, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
		if delay < 2*time.Millisecond {
			delay *= 2
		}
	}
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.path }

// Unlock releases the lock and keeps the lock file.
func (l *Lock) Unlock() error {
	if err := l.f.Unlock(); err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	return nil
}

// UnlockRemove releases the lock and removes the lock file (see the package
// documentation for why that is safe). On Windows the file stays when another
// process has it open; that process removes it when it is done.
func (l *Lock) UnlockRemove() error {
	return unlockRemove(l)
}
