package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"
	"time"
)

// ErrFileReplaced is returned (wrapped) by Enqueue and Claim when the
// database file this Backend opened is no longer the file at its path: it
// was deleted, or replaced (a restored copy moved over it). SQLite keeps
// writing to the file it opened, so without this check jobs enqueued there
// would be lost with it, and a worker would never see the jobs enqueued in
// the new file. Reopen the database (restart the process) to use the file
// now at the path.
var ErrFileReplaced = errors.New("database file was deleted or replaced after this process opened it; restart the process to use the file now at its path")

// checkEvery spaces fileGuard's checks: a stat of the path costs about 2 µs,
// a few per cent of a single enqueue, and a file replaced under a running
// process is an accident to notice, not a race to win (see check).
const checkEvery = 10 * time.Millisecond

// fileGuard tells whether the database file at path is still the one opened.
type fileGuard struct {
	path   string
	opened os.FileInfo  // nil when the path could not be statted at open: no checks
	start  time.Time    // when init ran: checks are timed from it on the monotonic clock
	passed atomic.Int64 // when a check last found the file opened (ns since start; 0: none yet)
}

func (g *fileGuard) init(path string) {
	g.path, g.start = path, time.Now()
	if fi, err := os.Stat(path); err == nil {
		g.opened = fi
	}
}

// check returns ErrFileReplaced, wrapped with the path, when the path names
// no file or another file than the one opened. Other stat errors are left to
// SQLite to report. It is a check before the write, not part of it, and
// looks at the path at most once every checkEvery after one that passed: a
// file replaced in the moments before a write still takes the write.
func (g *fileGuard) check() error {
	if g.opened == nil {
		return nil
	}
	now := int64(time.Since(g.start)) + 1 // +1: a check at start is one
	if last := g.passed.Load(); last > 0 && now-last < int64(checkEvery) {
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
	g.passed.Store(now)
	return nil
}
