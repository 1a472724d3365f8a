package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Enqueue stores jobs all-or-nothing. Files have no transactions, so it
// works in two phases. First it takes every id (an O_CREATE|O_EXCL marker
// per id, so a batch holding an id that exists inserts nothing) and the lock
// of every unique key of the batch, decides the duplicates, and writes each
// new job's file, and each changed key index, under a hidden temp name in the
// folder where it belongs: claimers, List and Get do not see those. Any
// error or a cancelled ctx up to here removes what was written and returns.
// Then it renames the temp files into place. A rename failing (a storage
// fault) undoes the renames made so far; a job that another process claimed
// in that instant cannot be taken back, and the error names it. A process
// killed while it renames leaves part of the batch stored: unlike SQLite's
// transactions, this backend is not atomic across a crash.
func (b *Backend) Enqueue(ctx context.Context, jobs []*backend.Job) ([]backend.EnqueueResult, error) {
	res := make([]backend.EnqueueResult, len(jobs))
	if len(jobs) == 0 {
		return res, nil
	}
	batch := make([]*backend.Job, len(jobs))
	for i, j := range jobs {
		if err := checkNew(j); err != nil {
			return nil, fmt.Errorf("file backend enqueue: job %d of %d: %w", i+1, len(jobs), err)
		}
		c := *j
		c.Attempts = slices.Clone(j.Attempts)
		if c.Attempts == nil {
			c.Attempts = []backend.Attempt{}
		}
		c.ClampTimes()
		batch[i] = &c
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file backend enqueue: %w", err)
	}
	// Take every id with an O_EXCL marker file, so that a batch holding an
	// id that exists (in this or another process) inserts nothing.
	for i, j := range batch {
		if err := b.claimID(j.ID); err != nil {
			b.dropIDs(batch[:i], nil)
			return nil, fmt.Errorf("file backend enqueue: %w", err)
		}
	}
	unlock, err := b.lockKeys(ctx, batch)
	if err != nil {
		b.dropIDs(batch, nil)
		return nil, fmt.Errorf("file backend enqueue: %w", err)
	}
	defer unlock()
	dup, kept, err := b.stageAndPublish(ctx, batch, res)
	if err != nil {
		b.dropIDs(batch, kept)
		return nil, fmt.Errorf("file backend enqueue: %w", err)
	}
	for i, j := range batch {
		if dup[i] {
			_ = remove(b.path(idsDir, j.ID))
		}
	}
	b.signal()
	return res, nil
}

// checkNew refuses a job that cannot be enqueued, as the other backends do.
func checkNew(j *backend.Job) error {
	switch {
	case j == nil:
		return errors.New("job is nil")
	case j.Task == "":
		return fmt.Errorf("job %s has no task name", j.ID)
	case j.Queue == "":
		return fmt.Errorf("job %s has no queue", j.ID)
	case j.State != backend.StateQueued && j.State != backend.StateScheduled:
		return fmt.Errorf("job %s: state %q is not queued or scheduled", j.ID, j.State)
	case j.RunAt.IsZero() || j.CreatedAt.IsZero():
		return fmt.Errorf("job %s: run-at and created times must be set", j.ID)
	}
	return checkID(j.ID)
}

// dropIDs removes the id markers of jobs, except those in keep.
func (b *Backend) dropIDs(jobs []*backend.Job, keep map[string]bool) {
	for _, j := range jobs {
		if !keep[j.ID] {
			_ = remove(b.path(idsDir, j.ID))
		}
	}
}

