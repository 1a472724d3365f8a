package file

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Flow control (backend.Limits) on files:
//
//	limits/<hash>         msgpack of the task's backend.TaskLimit
//	limits/<hash>.starts  msgpack of the recent start times (unix ns) of a rate-limited task
//
// <hash> is a hash of the task name. Every change of them, and every claim of
// a limited task, holds the task's limit lock (a key lock, locks/k-<hash>),
// so claims of one limited task are ordered across processes. Under it the
// claim counts the task's running jobs (reading the files of running/) and
// its recent starts, claims up to what the limits allow (job locks are only
// tried, never waited for, so no wait cycle is possible), and writes the
// starts back. A claim reads the limits at most once a second (invalidated
// by this process's own changes); tasks without limits take the usual path.
const limitsDir = "limits"

var _ backend.Limits = (*Backend)(nil)

func limitHash(task string) string {
	sum := sha256.Sum256([]byte("limit\x00" + task))
	return hex.EncodeToString(sum[:20])
}

// fileLimitCache keeps the stored limits between claims.
type fileLimitCache struct {
	mu   sync.Mutex
	at   time.Time
	list []backend.TaskLimit
}

func (b *Backend) limitCache() *fileLimitCache { return &b.limits }

func (b *Backend) invalidateLimits() {
	c := b.limitCache()
	c.mu.Lock()
	c.at = time.Time{}
	c.mu.Unlock()
}

