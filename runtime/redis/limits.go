package redis

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/internal/safemsgpack"
	"github.com/nuvom/nuvom/runtime/backend"
)

// Flow control (backend.Limits) on Redis. Keys (outside the queues' hash tags):
//
//	<prefix>:limits            hash: task -> msgpack of its backend.TaskLimit
//	<prefix>:lim:<task>:lock   a claim of the limited task holds it (SET NX with a token and a TTL)
//	<prefix>:lim:<task>:starts zset (lex): recent starts of a rate-limited task (time key + random)
//
// A claim of a limited task holds the task's lock (so such claims are
// ordered across processes), counts the task's running jobs (the lease
// index of every queue, each member's task read), and its starts in the last
// period, claims up to what the limits allow, records the starts and lets
// the lock go. A claimer that dies holding the lock blocks the task's claims
// for at most limitLockTTL. Claims read the limits at most once a second
// (this process's own changes apply at once); tasks without limits take the
// usual path.

var _ backend.Limits = (*Backend)(nil)

const limitLockTTL = 30 * time.Second

// limitCache keeps the stored limits between claims.
type limitCache struct {
	mu   sync.Mutex
	at   time.Time
	list []backend.TaskLimit
}

func (b *Backend) limitsKey() string              { return b.o.prefix + ":limits" }
func (b *Backend) limitKey(task, k string) string { return b.o.prefix + ":lim:" + task + ":" + k }

func (b *Backend) invalidateLimits() {
	b.limits.mu.Lock()
	b.limits.at = time.Time{}
	b.limits.mu.Unlock()
}

// updateLimit applies change to a task's stored limit (read, changed,
// written with a WATCH transaction). A transaction that another writer of
// the limits hash interrupted is run again: worker processes starting
// together all declare their limits at once, and a declaration given up
// on would leave a task unlimited.
func (b *Backend) updateLimit(ctx context.Context, task string, change func(t *backend.TaskLimit)) error {
	defer b.invalidateLimits()
	for {
		err := b.updateLimitOnce(ctx, task, change)
		if !errors.Is(err, goredis.TxFailedErr) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func (b *Backend) updateLimitOnce(ctx context.Context, task string, change func(t *backend.TaskLimit)) error {
	return b.c.Watch(ctx, func(tx *goredis.Tx) error {
		t := backend.TaskLimit{Task: task}
		data, err := tx.HGet(ctx, b.limitsKey(), task).Bytes()
		switch {
		case errors.Is(err, goredis.Nil):
		case err != nil:
			return err
		default:
			if err := safemsgpack.Unmarshal(data, &t); err != nil {
				return fmt.Errorf("limit of %s: %w", task, err)
			}
		}
		change(&t)
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			if !t.HasOverride && t.Declared.IsZero() {
				p.HDel(ctx, b.limitsKey(), task)
				return nil
			}
			data, err := msgpack.Marshal(&t)
			if err != nil {
				return err
			}
			p.HSet(ctx, b.limitsKey(), task, data)
			return nil
		})
		return err
	}, b.limitsKey())
}

// DeclareLimits stores declared limits, leaving overrides alone.
func (b *Backend) DeclareLimits(ctx context.Context, declared map[string]backend.Limit) error {
	if err := b.check(ctx, "declare limits"); err != nil {
		return err
	}
	for task, l := range declared {
		if err := b.updateLimit(ctx, task, func(t *backend.TaskLimit) { t.Declared = l }); err != nil {
			return wrap(ctx, "declare limits of "+task, err)
		}
	}
	return nil
}

// OverrideLimit sets or clears a task's override.
func (b *Backend) OverrideLimit(ctx context.Context, task string, l backend.Limit, set bool) error {
	if err := b.check(ctx, "override limit"); err != nil {
		return err
	}
	if task == "" {
		return errors.New("redis: override limit: task name is empty")
	}
	err := b.updateLimit(ctx, task, func(t *backend.TaskLimit) {
		t.HasOverride, t.Override = set, l
		if !set {
			t.Override = backend.Limit{}
		}
	})
	if err != nil {
		return wrap(ctx, "override limit of "+task, err)
	}
	return nil
}

