package file

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Get returns job id. It first reads without a lock; when the file moved
// between folders while it looked (or is undecodable), it looks again under
// the job's lock, where locations are stable.
func (b *Backend) Get(ctx context.Context, id string) (*backend.Job, error) {
	return b.get(ctx, id, nil)
}

// get is Get; listed is locateIn's, for a caller that reads many jobs.
func (b *Backend) get(ctx context.Context, id string, listed *map[string]string) (*backend.Job, error) {
	if checkID(id) != nil {
		return nil, fmt.Errorf("file backend get job %q: %w", id, backend.ErrNotFound)
	}
	if path, corrupt, err := b.locateIn(id, listed); err == nil {
		if corrupt {
			return corruptJob(path, id), nil
		}
		if j, err := readJob(path, id); err == nil {
			return j, nil
		}
	}
	unlock, err := b.lock(ctx, jobLock(id))
	if err != nil {
		return nil, fmt.Errorf("file backend get: %w", err)
	}
	defer unlock()
	j, _, _, err := b.getLocked(id)
	if err != nil {
		return nil, fmt.Errorf("file backend get: %w", err)
	}
	return j, nil
}

// stored is one job file found by a folder walk.
type stored struct {
	id      string
	path    string
	corrupt bool
	running bool
}

// walk lists every job file, newest (highest id) first. A job seen twice
// because it moved during the walk is listed once.
func (b *Backend) walk() ([]stored, error) {
	var out []stored
	for _, top := range []string{readyDir, scheduledDir} {
		dirs, err := readNames(b.path(top))
		if err != nil {
			return nil, err
		}
		for _, d := range dirs {
			names, err := readNames(b.path(top, d))
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				if e, ok := parseName(n); ok {
					out = append(out, stored{id: e.id, path: b.path(top, d, n)})
				}
			}
		}
	}
	for _, top := range []string{runningDir, doneDir, corruptDir, pendingDir} {
		names, err := readNames(b.path(top))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			s := stored{id: n, path: b.path(top, n), running: top == runningDir}
			if top == corruptDir {
				id, ok := idOfCorrupt(n)
				if !ok {
					continue
				}
				s.id, s.corrupt = id, true
			}
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, k int) bool { return out[i].id > out[k].id })
	return slices.CompactFunc(out, func(a, c stored) bool { return a.id == c.id }), nil
}

// load reads a walked file; a file that moved since the walk is looked up
// again by id. ok is false for a job that no longer exists.
func (b *Backend) load(ctx context.Context, s stored) (*backend.Job, bool, error) {
	if s.corrupt {
		return corruptJob(s.path, s.id), true, nil
	}
	if j, err := readJob(s.path, s.id); err == nil {
		return j, true, nil
	}
	j, err := b.Get(ctx, s.id)
	if errors.Is(err, backend.ErrNotFound) {
		return nil, false, nil
	}
	return j, err == nil, err
}

// List returns jobs matching f, newest first. It walks folder names and reads
// job files newest first until the limit is reached.
func (b *Backend) List(ctx context.Context, f backend.ListFilter) ([]*backend.Job, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	all, err := b.walk()
	if err != nil {
		return nil, fmt.Errorf("file backend list: %w", err)
	}
	out := []*backend.Job{}
	for _, s := range all {
		if len(out) == limit {
			break
		}
		j, ok, err := b.load(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("file backend list: %w", err)
		}
		if ok && matches(j, f) {
			out = append(out, j)
		}
	}
	return out, nil
}

func matches(j *backend.Job, f backend.ListFilter) bool {
	return (len(f.States) == 0 || slices.Contains(f.States, j.State)) &&
		(f.Task == "" || f.Task == j.Task) &&
		(f.Queue == "" || f.Queue == j.Queue) &&
		(f.Since.IsZero() || !j.CreatedAt.Before(backend.ClampTime(f.Since)))
}

// Cancel moves a pending, scheduled, queued, retrying or running job to
// cancelled; a running job's lease ends and its attempt is recorded as
// cancelled. The children of a workflow step are settled after.
func (b *Backend) Cancel(ctx context.Context, id string, now time.Time) error {
	if err := b.cancel(ctx, id, now, "cancelled while running", ""); err != nil {
		return err
	}
	if err := b.settleChildren(ctx, id, backend.ClampTime(now)); err != nil {
		return fmt.Errorf("file backend cancel: %w", err)
	}
	return nil
}