// updateLimit applies change to task's stored limit under its lock; a limit
// left without declaration or override is removed.
func (b *Backend) updateLimit(ctx context.Context, task string, change func(t *backend.TaskLimit)) error {
	h := limitHash(task)
	unlock, err := b.lock(ctx, keyLock(h))
	if err != nil {
		return err
	}
	defer unlock()
	t := backend.TaskLimit{Task: task}
	if data, err := readFile(b.path(limitsDir, h)); err == nil {
		if err := unmarshal(data, &t); err != nil {
			return fmt.Errorf("limit of %s: %w: %v", task, ErrCorrupt, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	change(&t)
	if !t.HasOverride && t.Declared.IsZero() {
		if err := remove(b.path(limitsDir, h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	data, err := msgpack.Marshal(&t)
	if err != nil {
		return err
	}
	return b.writeAtomic(b.path(limitsDir, h), data)
}

// DeclareLimits stores declared limits, leaving overrides alone.
func (b *Backend) DeclareLimits(ctx context.Context, declared map[string]backend.Limit) error {
	defer b.invalidateLimits()
	for task, l := range declared {
		if err := b.updateLimit(ctx, task, func(t *backend.TaskLimit) { t.Declared = l }); err != nil {
			return fmt.Errorf("file backend declare limits of %s: %w", task, err)
		}
	}
	return nil
}

// OverrideLimit sets or clears a task's override.
func (b *Backend) OverrideLimit(ctx context.Context, task string, l backend.Limit, set bool) error {
	if task == "" {
		return errors.New("file backend override limit: task name is empty")
	}
	defer b.invalidateLimits()
	err := b.updateLimit(ctx, task, func(t *backend.TaskLimit) {
		t.HasOverride, t.Override = set, l
		if !set {
			t.Override = backend.Limit{}
		}
	})
	if err != nil {
		return fmt.Errorf("file backend override limit of %s: %w", task, err)
	}
	return nil
}

// TaskLimits lists the stored limits by task name.
func (b *Backend) TaskLimits(ctx context.Context) ([]backend.TaskLimit, error) {
	names, err := readNames(b.path(limitsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file backend task limits: %w", err)
	}
	out := []backend.TaskLimit{}
	for _, n := range names {
		if len(n) != 40 {
			continue // .starts files
		}
		data, err := readFile(b.path(limitsDir, n))
		if err != nil {
			continue // removed meanwhile
		}
		var t backend.TaskLimit
		if err := unmarshal(data, &t); err != nil {
			return nil, fmt.Errorf("file backend task limits: %s: %w: %v", n, ErrCorrupt, err)
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(x, y backend.TaskLimit) int { return cmp.Compare(x.Task, y.Task) })
	return out, nil
}

// effectiveLimits returns the limits claims enforce, read at most a second ago.
func (b *Backend) effectiveLimits(ctx context.Context) (map[string]backend.Limit, error) {
	c := b.limitCache()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || time.Since(c.at) >= time.Second {
		list, err := b.TaskLimits(ctx)
		if err != nil {
			return nil, err
		}
		c.list, c.at = list, time.Now()
	}
	var out map[string]backend.Limit
	for _, t := range c.list {
		if l := t.Effective(); !l.IsZero() {
			if out == nil {
				out = map[string]backend.Limit{}
			}
			out[t.Task] = l
		}
	}
	return out, nil
}

// limitedClaim is Claim when a task it may take is limited; handled is
// false when none is.
func (b *Backend) limitedClaim(ctx context.Context, req backend.ClaimRequest) (out []*backend.Job, handled bool, err error) {
	limits, err := b.effectiveLimits(ctx)
	if err != nil {
		return nil, true, fmt.Errorf("file backend claim: %w", err)
	}
	for t := range limits {
		if len(req.Tasks) > 0 && !slices.Contains(req.Tasks, t) {
			delete(limits, t)
		}
	}
	if len(limits) == 0 {
		return nil, false, nil
	}
	out = []*backend.Job{}
	until := backend.ClampTime(req.Now.Add(req.LeaseFor))
	req.Now = backend.ClampTime(req.Now)
	if err := b.promote(ctx, req.Queues, req.Now); err != nil {
		return nil, true, fmt.Errorf("file backend claim: %w", err)
	}
	dirs, err := b.queueDirs(readyDir, req.Queues)
	if err != nil {
		return nil, true, fmt.Errorf("file backend claim: %w", err)
	}
	cands, err := b.entries(readyDir, dirs)
	if err != nil {
		return nil, true, fmt.Errorf("file backend claim: %w", err)
	}
	nowKey := timeKey(req.Now)
	byTask := map[string][]entry{}
	var order []string
	for _, e := range cands {
		if len(out) == req.Limit {
			break
		}
		if e.next > nowKey {
			continue
		}
		task := b.taskOf(e)
		if len(req.Tasks) > 0 && !slices.Contains(req.Tasks, task) {
			continue
		}
		if _, limited := limits[task]; limited {
			if byTask[task] == nil {
				order = append(order, task)
			}
			byTask[task] = append(byTask[task], e)
			continue
		}
		j, err := b.claimOne(e, req, until)
		if err != nil {
			if len(out) > 0 {
				return out, true, nil
			}
			return nil, true, fmt.Errorf("file backend claim: %w", err)
		}
		if j != nil {
			out = append(out, j)
		}
	}
	for _, task := range order {
		if len(out) == req.Limit {
			break
		}
		got, err := b.claimLimitedTask(ctx, req, until, task, limits[task], byTask[task], req.Limit-len(out))
		out = append(out, got...)
		if err != nil {
			if len(out) > 0 {
				return out, true, nil
			}
			return nil, true, fmt.Errorf("file backend claim: %w", err)
		}
	}
	return out, true, nil
}

// claimLimitedTask claims up to want of cands (ready files of task) within
// the task's limits, holding its limit lock.
func (b *Backend) claimLimitedTask(ctx context.Context, req backend.ClaimRequest, until time.Time, task string,
	l backend.Limit, cands []entry, want int) ([]*backend.Job, error) {
	h := limitHash(task)
	unlock, err := b.lock(ctx, keyLock(h))
	if err != nil {
		return nil, err
	}
	defer unlock()
	allow := want
	if l.MaxConcurrency > 0 {
		running, err := b.runningOf(task)
		if err != nil {
			return nil, err
		}
		allow = min(allow, l.MaxConcurrency-running)
	}
	rated := l.Rate > 0 && l.Per > 0
	var starts []int64
	now := req.Now.UnixNano()
	if rated {
		if data, err := readFile(b.path(limitsDir, h+".starts")); err == nil {
			if err := unmarshal(data, &starts); err != nil {
				starts = nil // a damaged record only forgets old starts
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		recent := 0
		for _, s := range starts {
			if s > now-int64(l.Per) {
				recent++
			}
		}
		allow = min(allow, l.Rate-recent)
	}
	var out []*backend.Job
	for _, e := range cands {
		if len(out) >= allow {
			break
		}
		j, err := b.claimOne(e, req, until)
		if err != nil {
			return out, err
		}
		if j != nil {
			out = append(out, j)
		}
	}
	if rated && len(out) > 0 {
		keep := starts[:0]
		for _, s := range starts {
			if s > now-int64(l.Per)-int64(time.Minute) {
				keep = append(keep, s)
			}
		}
		for range out {
			keep = append(keep, now)
		}
		data, err := msgpack.Marshal(keep)
		if err == nil {
			err = b.writeAtomic(b.path(limitsDir, h+".starts"), data)
		}
		if err != nil {
			// The jobs are claimed; not recording their starts would let
			// the next claim exceed the rate: hand them back.
			for _, j := range out {
				_ = b.Release(context.WithoutCancel(ctx), []backend.Lease{j.Lease()})
			}
			return nil, err
		}
	}
	return out, nil
}

// runningOf counts the running jobs of task by reading the files of running/.
func (b *Backend) runningOf(task string) (int, error) {
	ids, err := readNames(b.path(runningDir))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		data, err := readFile(b.path(runningDir, id))
		if err != nil {
			continue // finished meanwhile
		}
		var j struct {
			Task  string        `msgpack:"task"`
			State backend.State `msgpack:"state"`
		}
		if unmarshal(data, &j) != nil {
			continue
		}
		if j.Task == task && j.State == backend.StateRunning {
			n++
		}
	}
	return n, nil
}
