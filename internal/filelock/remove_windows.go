//go:build windows

package filelock

import (
	"errors"
	"os"
	"syscall"
)

// Windows error codes that mean another handle is in the way right now.
const (
	errorAccessDenied     = syscall.Errno(5)
	errorSharingViolation = syscall.Errno(32)
	errorLockViolation    = syscall.Errno(33)
)

// unlockRemove unlocks and closes the file first: Windows cannot remove a file
// that is open, and Go opens files without FILE_SHARE_DELETE, so the removal
// then succeeds only when no other process has the file open. When one has,
// it keeps the file (its lock check finds the same file at the path) and
// removes it at its own release.
func unlockRemove(l *Lock) error {
	if err := l.Unlock(); err != nil {
		return err
	}
	_ = os.Remove(l.path)
	return nil
}

// busy reports whether err is a transient sharing error: the file is being
// removed (ACCESS_DENIED for a delete-pending file) or another handle is in
// the way. The lock counts as taken for now.
func busy(err error) bool {
	return errors.Is(err, errorSharingViolation) || errors.Is(err, errorLockViolation) ||
		errors.Is(err, errorAccessDenied)
}
