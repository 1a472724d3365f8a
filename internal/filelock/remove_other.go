//go:build !windows

package filelock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// unlockRemove removes the file while the lock is still held, so that no
// other process can lock a file that is about to disappear and keep it; an
// acquirer that had opened it finds the path gone and starts over.
func unlockRemove(l *Lock) error {
	var rerr error
	if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		rerr = fmt.Errorf("remove lock file: %w", err)
	}
	return errors.Join(rerr, l.Unlock())
}

// busy reports whether err means the lock file is in someone's way for a
// moment. On Unix opening and locking never fail that way.
func busy(error) bool { return false }