// TaskLimits lists the stored limits by task name.
func (b *Backend) TaskLimits(ctx context.Context) ([]backend.TaskLimit, error) {
	if err := b.check(ctx, "task limits"); err != nil {
		return nil, err
	}
	all, err := b.c.HGetAll(ctx, b.limitsKey()).Result()
	if err != nil {
		return nil, wrap(ctx, "task limits", err)
	}
	out := []backend.TaskLimit{}
	for task, data := range all {
		var t backend.TaskLimit
		if err := safemsgpack.Unmarshal([]byte(data), &t); err != nil {
			return nil, fmt.Errorf("redis: task limits: limit of %s: %w", task, err)
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(x, y backend.TaskLimit) int { return cmp.Compare(x.Task, y.Task) })
	return out, nil
}

// effectiveLimits returns the enforced limits of the tasks a claim may take.
func (b *Backend) effectiveLimits(ctx context.Context, tasks []string) (map[string]backend.Limit, error) {
	c := &b.limits
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
		if l := t.Effective(); !l.IsZero() && (len(tasks) == 0 || slices.Contains(tasks, t.Task)) {
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
func (b *Backend) limitedClaim(ctx context.Context, req backend.ClaimRequest) ([]*backend.Job, bool, error) {
	limits, err := b.effectiveLimits(ctx, req.Tasks)
	if err != nil {
		return nil, true, wrap(ctx, "claim: read task limits", err)
	}
	if len(limits) == 0 {
		return nil, false, nil
	}
	tasks := req.Tasks
	if len(tasks) == 0 {
		if tasks, err = b.allTasks(ctx, req.Queues); err != nil {
			return nil, true, wrap(ctx, "claim: list tasks", err)
		}
	}
	var free, limited []string
	for _, t := range tasks {
		if _, ok := limits[t]; ok {
			limited = append(limited, t)
		} else {
			free = append(free, t)
		}
	}
	out := []*backend.Job{}
	if len(free) > 0 {
		r := req
		r.Tasks = free
		got, err := b.claim(ctx, r)
		if err != nil {
			return nil, true, err
		}
		out = append(out, got...)
	}
	for _, t := range limited {
		if len(out) >= req.Limit {
			break
		}
		got, err := b.claimLimitedTask(ctx, req, t, limits[t], req.Limit-len(out))
		out = append(out, got...)
		if err != nil {
			if len(out) > 0 {
				return out, true, nil
			}
			return nil, true, err
		}
	}
	return out, true, nil
}

// allTasks lists the tasks of queues (every queue when none).
func (b *Backend) allTasks(ctx context.Context, queues []string) ([]string, error) {
	if len(queues) == 0 {
		var err error
		if queues, err = b.allQueues(ctx); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, q := range queues {
		ts, err := b.c.SMembers(ctx, b.qp(q)+"tasks").Result()
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// claimLimitedTask claims up to want jobs of task within its limits, holding its lock.
func (b *Backend) claimLimitedTask(ctx context.Context, req backend.ClaimRequest, task string, l backend.Limit, want int) ([]*backend.Job, error) {
	var tok [12]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("redis: claim: %w", err)
	}
	token := hex.EncodeToString(tok[:])
	lock := b.limitKey(task, "lock")
	for {
		ok, err := b.c.SetNX(ctx, lock, token, limitLockTTL).Result()
		if err != nil {
			return nil, wrap(ctx, "claim: lock limited task "+task, err)
		}
		if ok {
			break
		}
		t := time.NewTimer(time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, wrap(ctx, "claim: lock limited task "+task, ctx.Err())
		case <-t.C:
		}
	}
	defer b.c.Eval(context.WithoutCancel(ctx), `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
		[]string{lock}, token)
	allow := want
	if l.MaxConcurrency > 0 {
		running, err := b.runningOf(ctx, task)
		if err != nil {
			return nil, wrap(ctx, "claim: count running jobs of "+task, err)
		}
		allow = min(allow, l.MaxConcurrency-running)
	}
	now := backend.ClampTime(req.Now)
	starts := b.limitKey(task, "starts")
	rated := l.Rate > 0 && l.Per > 0
	if rated {
		recent, err := b.c.ZLexCount(ctx, starts, "("+timeKey(now.Add(-l.Per))+"\xff", "+").Result()
		if err != nil {
			return nil, wrap(ctx, "claim: count starts of "+task, err)
		}
		allow = min(allow, l.Rate-int(recent))
	}
	if allow <= 0 {
		return nil, nil
	}
	r := req
	r.Tasks, r.Limit = []string{task}, allow
	got, err := b.claim(ctx, r)
	if err != nil || !rated || len(got) == 0 {
		return got, err
	}
	members := make([]goredis.Z, len(got))
	for i, j := range got {
		members[i] = goredis.Z{Member: timeKey(now) + j.ID}
	}
	_, err = b.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZAdd(ctx, starts, members...)
		p.ZRemRangeByLex(ctx, starts, "-", "("+timeKey(now.Add(-l.Per-time.Minute)))
		return nil
	})
	if err != nil {
		// Unrecorded starts would let the next claim exceed the rate: hand the jobs back.
		leases := make([]backend.Lease, len(got))
		for i, j := range got {
			leases[i] = j.Lease()
		}
		_ = b.Release(context.WithoutCancel(ctx), leases)
		return nil, wrap(ctx, "claim: record starts of "+task, err)
	}
	return got, nil
}

// runningOf counts the running jobs of task across every queue.
func (b *Backend) runningOf(ctx context.Context, task string) (int, error) {
	qs, err := b.allQueues(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, q := range qs {
		ms, err := b.c.ZRange(ctx, b.qp(q)+"lease", 0, -1).Result()
		if err != nil {
			return 0, err
		}
		if len(ms) == 0 {
			continue
		}
		cmds, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, m := range ms {
				if len(m) > 16 {
					p.HGet(ctx, b.qp(q)+"j:"+m[16:], "tk")
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, goredis.Nil) {
			return 0, err
		}
		for _, c := range cmds {
			if s, _ := c.(*goredis.StringCmd).Result(); s == task {
				n++
			}
		}
	}
	return n, nil
}
