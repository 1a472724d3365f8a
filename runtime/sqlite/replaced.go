package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrFileReplaced is returned (wrapped) by Enqueue and Claim when the
// database file this Backend opened is no longer the file at its path: it
// was deleted, or replaced (a restored copy moved over it). SQLite keeps
// writing to the file it opened, so without this check jobs enqueued there
// would be lost with it, and a worker would never see the jobs enqueued in
// the new file. Reopen the database (restart the process) to use the file
// now at the path.
var ErrFileReplaced = errors.New("database file was deleted or replaced after this process opened it; restart the process to use the file now at its path")

// fileGuard tells whether the database file at path is still the one opened.
type fileGuard struct {
	path   string
	opened os.FileInfo // nil when the path could not be statted at open: no checks
}

func (g *fileGuard) init(path string) {
	g.path = path
	if fi, err := os.Stat(path); err == nil {
		g.opened = fi
	}
}

// check returns ErrFileReplaced, wrapped with the path, when the path names
// no file or another file than the one opened. Other stat errors are left to
// SQLite to report. It is a check before the write, not part of it: a file
// replaced in the instant between the two still takes the write.
func (g *fileGuard) check() error {
	if g.opened == nil {
		return nil
	}
	fi, err := os.Stat(g.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w", g.path, ErrFileReplaced)
	case err != nil:
		return nil
	case !os.SameFile(g.opened, fi):
		return fmt.Errorf("%s: %w", g.path, ErrFileReplaced)
	}
	return nil
}