// cancel is Cancel without the settling; msg is a running job's error, and
// why, when set, every job's (a workflow's steps say why they ended).
func (b *Backend) cancel(ctx context.Context, id string, now time.Time, msg, why string) error {
	if checkID(id) != nil {
		return fmt.Errorf("file backend cancel job %q: %w", id, backend.ErrNotFound)
	}
	unlock, err := b.lock(ctx, jobLock(id))
	if err != nil {
		return fmt.Errorf("file backend cancel: %w", err)
	}
	defer unlock()
	j, path, corrupt, err := b.getLocked(id)
	if err != nil {
		return fmt.Errorf("file backend cancel: %w", err)
	}
	now = backend.ClampTime(now)
	switch {
	case corrupt:
		return fmt.Errorf("file backend cancel job %s: it is quarantined: %w", id, backend.ErrWrongState)
	case j.State == backend.StateRunning:
		j.Attempts = append(j.Attempts, backend.Attempt{Number: j.Attempt, StartedAt: j.StartedAt,
			FinishedAt: now, Worker: j.LeaseOwner, Outcome: backend.OutcomeCancelled, Error: msg})
		j.Error, j.ErrorChain, j.PanicStack, j.Result = msg, nil, "", nil
		j.LeaseOwner, j.LeaseUntil = "", time.Time{}
		defer b.signal() // the worker running it looks at its leases
	case j.State != backend.StateScheduled && j.State != backend.StateQueued && j.State != backend.StateRetrying &&
		j.State != backend.StatePending:
		return fmt.Errorf("file backend cancel job %s in state %s: %w", id, j.State, backend.ErrWrongState)
	}
	if why != "" {
		j.Error = why
	}
	j.State = backend.StateCancelled
	j.FinishedAt = now
	// Content first: a cancelled file left in ready/ by a crash is moved to
	// done/ by the next Claim that meets it, and is never run.
	if err := b.saveThenMove(path, j, now); err != nil {
		return fmt.Errorf("file backend cancel: %w", err)
	}
	return nil
}

// Retry queues a failed, cancelled or quarantined job again. A quarantined
// file that could not be decoded cannot be retried: its payload is unreadable.
func (b *Backend) Retry(ctx context.Context, id string, now time.Time) error {
	if checkID(id) != nil {
		return fmt.Errorf("file backend retry job %q: %w", id, backend.ErrNotFound)
	}
	unlock, err := b.lock(ctx, jobLock(id))
	if err != nil {
		return fmt.Errorf("file backend retry: %w", err)
	}
	defer unlock()
	j, path, corrupt, err := b.getLocked(id)
	if err != nil {
		return fmt.Errorf("file backend retry: %w", err)
	}
	now = backend.ClampTime(now)
	switch {
	case corrupt:
		return fmt.Errorf("file backend retry job %s: %w (%w): the payload in %s is unreadable; inspect it or purge it",
			id, ErrCorrupt, backend.ErrWrongState, path)
	case j.State != backend.StateFailed && j.State != backend.StateCancelled && j.State != backend.StateQuarantined:
		return fmt.Errorf("file backend retry job %s in state %s: %w", id, j.State, backend.ErrWrongState)
	}
	j.State = backend.StateQueued
	j.RunAt = now
	if j.Attempt >= j.MaxAttempts {
		j.MaxAttempts = j.Attempt + 1
	}
	j.FinishedAt = time.Time{}
	j.Result = nil
	j.Error = ""
	j.ErrorChain = nil
	j.PanicStack = ""
	// Move first: a crash before the write leaves the final record in ready/,
	// which the next Claim moves back to done/ (the retry did not happen).
	if err := b.moveThenSave(path, j, now); err != nil {
		return fmt.Errorf("file backend retry: %w", err)
	}
	b.signal()
	return nil
}

