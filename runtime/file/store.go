package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/internal/filelock"
	"github.com/nuvom/nuvom/internal/safemsgpack"
	"github.com/nuvom/nuvom/runtime/backend"
)

// tryLock takes the lock locks/<name> without waiting; ok is false while
// another holder (a goroutine of this or any process) has it. Locks are
// operating-system file locks (see package filelock): the lock of a process
// that dies is free at once. Unlocking removes the lock file, so locks/ holds
// only the locks in use and those a crash left, which a sweep removes.
func (b *Backend) tryLock(name string) (unlock func(), ok bool, err error) {
	l, err := filelock.TryLock(b.path(locksDir, name))
	if err != nil || l == nil {
		return nil, false, err
	}
	return func() { b.unlock(l) }, true, nil
}

// unlock releases l and removes its lock file.
func (b *Backend) unlock(l *filelock.Lock) {
	if err := l.UnlockRemove(); err != nil {
		b.logger().Error("nuvom file backend: cannot release lock", "path", l.Path(), "error", err)
	}
}

// lock waits for locks/<name> until ctx ends.
func (b *Backend) lock(ctx context.Context, name string) (unlock func(), err error) {
	l, err := filelock.Wait(ctx, b.path(locksDir, name))
	if err != nil {
		return nil, err
	}
	return func() { b.unlock(l) }, nil
}

// encodeJob is the file content of j.
func encodeJob(j *backend.Job) ([]byte, error) {
	data, err := msgpack.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	return data, nil
}

// unmarshal decodes a job file's msgpack: a damaged file must not take the
// process down, by a decoder panic or by a huge allocation (both found by
// FuzzDecodeJob; see safemsgpack).
func unmarshal(data []byte, v any) error { return safemsgpack.Unmarshal(data, v) }

// decodeJob parses a job file; failures wrap ErrCorrupt.
func decodeJob(data []byte, wantID string) (*backend.Job, error) {
	var j backend.Job
	if err := unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	switch {
	case j.ID == "":
		return nil, fmt.Errorf("%w: no job id", ErrCorrupt)
	case wantID != "" && j.ID != wantID:
		return nil, fmt.Errorf("%w: holds job %q", ErrCorrupt, j.ID)
	case !j.State.Valid():
		return nil, fmt.Errorf("%w: unknown state %q", ErrCorrupt, j.State)
	}
	if j.Attempts == nil {
		j.Attempts = []backend.Attempt{}
	}
	return &j, nil
}

// readJob reads and decodes the job file at path, which should hold job id.
func readJob(path, id string) (*backend.Job, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	j, err := decodeJob(data, id)
	if err != nil {
		return nil, fmt.Errorf("job file %s: %w", path, err)
	}
	return j, nil
}

// save writes j over path atomically.
func (b *Backend) save(path string, j *backend.Job) error {
	data, err := encodeJob(j)
	if err != nil {
		return err
	}
	return b.writeAtomic(path, data)
}

// saveThenMove writes j's new content over from, then renames it to the folder
// the content implies. A crash in between leaves a file whose folder is stale;
// the sweeps in Claim and RecoverExpired repair it. Call with the job's lock.
func (b *Backend) saveThenMove(from string, j *backend.Job, now time.Time) error {
	to, err := b.home(j, now)
	if err != nil {
		return err
	}
	if err := b.save(from, j); err != nil {
		return err
	}
	if to != from {
		if err := rename(from, to); err != nil {
			return fmt.Errorf("move job %s: %w", j.ID, err)
		}
	}
	return nil
}

// moveThenSave renames from to the folder of j's new content, then writes the
// content. Used where a crash in between should leave the file in a folder
// that a sweep reads (ready/ or running/). Call with the job's lock.
func (b *Backend) moveThenSave(from string, j *backend.Job, now time.Time) error {
	to, err := b.home(j, now)
	if err != nil {
		return err
	}
	if to != from {
		if err := rename(from, to); err != nil {
			return fmt.Errorf("move job %s: %w", j.ID, err)
		}
	}
	return b.save(to, j)
}

// quarantine moves an undecodable job file at path to corrupt/<id>.corrupt
// and logs where it was found (origin, which differs from path when a claim
// had just renamed it into running/) and where it went. Call with the job's lock.
func (b *Backend) quarantine(path, origin, id string, cause error) {
	dst := b.path(corruptDir, id+corruptExt)
	if _, err := os.Stat(dst); err == nil {
		dst = b.path(corruptDir, id+"."+strconv.FormatInt(time.Now().UnixNano(), 10)+corruptExt)
	}
	if err := rename(path, dst); err != nil {
		b.logger().Error("nuvom file backend: cannot quarantine undecodable job file", "path", origin, "error", err, "cause", cause)
		return
	}
	b.logger().Error("nuvom file backend: quarantined undecodable job file", "path", origin, "moved_to", dst, "error", cause)
}

