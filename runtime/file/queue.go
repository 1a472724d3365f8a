package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Enqueue writes one file per job. Files have no transactions: each job is
// written atomically on its own, in order; an error stops the batch and
// reports which job failed (earlier ones stay enqueued).
func (b *Backend) Enqueue(ctx context.Context, jobs []*backend.Job) ([]backend.EnqueueResult, error) {
	res := make([]backend.EnqueueResult, len(jobs))
	if len(jobs) == 0 {
		return res, nil
	}
	defer b.signal()
	// First claim every id with an O_EXCL marker file, so that a batch holding
	// an id that exists (in this or another process) inserts nothing.
	for i, j := range jobs {
		if err := b.claimID(j.ID); err != nil {
			for _, k := range jobs[:i] {
				_ = remove(b.path(idsDir, k.ID))
			}
			return nil, fmt.Errorf("file backend enqueue: %w", err)
		}
	}
	for i, j := range jobs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("file backend enqueue: %w", err)
		}
		if j.UniqueKey != "" {
			r, err := b.enqueueUnique(ctx, j)
			if err != nil {
				return nil, fmt.Errorf("file backend enqueue job %s: %w", j.ID, err)
			}
			if r.Duplicate {
				_ = remove(b.path(idsDir, j.ID))
			}
			res[i] = r
			continue
		}
		if err := b.insert(j); err != nil {
			return nil, fmt.Errorf("file backend enqueue: %w", err)
		}
		res[i] = backend.EnqueueResult{ID: j.ID}
	}
	return res, nil
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

// insert writes a new job file in the folder its state implies.
func (b *Backend) insert(j *backend.Job) error {
	if j.Attempts == nil {
		c := *j
		c.Attempts = []backend.Attempt{}
		j = &c
	}
	to, err := b.home(j, j.CreatedAt)
	if err != nil {
		return err
	}
	return b.save(to, j)
}

// uniqueIndex is the content of unique/<hash>: the job holding the key and
// the end of its window.
type uniqueIndex struct {
	Key   string    `msgpack:"key"`
	ID    string    `msgpack:"id"`
	Until time.Time `msgpack:"until"`
}

// enqueueUnique inserts j unless the index of its key names a job whose window
// is still open at j.CreatedAt. The per-key lock serialises enqueuers of one
// key across processes; the index file itself is written atomically, so an
// expired window can be replaced.
func (b *Backend) enqueueUnique(ctx context.Context, j *backend.Job) (backend.EnqueueResult, error) {
	h := keyFile(j.UniqueKey)
	unlock, err := b.lock(ctx, keyLock(h))
	if err != nil {
		return backend.EnqueueResult{}, err
	}
	defer unlock()
	p := b.path(uniqueDir, h)
	data, err := readFile(p)
	switch {
	case err == nil:
		var idx uniqueIndex
		if derr := unmarshal(data, &idx); derr == nil && idx.Key == j.UniqueKey && idx.Until.After(j.CreatedAt) {
			return backend.EnqueueResult{ID: idx.ID, Duplicate: true}, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return backend.EnqueueResult{}, fmt.Errorf("read unique index %s: %w", p, err)
	}
	if err := b.insert(j); err != nil {
		return backend.EnqueueResult{}, err
	}
	data, err = msgpack.Marshal(uniqueIndex{Key: j.UniqueKey, ID: j.ID, Until: j.UniqueUntil})
	if err != nil {
		return backend.EnqueueResult{}, fmt.Errorf("encode unique index: %w", err)
	}
	if err := b.writeAtomic(p, data); err != nil {
		return backend.EnqueueResult{}, err
	}
	return backend.EnqueueResult{ID: j.ID}, nil
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
// claimed). For each candidate it takes the job's lock (skipping jobs another
// process is working on) and renames the file into running/; the claimer
// whose rename succeeds owns the job and writes the lease into the file.
func (b *Backend) Claim(ctx context.Context, req backend.ClaimRequest) ([]*backend.Job, error) {
	limit := req.Limit
	if limit <= 0 {
		limit = 1
	}
	if err := b.promote(ctx, req.Queues, req.Now); err != nil {
		return nil, fmt.Errorf("file backend claim: %w", err)
	}
	dirs, err := b.queueDirs(readyDir, req.Queues)
	if err != nil {
		return nil, fmt.Errorf("file backend claim: %w", err)
	}
	cands, err := b.entries(readyDir, dirs)
	if err != nil {
		return nil, fmt.Errorf("file backend claim: %w", err)
	}
	nowKey := timeKey(req.Now)
	var out []*backend.Job
	for _, e := range cands {
		if len(out) == limit {
			break
		}
		if err := ctx.Err(); err != nil {
			return out, nil //nolint:nilerr // jobs already claimed must reach the caller
		}
		if e.next > nowKey {
			continue // not due yet (a clock behind the enqueuer's)
		}
		j, err := b.claimOne(e, req)
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

// claimOne tries to claim the ready file e; nil without error means another
// process has it or it turned out not to be claimable.
func (b *Backend) claimOne(e entry, req backend.ClaimRequest) (*backend.Job, error) {
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
	}
	j.State = backend.StateRunning
	j.Attempt++
	j.StartedAt = req.Now
	j.LeaseOwner = req.Worker
	j.LeaseUntil = req.Now.Add(req.LeaseFor)
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