// Stats counts jobs per queue and state, reading every job file. Quarantined
// files that could not be decoded count under the empty queue name.
func (b *Backend) Stats(ctx context.Context, now time.Time) ([]backend.QueueStat, error) {
	all, err := b.walk()
	if err != nil {
		return nil, fmt.Errorf("file backend stats: %w", err)
	}
	type key struct {
		queue string
		state backend.State
	}
	counts := map[key]*backend.QueueStat{}
	for _, s := range all {
		j, ok, err := b.load(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("file backend stats: %w", err)
		}
		if !ok {
			continue
		}
		k := key{j.Queue, j.State}
		st := counts[k]
		if st == nil {
			st = &backend.QueueStat{Queue: j.Queue, State: j.State}
			counts[k] = st
		}
		st.Count++
		if !s.corrupt && (st.OldestRunAt.IsZero() || j.RunAt.Before(st.OldestRunAt)) {
			st.OldestRunAt = j.RunAt
		}
	}
	out := make([]backend.QueueStat, 0, len(counts))
	for _, st := range counts {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, c backend.QueueStat) int {
		return cmp.Or(cmp.Compare(a.Queue, c.Queue),
			cmp.Compare(slices.Index(backend.AllStates(), a.State), slices.Index(backend.AllStates(), c.State)))
	})
	return out, nil
}

// Purge deletes jobs matching f that are not running, including quarantined
// files that could not be decoded (those have no queue, so a Queue filter
// leaves them). It also drops unique-key index entries of deleted jobs.
func (b *Backend) Purge(ctx context.Context, f backend.PurgeFilter) (int, error) {
	return b.purge(ctx, f, time.Time{})
}

// PurgeEnded deletes the jobs matching f that ended before before.
func (b *Backend) PurgeEnded(ctx context.Context, before time.Time, f backend.PurgeFilter) (int, error) {
	if before.IsZero() {
		return 0, fmt.Errorf("file backend: %w", backend.ErrNoCutoff)
	}
	return b.purge(ctx, f, before)
}

// purge deletes the jobs matching f that are not running and, unless before
// is zero, ended before it.
func (b *Backend) purge(ctx context.Context, f backend.PurgeFilter, before time.Time) (int, error) {
	all, err := b.walk()
	if err != nil {
		return 0, fmt.Errorf("file backend purge: %w", err)
	}
	n := 0
	for _, s := range all {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("file backend purge: %w", err)
		}
		if s.running || (len(f.IDs) > 0 && !slices.Contains(f.IDs, s.id)) {
			continue
		}
		ok, err := b.purgeOne(ctx, s, f, before)
		if err != nil {
			return n, fmt.Errorf("file backend purge: %w", err)
		}
		if ok {
			n++
		}
	}
	if !before.IsZero() { // retention: Purge's own deletions forget their steps as they go
		if err := b.sweepSteps(ctx, time.Now()); err != nil {
			return n, fmt.Errorf("file backend purge: %w", err)
		}
	}
	return n, nil
}

// TrimEnded deletes, queue by queue, the ended jobs matching f but the
// newest keep (backend.BeyondNewest). A file that cannot be decoded counts
// as a quarantined job of no queue that ended when it was last written.
func (b *Backend) TrimEnded(ctx context.Context, keep int, f backend.PurgeFilter) (int, error) {
	if keep < 0 {
		return 0, fmt.Errorf("file backend: %w", backend.ErrNegativeKeep)
	}
	if keep > 0 {
		// Ended jobs are in done/ (and corrupt/): no more of them than keep
		// in all queues together leaves nothing to trim, without reading a
		// job. (A cancelled file a crash left in ready/ is counted once a
		// claim has moved it to done/.)
		n := 0
		for _, d := range []string{doneDir, corruptDir} {
			names, err := readNames(b.path(d))
			if err != nil {
				return 0, fmt.Errorf("file backend trim: %w", err)
			}
			n += len(names)
		}
		if n <= keep {
			return 0, nil
		}
	}
	all, err := b.walk()
	if err != nil {
		return 0, fmt.Errorf("file backend trim: %w", err)
	}
	var ended []backend.EndedJob
	files := map[string]stored{}
	graphs := map[string]*backend.Graph{}
	for _, s := range all {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("file backend trim: %w", err)
		}
		if s.running || (len(f.IDs) > 0 && !slices.Contains(f.IDs, s.id)) {
			continue
		}
		e := backend.EndedJob{ID: s.id}
		if s.corrupt {
			fi, err := os.Stat(s.path)
			if err != nil || !corruptSelected(f) {
				continue
			}
			e.FinishedAt = fi.ModTime()
		} else if j, err := readJob(s.path, s.id); err == nil && j.State.Final() && purgeSelects(j, f, time.Time{}) && !b.waitedFor(s.id, graphs) {
			e.Queue, e.FinishedAt = j.Queue, j.FinishedAt
		} else {
			continue // moved, undecodable (the next walk sees it in corrupt/) or not selected
		}
		ended = append(ended, e)
		files[s.id] = s
	}
	n := 0
	for _, e := range backend.BeyondNewest(ended, keep) {
		// The job must still be the one that ended then: one retried
		// meanwhile is kept.
		ok, err := b.deleteStored(ctx, files[e.ID], func(j *backend.Job) bool {
			return j.State.Final() && purgeSelects(j, f, time.Time{}) && j.FinishedAt.Equal(e.FinishedAt)
		})
		if err != nil {
			return n, fmt.Errorf("file backend trim: %w", err)
		}
		if ok {
			n++
		}
	}
	if err := b.sweepSteps(ctx, time.Now()); err != nil {
		return n, fmt.Errorf("file backend trim: %w", err)
	}
	return n, nil
}