// lockKeys takes the lock of every unique key of jobs, in one global order
// so that concurrent batches cannot deadlock.
func (b *Backend) lockKeys(ctx context.Context, jobs []*backend.Job) (unlock func(), err error) {
	var keys []string
	for _, j := range jobs {
		if j.UniqueKey != "" {
			keys = append(keys, keyFile(j.Task, j.UniqueKey))
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	unlocks := make([]func(), 0, len(keys))
	unlock = func() {
		for _, u := range unlocks {
			u()
		}
	}
	for _, h := range keys {
		u, err := b.lock(ctx, keyLock(h))
		if err != nil {
			unlock()
			return nil, err
		}
		unlocks = append(unlocks, u)
	}
	return unlock, nil
}

// uniqueIndex is the content of unique/<hash>: the job holding a task's key
// and the end of its window.
type uniqueIndex struct {
	Task  string    `msgpack:"task"`
	Key   string    `msgpack:"key"`
	ID    string    `msgpack:"id"`
	Until time.Time `msgpack:"until"`
}

// staged is a file written under a temp name, to be renamed to its place.
type staged struct {
	tmp, to string
	job     string // the job id; "" for a key index
	old     []byte // a key index's previous content (nil: there was none)
	moved   bool
}

// stageAndPublish decides the duplicates of batch (with every key lock
// held), fills res, stages the new files and renames them into place. On
// error nothing of the batch is left in place, except the jobs in kept: those
// another process claimed while a failed publish was being undone.
func (b *Backend) stageAndPublish(ctx context.Context, batch []*backend.Job, res []backend.EnqueueResult) (dup []bool, kept map[string]bool, err error) {
	// Key indexes go first in publish order, so that a job file failing to
	// move exercises the same undo as a key index.
	var indexFiles, jobFiles []*staged
	defer func() {
		if err != nil {
			kept = b.unstage(append(indexFiles, jobFiles...))
		}
	}()
	dup = make([]bool, len(batch))
	indexes := map[string]*uniqueIndex{}
	previous := map[string][]byte{} // key indexes as they were
	changed := map[string]bool{}    // key indexes this batch rewrites
	for i, j := range batch {
		res[i] = backend.EnqueueResult{ID: j.ID}
		if j.UniqueKey == "" {
			continue
		}
		h := keyFile(j.Task, j.UniqueKey)
		cur, seen := indexes[h]
		if !seen {
			p := b.path(uniqueDir, h)
			data, err := readFile(p)
			switch {
			case err == nil:
				previous[h] = data
				var idx uniqueIndex
				if unmarshal(data, &idx) == nil {
					cur = &idx
				}
			case !errors.Is(err, fs.ErrNotExist):
				return nil, nil, fmt.Errorf("read unique index %s: %w", p, err)
			}
		}
		if cur != nil && cur.Task == j.Task && cur.Key == j.UniqueKey && cur.Until.After(j.CreatedAt) {
			res[i] = backend.EnqueueResult{ID: cur.ID, Duplicate: true}
			dup[i] = true
			indexes[h] = cur
			continue
		}
		indexes[h] = &uniqueIndex{Task: j.Task, Key: j.UniqueKey, ID: j.ID, Until: j.UniqueUntil}
		changed[h] = true
	}
	for i, j := range batch {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if dup[i] {
			continue
		}
		to, err := b.home(j, j.CreatedAt)
		if err != nil {
			return nil, nil, err
		}
		data, err := encodeJob(j)
		if err != nil {
			return nil, nil, err
		}
		tmp, err := b.stage(to, data)
		if err != nil {
			return nil, nil, err
		}
		jobFiles = append(jobFiles, &staged{tmp: tmp, to: to, job: j.ID})
	}
	for _, h := range slices.Sorted(maps.Keys(changed)) {
		data, err := msgpack.Marshal(indexes[h])
		if err != nil {
			return nil, nil, fmt.Errorf("encode unique index: %w", err)
		}
		to := b.path(uniqueDir, h)
		tmp, err := b.stage(to, data)
		if err != nil {
			return nil, nil, err
		}
		indexFiles = append(indexFiles, &staged{tmp: tmp, to: to, old: previous[h]})
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	// Publish. From here on ctx is not looked at: stopping halfway would
	// leave part of the batch stored.
	for _, f := range append(indexFiles, jobFiles...) {
		if err := rename(f.tmp, f.to); err != nil {
			return nil, nil, fmt.Errorf("publish %s: %w", f.to, err)
		}
		f.moved = true
	}
	return dup, nil, nil
}

// stage writes data to a new temp file in tmp/ (named by this Backend's
// owner, so a sweep removes it if this process dies) and returns its path.
func (b *Backend) stage(to string, data []byte) (string, error) {
	f, err := b.tempFile()
	if err != nil {
		return "", fmt.Errorf("write %s: %w", to, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil && b.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", to, err)
	}
	return tmp, nil
}

// unstage undoes stageAndPublish: temp files are removed, key indexes that
// were replaced get their previous content back, and job files already in
// place are removed under their job's lock unless a claimer took them in the
// meantime; it returns the ids of those, which stay stored.
func (b *Backend) unstage(files []*staged) (kept map[string]bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, f := range files {
		if !f.moved {
			_ = remove(f.tmp)
			continue
		}
		if f.job == "" {
			var err error
			if f.old != nil {
				err = b.writeAtomic(f.to, f.old)
			} else {
				err = remove(f.to)
			}
			if err != nil {
				b.logger().Error("nuvom file backend: cannot restore a unique-key index after a failed enqueue", "path", f.to, "error", err)
			}
			continue
		}
		if !b.takeBack(ctx, f) {
			if kept == nil {
				kept = map[string]bool{}
			}
			kept[f.job] = true
			b.logger().Error("nuvom file backend: a job of a failed enqueue was claimed before it could be taken back", "job", f.job)
		}
	}
	return kept
}

// takeBack removes the published file of a job of a failed enqueue, under
// the job's lock; false means a claimer moved it first.
func (b *Backend) takeBack(ctx context.Context, f *staged) bool {
	unlock, err := b.lock(ctx, jobLock(f.job))
	if err != nil {
		return false
	}
	defer unlock()
	if !exists(f.to) {
		return false
	}
	return remove(f.to) == nil
}

// claimID creates the marker ids/<id>; it fails when the id is taken.
func (b *Backend) claimID(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	p := b.path(idsDir, id)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("job %s already exists", id)
	}
	if err != nil {
		return fmt.Errorf("create id marker: %w", err)
	}
	return f.Close()
}

// queueDirs returns the folder names (under ready/ or scheduled/) of the
// requested queues, or of every queue present under top when none is given.
func (b *Backend) queueDirs(top string, queues []string) ([]string, error) {
	if len(queues) == 0 {
		return readNames(b.path(top))
	}
	out := make([]string, 0, len(queues))
	for _, q := range queues {
		out = append(out, queueDir(q))
	}
	return out, nil
}

// entries lists the parseable job files in top/<dir> for each dir, sorted.
func (b *Backend) entries(top string, dirs []string) ([]entry, error) {
	var out []entry
	for _, d := range dirs {
		names, err := readNames(b.path(top, d))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if e, ok := parseName(n); ok {
				e.dir = d
				out = append(out, e)
			}
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].less(out[k]) })
	return out, nil
}

// Claim promotes scheduled jobs that are due, then walks the ready folders in
// claim order (sorted file names; no job file is read until it is being
// claimed, except to learn a candidate's task when req.Tasks is set). For
// each candidate it takes the job's lock (skipping jobs another process is
// working on) and renames the file into running/; the claimer whose rename
// succeeds owns the job and writes the lease into the file.
func (b *Backend) Claim(ctx context.Context, req backend.ClaimRequest) ([]*backend.Job, error) {
	out := []*backend.Job{}
	if req.Limit <= 0 {
		return out, nil
	}
	if jobs, handled, err := b.limitedClaim(ctx, req); handled { // limits.go
		return jobs, err
	}
	until := backend.ClampTime(req.Now.Add(req.LeaseFor))
	req.Now = backend.ClampTime(req.Now)
	if err := b.promote(ctx, req.Queues, req.Now); err != nil {
		return nil, fmt.Errorf("file backend claim: %w", err)
	}
	dirs, err := b.queueDirs(readyDir, req.Queues)
	if err != nil {
		return nil, fmt.Errorf("file backend claim: %w", err)
	}
	if dirs, err = b.unpaused(dirs); err != nil {
		return nil, fmt.Errorf("file backend claim: %w", err)
	}
	cands, err := b.entries(readyDir, dirs)
	if err != nil {
		return nil, fmt.Errorf("file backend claim: %w", err)
	}
	nowKey := timeKey(req.Now)
	for _, e := range cands {
		if len(out) == req.Limit {
			break
		}
		if err := ctx.Err(); err != nil {
			return out, nil //nolint:nilerr // jobs already claimed must reach the caller
		}
		if e.next > nowKey {
			continue // not due yet (a clock behind the enqueuer's)
		}
		if len(req.Tasks) > 0 && !slices.Contains(req.Tasks, b.taskOf(e)) {
			continue
		}
		j, err := b.claimOne(e, req, until)
		if err != nil {
			if len(out) > 0 {
				b.logger().Error("nuvom file backend: claim failed", "job", e.id, "error", err)
				return out, nil
			}
			return nil, fmt.Errorf("file backend claim: %w", err)
		}
		if j != nil {
			out = append(out, j)
		}
	}
	return out, nil
}

// taskCacheMax bounds the task cache; it is emptied when full.
const taskCacheMax = 1 << 16

// taskCache remembers the task of ready files by folder and file name, so
// that a claim limited to some tasks reads each other task's file once, not
// at every claim. A name is written once per enqueue or retry (it holds the
// run-at time), and a job's task never changes, so an entry cannot go stale
// in practice; claimOne checks the task again under the lock anyway.
type taskCache struct {
	mu sync.Mutex
	m  map[string]string
}

// taskOf returns the task of the ready file e; "" when the file is gone,
// and anyTask when it cannot be decoded (claimOne quarantines it).
func (b *Backend) taskOf(e entry) string {
	key := e.dir + "/" + e.name
	c := &b.tasks
	c.mu.Lock()
	task, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return task
	}
	data, err := readFile(b.path(readyDir, e.dir, e.name))
	if err != nil {
		return "" // claimed or moved: skip it this time
	}
	var j struct {
		Task string `msgpack:"task"`
	}
	if unmarshal(data, &j) != nil || j.Task == "" {
		return anyTask
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= taskCacheMax {
		c.m = map[string]string{}
	}
	c.m[key] = j.Task
	c.mu.Unlock()
	return j.Task
}

// anyTask stands for the task of an undecodable file, which every claim
// takes (to quarantine it).
const anyTask = "\x00undecodable"

// claimOne tries to claim the ready file e; nil without error means another
// process has it or it turned out not to be claimable.
func (b *Backend) claimOne(e entry, req backend.ClaimRequest, until time.Time) (*backend.Job, error) {
	if checkID(e.id) != nil {
		return nil, nil
	}
	unlock, ok, err := b.tryLock(jobLock(e.id))
	if err != nil || !ok {
		return nil, err
	}
	defer unlock()
	from := b.path(readyDir, e.dir, e.name)
	run := b.path(runningDir, e.id)
	if err := rename(from, run); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // claimed (or moved) by someone else
		}
		return nil, fmt.Errorf("claim job %s: %w", e.id, err)
	}
	j, ok, err := b.readOrQuarantine(run, from, e.id)
	if err != nil || !ok {
		return nil, err
	}
	switch {
	case j.State == backend.StateRunning:
		return nil, nil // belongs in running/ already; lease expiry handles it
	case j.State.Final() || j.RunAt.After(req.Now):
		// A crash left the file in the wrong folder: put it where its content says.
		to, err := b.home(j, req.Now)
		if err == nil {
			err = rename(run, to)
		}
		return nil, err
	case len(req.Tasks) > 0 && !slices.Contains(req.Tasks, j.Task):
		return nil, rename(run, from) // not one of ours after all: put it back
	}
	j.State = backend.StateRunning
	j.Attempt++
	j.StartedAt = req.Now
	j.LeaseOwner = req.Worker
	j.LeaseUntil = until
	j.LeaseToken++
	if err := b.save(run, j); err != nil {
		return nil, err
	}
	return j, nil
}

// promote moves scheduled jobs whose run-at is not after now into ready/.
// The file content does not change (scheduled and retrying jobs are claimable
// once due), so this is one rename under the job's lock.
func (b *Backend) promote(ctx context.Context, queues []string, now time.Time) error {
	dirs, err := b.queueDirs(scheduledDir, queues)
	if err != nil {
		return err
	}
	due, err := b.entries(scheduledDir, dirs)
	if err != nil {
		return err
	}
	nowKey := timeKey(now)
	for _, e := range due {
		if e.first > nowKey || ctx.Err() != nil {
			break
		}
		if checkID(e.id) != nil {
			continue
		}
		unlock, ok, err := b.tryLock(jobLock(e.id))
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		err = b.ensureDir(b.path(readyDir, e.dir))
		if err == nil {
			err = rename(b.path(scheduledDir, e.dir, e.name),
				b.path(readyDir, e.dir, fmt.Sprintf("%016x-%016x-%s", e.next, e.first, e.id)))
			if errors.Is(err, fs.ErrNotExist) {
				err = nil // promoted or cancelled by someone else
			}
		}
		unlock()
		if err != nil {
			return fmt.Errorf("promote job %s: %w", e.id, err)
		}
	}
	return nil
}
