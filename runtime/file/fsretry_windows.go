//go:build windows

package file

import (
	"errors"
	"syscall"
)

// Windows error codes that mean "another handle is in the way right now".
const (
	errorAccessDenied     = syscall.Errno(5)
	errorSharingViolation = syscall.Errno(32)
	errorLockViolation    = syscall.Errno(33)
)

// transient reports whether err is a Windows sharing violation that clears
// once another process closes its handle. On Windows os.Rename uses
// MoveFileEx(MOVEFILE_REPLACE_EXISTING), which replaces an existing target but
// fails while any handle (for example a concurrent os.ReadFile by Get or List)
// has the source or target open without FILE_SHARE_DELETE. Such handles live
// for microseconds because this package never keeps a job file open between
// operations, so a short retry loop is enough. ACCESS_DENIED is included
// because Windows reports it for files in the "delete pending" state.
func transient(err error) bool {
	return errors.Is(err, errorSharingViolation) || errors.Is(err, errorLockViolation) ||
		errors.Is(err, errorAccessDenied)
}
