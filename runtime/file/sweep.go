package file

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/nuvom/nuvom/internal/filelock"
)

// Lock file names under locks/: j-<id> for a job, k-<hash> for a unique key,
// o-<owner> for an open Backend.
const (
	jobPrefix   = "j-"
	keyPrefix   = "k-"
	ownerPrefix = "o-"
)

func jobLock(id string) string      { return jobPrefix + id }
func keyLock(hash string) string    { return keyPrefix + hash }
func ownerLock(owner string) string { return ownerPrefix + owner }

// takeOwner picks a random owner name for this Backend and locks
// locks/o-<owner> until Close. Temp files this Backend writes start with the
// owner name, so a free owner lock proves that nobody writes them any more.
func (b *Backend) takeOwner() error {
	for range 10 {
		owner := rand.Text() // upper-case letters and digits: no '-'
		l, err := filelock.TryLock(b.path(locksDir, ownerLock(owner)))
		if err != nil {
			return fmt.Errorf("take owner lock: %w", err)
		}
		if l != nil {
			b.owner, b.ownerLock = owner, l
			return nil
		}
	}
	return errors.New("take owner lock: every random owner name tried was locked")
}

// ownerOfTemp returns the owner part of a temp file name in tmp/.
func ownerOfTemp(name string) (string, bool) {
	owner, _, ok := strings.Cut(name, "-")
	return owner, ok && owner != ""
}

// sweep removes what crashed processes left behind; it never waits for a
// lock, and a live process's files survive it:
//
//   - locks/o-<owner> that can be locked belong to a Backend that is gone:
//     its temp files in tmp/ are removed, then the owner lock file;
//   - temp files whose owner lock file does not exist any more (a sweep that
//     was itself interrupted) are removed;
//   - locks/j-* and locks/k-* that can be locked are removed (a live holder
//     removes its own lock file when it unlocks; these are a crash's);
//   - .token-* and *.stale files in locks/, made by earlier versions of this
//     package, are removed.
//
// Failures are logged: a sweep is tidying, and the next one tries again.
func (b *Backend) sweep() {
	var temps, owners, locks int
	names, err := allNames(b.path(locksDir))
	if err != nil {
		b.logger().Warn("nuvom file backend: cannot sweep lock files", "error", err)
	}
	for _, n := range names {
		p := b.path(locksDir, n)
		switch {
		case strings.HasPrefix(n, ".token-") || strings.HasSuffix(n, ".stale"):
			if remove(p) == nil {
				locks++
			}
		case strings.HasPrefix(n, ownerPrefix):
			owner := n[len(ownerPrefix):]
			if owner == b.owner {
				continue
			}
			l, err := filelock.TryLock(p)
			if err != nil || l == nil {
				continue // alive, or in the way for a moment
			}
			temps += b.removeTemps(owner)
			b.unlock(l)
			owners++
		case strings.HasPrefix(n, jobPrefix) || strings.HasPrefix(n, keyPrefix):
			// Often a lock that a live holder is about to take: taking it
			// first is harmless (that holder finds the file gone and starts
			// over), so these removals are not reported as a crash's.
			l, err := filelock.TryLock(p)
			if err != nil || l == nil {
				continue
			}
			b.unlock(l)
			locks++
		}
	}
	names, err = allNames(b.path(tmpDir))
	if err != nil {
		b.logger().Warn("nuvom file backend: cannot sweep temp files", "error", err)
	}
	gone := map[string]bool{}
	for _, n := range names {
		owner, ok := ownerOfTemp(n)
		if !ok || owner == b.owner {
			continue
		}
		dead, seen := gone[owner]
		if !seen {
			_, err := os.Stat(b.path(locksDir, ownerLock(owner)))
			dead = errors.Is(err, fs.ErrNotExist)
			gone[owner] = dead
		}
		if dead && remove(b.path(tmpDir, n)) == nil {
			temps++
		}
	}
	if temps > 0 || owners > 0 {
		b.logger().Warn("nuvom file backend: removed files of processes that ended without closing the backend",
			"owners", owners, "temp_files", temps)
	}
	if locks > 0 {
		b.logger().Debug("nuvom file backend: removed unused lock files", "count", locks)
	}
}

// removeTemps removes the temp files of owner, whose owner lock the caller
// holds, and returns how many it removed.
func (b *Backend) removeTemps(owner string) int {
	names, err := allNames(b.path(tmpDir))
	if err != nil {
		b.logger().Warn("nuvom file backend: cannot sweep temp files", "error", err)
		return 0
	}
	n := 0
	for _, name := range names {
		if o, ok := ownerOfTemp(name); ok && o == owner {
			if err := remove(b.path(tmpDir, name)); err != nil {
				b.logger().Warn("nuvom file backend: cannot remove temp file", "path", b.path(tmpDir, name), "error", err)
				continue
			}
			n++
		}
	}
	return n
}

// allNames lists every entry of dir, hidden ones included; a missing folder
// has none.
func allNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open folder %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read folder %s: %w", dir, err)
	}
	return names, nil
}