// purgeSelects reports whether purge (f, and before, see purge) selects j.
func purgeSelects(j *backend.Job, f backend.PurgeFilter, before time.Time) bool {
	return matches(j, backend.ListFilter{States: f.States, Queue: f.Queue}) &&
		j.State != backend.StateRunning && backend.EndedBefore(before, j.State, j.FinishedAt)
}

// retainSelects is purgeSelects for retention (before set): it also keeps a
// job that a pending workflow step waits for.
func (b *Backend) retainSelects(j *backend.Job, f backend.PurgeFilter, before time.Time, graphs map[string]*backend.Graph) bool {
	return purgeSelects(j, f, before) && (before.IsZero() || !b.waitedFor(j.ID, graphs))
}

// corruptSelected reports whether f selects files that cannot be decoded
// (quarantined, of no queue).
func corruptSelected(f backend.PurgeFilter) bool {
	return f.Queue == "" && (len(f.States) == 0 || slices.Contains(f.States, backend.StateQuarantined))
}

// purgeOne deletes the job s if f (and before, see purge) selects it. A
// file that cannot be decoded counts as a quarantined job that ended when
// the file was last written.
func (b *Backend) purgeOne(ctx context.Context, s stored, f backend.PurgeFilter, before time.Time) (bool, error) {
	graphs := map[string]*backend.Graph{}
	selects := func(j *backend.Job) bool { return b.retainSelects(j, f, before, graphs) }
	if s.corrupt {
		if !corruptSelected(f) {
			return false, nil
		}
		if !before.IsZero() {
			// Its end time cannot be read: the file's last write stands
			// in for it.
			fi, err := os.Stat(s.path)
			if err != nil || !backend.EndedBefore(before, backend.StateQuarantined, fi.ModTime()) {
				return false, nil //nolint:nilerr // gone meanwhile, or too recent
			}
		}
	} else if j, err := readJob(s.path, s.id); err != nil || !selects(j) {
		return false, nil //nolint:nilerr // moved or undecodable: the next purge or claim deals with it
	}
	return b.deleteStored(ctx, s, selects)
}

// deleteStored deletes the job s under its lock, if selects still holds for
// it there (a file that cannot be decoded is deleted as it is).
func (b *Backend) deleteStored(ctx context.Context, s stored, selects func(*backend.Job) bool) (bool, error) {
	unlock, err := b.lock(ctx, jobLock(s.id))
	if err != nil {
		return false, err
	}
	defer unlock()
	var j *backend.Job
	if !s.corrupt {
		// Check again under the lock: the job may have changed since.
		if j, err = readJob(s.path, s.id); err != nil || !selects(j) {
			return false, nil //nolint:nilerr // as above
		}
	}
	if err := remove(s.path); err != nil {
		return false, fmt.Errorf("delete %s: %w", s.path, err)
	}
	if err := remove(b.path(idsDir, s.id)); err != nil {
		return false, fmt.Errorf("delete id marker of job %s: %w", s.id, err)
	}
	if j != nil && j.UniqueKey != "" {
		b.dropUnique(ctx, j)
	}
	b.forgetStep(s.id)
	return true, nil
}

// dropUnique removes the unique-key index of j's key if it still names j.
func (b *Backend) dropUnique(ctx context.Context, j *backend.Job) {
	h := keyFile(j.Task, j.UniqueKey)
	unlock, err := b.lock(ctx, keyLock(h))
	if err != nil {
		return
	}
	defer unlock()
	p := b.path(uniqueDir, h)
	data, err := readFile(p)
	if errors.Is(err, fs.ErrNotExist) || err != nil {
		return
	}
	var idx uniqueIndex
	if unmarshal(data, &idx) == nil && idx.ID == j.ID {
		_ = remove(p)
	}
}