// readOrQuarantine reads the job at path; an undecodable file is quarantined
// and reported with ok false. Call with the job's lock.
func (b *Backend) readOrQuarantine(path, origin, id string) (j *backend.Job, ok bool, err error) {
	j, err = readJob(path, id)
	if errors.Is(err, ErrCorrupt) {
		b.quarantine(path, origin, id, err)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return j, true, nil
}

// locate returns the path of job id's file, corrupt when it is the quarantined
// copy of an undecodable file, or ErrNotFound. The answer is stable only while
// the caller holds the job's lock.
func (b *Backend) locate(id string) (path string, corrupt bool, err error) {
	return b.locateIn(id, nil)
}

// locateIn is locate for a caller that locates many jobs: with listed
// non-nil, a job in ready/ or scheduled/ is looked up in *listed, made on
// first use by one listing of those folders (listWaiting), instead of a
// listing per job. A path from it may be stale (the job moved since): the
// caller reads the file and falls back to Get when it is gone.
func (b *Backend) locateIn(id string, listed *map[string]string) (path string, corrupt bool, err error) {
	for _, p := range []string{b.path(runningDir, id), b.path(doneDir, id), b.path(pendingDir, id)} {
		if exists(p) {
			return p, false, nil
		}
	}
	if p := b.path(corruptDir, id+corruptExt); exists(p) {
		return p, true, nil
	}
	if !exists(b.path(idsDir, id)) {
		return "", false, fmt.Errorf("job %s: %w", id, backend.ErrNotFound)
	}
	if listed != nil {
		if *listed == nil {
			m, err := b.listWaiting()
			if err != nil {
				return "", false, err
			}
			*listed = m
		}
		if p, ok := (*listed)[id]; ok {
			return p, false, nil
		}
		// Not there when the folders were listed: moved into them since.
	}
	for _, top := range []string{readyDir, scheduledDir} {
		queues, err := readNames(b.path(top))
		if err != nil {
			return "", false, err
		}
		for _, q := range queues {
			names, err := readNames(b.path(top, q))
			if err != nil {
				return "", false, err
			}
			for _, n := range names {
				if len(n) > prefixLen && n[prefixLen:] == id {
					return b.path(top, q, n), false, nil
				}
			}
		}
	}
	return "", false, fmt.Errorf("job %s: %w", id, backend.ErrNotFound)
}

// listWaiting returns the path of every job file in ready/ and scheduled/,
// by job id.
func (b *Backend) listWaiting() (map[string]string, error) {
	out := map[string]string{}
	for _, top := range []string{readyDir, scheduledDir} {
		queues, err := readNames(b.path(top))
		if err != nil {
			return nil, err
		}
		for _, q := range queues {
			names, err := readNames(b.path(top, q))
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				if len(n) > prefixLen {
					out[n[prefixLen:]] = b.path(top, q, n)
				}
			}
		}
	}
	return out, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// corruptJob is the record List and Get show for a quarantined file.
func corruptJob(path, id string) *backend.Job {
	j := &backend.Job{
		ID:       id,
		State:    backend.StateQuarantined,
		Error:    "job file cannot be decoded; kept as " + filepath.ToSlash(path),
		Attempts: []backend.Attempt{},
	}
	if fi, err := os.Stat(path); err == nil {
		j.CreatedAt = fi.ModTime()
		j.FinishedAt = fi.ModTime()
	}
	return j
}

// getLocked reads job id with its lock held. The quarantined copy of an
// undecodable file is returned as corruptJob with corrupt true.
func (b *Backend) getLocked(id string) (j *backend.Job, path string, corrupt bool, err error) {
	path, corrupt, err = b.locate(id)
	if err != nil {
		return nil, "", false, err
	}
	if corrupt {
		return corruptJob(path, id), path, true, nil
	}
	j, ok, err := b.readOrQuarantine(path, path, id)
	if err != nil {
		return nil, "", false, err
	}
	if !ok {
		p := b.path(corruptDir, id+corruptExt)
		return corruptJob(p, id), p, true, nil
	}
	return j, path, false, nil
}

// idOfCorrupt returns the id shown for a file in corrupt/.
func idOfCorrupt(name string) (string, bool) {
	return strings.CutSuffix(name, corruptExt)
}
