// Package memory is an in-memory Nuvom backend for tests and embedded use. It
// keeps jobs in a map guarded by one mutex, with a ready heap per queue and
// task ordered (priority desc, run-at, id), a run-at heap per queue and task
// for scheduled and retrying jobs and a lease-deadline heap for running ones,
// so claiming k jobs or recovering k expired leases costs O(k log n) (plus
// one look at each queue and task the claim asks for). Jobs are copied on the way
// in and out: callers never alias stored state. Nothing survives the process.
package memory

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// ErrClosed is returned by every call made after Close.
var ErrClosed = errors.New("memory backend is closed")

// Backend is an in-memory backend.Backend. Make it with New.
type Backend struct {
	mu     sync.Mutex
	closed bool
	jobs   map[string]*entry
	// queues holds the unclaimed jobs of each queue and task.
	queues map[queueKey]*queue
	leases entryHeap
	// unique maps a task's unique key to its job with the latest UniqueUntil.
	unique  map[uniqueKey]*entry
	subs    map[uint64]chan struct{}
	nextSub uint64
	admin   adminState
	flow    flowState  // workflow.go
	lim     limitState // limits.go
}

var (
	_ backend.Backend = (*Backend)(nil)
)

// New returns an empty in-memory backend.
func New() *Backend {
	return &Backend{
		jobs:   map[string]*entry{},
		queues: map[queueKey]*queue{},
		leases: entryHeap{kind: inLeases, less: expiresFirst},
		unique: map[uniqueKey]*entry{},
		subs:   map[uint64]chan struct{}{},
	}
}

// lock takes the mutex and checks that the backend is open and ctx alive; on
// success the caller must unlock.
func (b *Backend) lock(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("memory: %s: %w", op, ErrClosed)
	}
	return nil
}

// cloneJob returns a deep copy of j.
func cloneJob(j *backend.Job) *backend.Job {
	c := *j
	cloneSlices(&c)
	return &c
}

// cloneSlices replaces j's slices with copies, so that j shares no memory with its source.
func cloneSlices(j *backend.Job) {
	j.Args = slices.Clone(j.Args)
	j.Result = slices.Clone(j.Result)
	j.ErrorChain = slices.Clone(j.ErrorChain)
	j.Attempts = slices.Clone(j.Attempts)
	j.Meta = backend.CloneMeta(j.Meta)
}

// queueKey names the heaps of one queue and task.
type queueKey struct{ queue, task string }

// uniqueKey is a unique key of one task: keys of different tasks never match.
type uniqueKey struct{ task, key string }

func keyOf(j *backend.Job) uniqueKey { return uniqueKey{j.Task, j.UniqueKey} }

// queue returns the heaps of j's queue and task.
func (b *Backend) queue(j *backend.Job) *queue {
	k := queueKey{j.Queue, j.Task}
	q := b.queues[k]
	if q == nil {
		q = newQueue()
		b.queues[k] = q
	}
	return q
}

// detach takes e out of whichever heap holds it.
func (b *Backend) detach(e *entry) {
	switch e.where {
	case inReady:
		heap.Remove(&b.queue(&e.job).ready, e.index)
	case inWaiting:
		heap.Remove(&b.queue(&e.job).waiting, e.index)
	case inLeases:
		heap.Remove(&b.leases, e.index)
	}
}

// notify signals every subscriber without blocking. The caller holds the mutex.
func (b *Backend) notify() {
	for _, ch := range b.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Enqueue inserts jobs atomically: it checks the whole batch before storing
// any. Times are stored clamped (backend.ClampTime).
func (b *Backend) Enqueue(ctx context.Context, jobs []*backend.Job) ([]backend.EnqueueResult, error) {
	if err := b.lock(ctx, "enqueue"); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	seen := make(map[string]bool, len(jobs))
	for i, j := range jobs {
		switch {
		case j == nil:
			return nil, fmt.Errorf("memory: enqueue: job %d of %d is nil", i+1, len(jobs))
		case j.ID == "":
			return nil, fmt.Errorf("memory: enqueue: job %d of %d (task %s) has no id", i+1, len(jobs), j.Task)
		case j.Task == "":
			return nil, fmt.Errorf("memory: enqueue job %s: no task name", j.ID)
		case j.Queue == "":
			return nil, fmt.Errorf("memory: enqueue job %s: no queue", j.ID)
		case j.State != backend.StateQueued && j.State != backend.StateScheduled:
			return nil, fmt.Errorf("memory: enqueue job %s: state %q, want queued or scheduled", j.ID, j.State)
		case seen[j.ID]:
			return nil, fmt.Errorf("memory: enqueue job %s: id appears twice in the batch", j.ID)
		}
		if _, dup := b.jobs[j.ID]; dup {
			return nil, fmt.Errorf("memory: enqueue job %s: a job with this id exists", j.ID)
		}
		seen[j.ID] = true
	}
	res := make([]backend.EnqueueResult, len(jobs))
	added := false
	for i, j := range jobs {
		e := &entry{job: *j, index: -1}
		cloneSlices(&e.job)
		e.job.ClampTimes()
		var holder *entry
		if j.UniqueKey != "" {
			holder = b.unique[keyOf(j)]
			if holder != nil && holder.job.UniqueUntil.After(e.job.CreatedAt) {
				res[i] = backend.EnqueueResult{ID: holder.job.ID, Duplicate: true}
				continue
			}
		}
		e.setRunAt(e.job.RunAt)
		e.setLeaseUntil(e.job.LeaseUntil)
		b.jobs[j.ID] = e
		b.queue(&e.job).add(e)
		if j.UniqueKey != "" && (holder == nil || e.job.UniqueUntil.After(holder.job.UniqueUntil)) {
			b.unique[keyOf(j)] = e
		}
		res[i] = backend.EnqueueResult{ID: j.ID}
		added = true
	}
	if added {
		b.notify()
	}
	return res, nil
}

// Claim leases up to req.Limit ready jobs of req.Queues and req.Tasks in
// priority, run-at, id order.
func (b *Backend) Claim(ctx context.Context, req backend.ClaimRequest) ([]*backend.Job, error) {
	if err := b.lock(ctx, "claim"); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	if req.Limit <= 0 {
		return []*backend.Job{}, nil
	}
	var qs []*queue
	var qtask []string
	for k, q := range b.queues {
		if (len(req.Queues) == 0 || slices.Contains(req.Queues, k.queue)) &&
			(len(req.Tasks) == 0 || slices.Contains(req.Tasks, k.task)) && !b.admin.paused[k.queue] {
			qs = append(qs, q)
			qtask = append(qtask, k.task)
		}
	}
	start := backend.ClampTime(req.Now)
	allow := b.allowances(start) // limits.go; nil without limited tasks
	until := backend.ClampTime(req.Now.Add(req.LeaseFor))
	now := nanos(start)
	for _, q := range qs {
		q.advance(now)
	}
	var out []*backend.Job
	for len(out) < req.Limit {
		var best *queue
		bestTask := ""
		for i, q := range qs {
			if n, limited := allow[qtask[i]]; limited && n <= 0 {
				continue
			}
			if t := q.ready.top(); t != nil && (best == nil || readyFirst(t, best.ready.top())) {
				best, bestTask = q, qtask[i]
			}
		}
		if best == nil {
			break
		}
		if _, limited := allow[bestTask]; limited {
			allow[bestTask]--
			b.started(bestTask, start)
		}
		e := heap.Pop(&best.ready).(*entry)
		j := &e.job
		j.State = backend.StateRunning
		j.Attempt++
		j.StartedAt = start
		j.LeaseOwner = req.Worker
		e.setLeaseUntil(until)
		j.LeaseToken++
		heap.Push(&b.leases, e)
		if out == nil {
			out = make([]*backend.Job, 0, min(req.Limit, 1+len(best.ready.items)))
		}
		out = append(out, cloneJob(j))
	}
	return out, nil
}

// held returns the entry of lease when that lease still holds the job, else nil.
func (b *Backend) held(l backend.Lease) *entry {
	e := b.jobs[l.JobID]
	if e == nil || e.job.State != backend.StateRunning || e.job.LeaseToken != l.Token {
		return nil
	}
	return e
}

// Extend moves the deadline of the leases still held to until.
func (b *Backend) Extend(ctx context.Context, leases []backend.Lease, until time.Time) ([]string, error) {
	if err := b.lock(ctx, "extend leases"); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	var lost []string
	for _, l := range leases {
		e := b.held(l)
		if e == nil {
			lost = append(lost, l.JobID)
			continue
		}
		e.setLeaseUntil(backend.ClampTime(until))
		heap.Fix(&b.leases, e.index)
	}
	return lost, nil
}

// clearLease takes a job off the lease heap and forgets its holder; the token stays.
func (b *Backend) clearLease(e *entry) {
	if e.where == inLeases {
		heap.Remove(&b.leases, e.index)
	}
	e.job.LeaseOwner = ""
	e.setLeaseUntil(time.Time{})
}

// Complete records outcomes whose leases are still held.
func (b *Backend) Complete(ctx context.Context, outcomes []backend.Outcome) ([]error, error) {
	if err := b.lock(ctx, "complete"); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	errs := make([]error, len(outcomes))
	retried := false
	for i := range outcomes {
		o := &outcomes[i]
		e := b.held(o.Lease)
		if e == nil {
			if b.jobs[o.Lease.JobID] == nil {
				errs[i] = fmt.Errorf("memory: complete job %s: %w: %w", o.Lease.JobID, backend.ErrLeaseLost, backend.ErrNotFound)
			} else {
				errs[i] = fmt.Errorf("memory: complete job %s with token %d: %w", o.Lease.JobID, o.Lease.Token, backend.ErrLeaseLost)
			}
			continue
		}
		switch o.State {
		case backend.StateSucceeded, backend.StateFailed, backend.StateRetrying, backend.StateCancelled, backend.StateQuarantined:
		default:
			errs[i] = fmt.Errorf("memory: complete job %s: next state %q is not succeeded, failed, retrying, cancelled or quarantined: %w",
				o.Lease.JobID, o.State, backend.ErrWrongState)
			continue
		}
		b.clearLease(e)
		j := &e.job
		b.admin.addMinute(backend.MinuteOf(j.Queue, j.Task, o))
		j.State = o.State
		j.Result = slices.Clone(o.Result)
		j.Error = o.Error
		j.ErrorChain = slices.Clone(o.ErrorChain)
		j.PanicStack = o.PanicStack
		a := o.Attempt
		a.StartedAt, a.FinishedAt = backend.ClampTime(a.StartedAt), backend.ClampTime(a.FinishedAt)
		j.Attempts = append(j.Attempts, a)
		if o.Refund {
			j.MaxAttempts++
		}
		if o.State == backend.StateRetrying {
			e.setRunAt(backend.ClampTime(o.RunAt))
			b.queue(j).add(e)
			retried = true
		} else {
			j.FinishedAt = backend.ClampTime(o.FinishedAt)
			retried = b.settle(j.ID, j.State, j.FinishedAt) || retried
		}
	}
	if retried {
		b.notify()
	}
	return errs, nil
}

// Release hands held leases back without spending an attempt; stale ones are ignored.
func (b *Backend) Release(ctx context.Context, leases []backend.Lease) error {
	if err := b.lock(ctx, "release leases"); err != nil {
		return err
	}
	defer b.mu.Unlock()
	n := 0
	for _, l := range leases {
		e := b.held(l)
		if e == nil {
			continue
		}
		b.clearLease(e)
		e.job.State = backend.StateQueued
		e.job.Attempt--
		b.queue(&e.job).add(e)
		n++
	}
	if n > 0 {
		b.notify()
	}
	return nil
}

// RecoverExpired records a lost attempt for each running job whose lease
// ended before now; the attempt does not count against the job's limit. The
// job is retrying at now, or failed when its last maxLost attempts were lost.
func (b *Backend) RecoverExpired(ctx context.Context, now time.Time, maxLost int) (int, error) {
	if err := b.lock(ctx, "recover expired leases"); err != nil {
		return 0, err
	}
	defer b.mu.Unlock()
	now = backend.ClampTime(now)
	n := 0
	for {
		e := b.leases.top()
		if e == nil || !e.job.LeaseUntil.Before(now) {
			break
		}
		j := &e.job
		lost, fail, msg := backend.RecoverLost(j, now, maxLost)
		j.Attempts = append(j.Attempts, lost)
		j.MaxAttempts++
		j.Error, j.ErrorChain, j.PanicStack, j.Result = msg, nil, "", nil
		b.clearLease(e)
		if fail {
			j.State = backend.StateFailed
			j.FinishedAt = now
			b.settle(j.ID, j.State, now)
		} else {
			j.State = backend.StateRetrying
			e.setRunAt(now)
			b.queue(j).add(e)
		}
		n++
	}
	if n > 0 {
		b.notify()
	}
	return n, nil
}

// Get returns a copy of a job's record, or backend.ErrNotFound.
func (b *Backend) Get(ctx context.Context, id string) (*backend.Job, error) {
	if err := b.lock(ctx, "get job "+id); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	e := b.jobs[id]
	if e == nil {
		return nil, fmt.Errorf("memory: get job %s: %w", id, backend.ErrNotFound)
	}
	return cloneJob(&e.job), nil
}

// List returns copies of the jobs matching f, highest id first.
func (b *Backend) List(ctx context.Context, f backend.ListFilter) ([]*backend.Job, error) {
	if err := b.lock(ctx, "list jobs"); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var match []*entry
	for _, e := range b.jobs {
		j := &e.job
		if (len(f.States) == 0 || slices.Contains(f.States, j.State)) &&
			(f.Task == "" || j.Task == f.Task) &&
			(f.Queue == "" || j.Queue == f.Queue) &&
			(f.Since.IsZero() || !j.CreatedAt.Before(backend.ClampTime(f.Since))) {
			match = append(match, e)
		}
	}
	slices.SortFunc(match, func(a, b *entry) int { return cmp.Compare(b.job.ID, a.job.ID) })
	match = match[:min(limit, len(match))]
	out := make([]*backend.Job, len(match))
	for i, e := range match {
		out[i] = cloneJob(&e.job)
	}
	return out, nil
}

// Cancel moves a scheduled, queued, retrying or running job to cancelled; a
// running job's lease ends and its attempt is recorded as cancelled.
func (b *Backend) Cancel(ctx context.Context, id string, now time.Time) error {
	if err := b.lock(ctx, "cancel job "+id); err != nil {
		return err
	}
	defer b.mu.Unlock()
	e := b.jobs[id]
	if e == nil {
		return fmt.Errorf("memory: cancel job %s: %w", id, backend.ErrNotFound)
	}
	now = backend.ClampTime(now)
	switch j := &e.job; j.State {
	case backend.StatePending, backend.StateScheduled, backend.StateQueued, backend.StateRetrying:
	case backend.StateRunning:
		const msg = "cancelled while running"
		j.Attempts = append(j.Attempts, backend.Attempt{Number: j.Attempt, StartedAt: j.StartedAt,
			FinishedAt: now, Worker: j.LeaseOwner, Outcome: backend.OutcomeCancelled, Error: msg})
		j.Error, j.ErrorChain, j.PanicStack, j.Result = msg, nil, "", nil
		j.LeaseOwner, j.LeaseUntil = "", time.Time{}
		defer b.notify() // the worker running it looks at its leases
	default:
		return fmt.Errorf("memory: cancel job %s in state %s: %w", id, e.job.State, backend.ErrWrongState)
	}
	b.detach(e)
	e.job.State = backend.StateCancelled
	e.job.FinishedAt = now
	if b.settle(id, backend.StateCancelled, now) {
		b.notify()
	}
	return nil
}

// Retry queues a failed, cancelled or quarantined job again, keeping its history.
func (b *Backend) Retry(ctx context.Context, id string, now time.Time) error {
	if err := b.lock(ctx, "retry job "+id); err != nil {
		return err
	}
	defer b.mu.Unlock()
	e := b.jobs[id]
	if e == nil {
		return fmt.Errorf("memory: retry job %s: %w", id, backend.ErrNotFound)
	}
	now = backend.ClampTime(now)
	switch e.job.State {
	case backend.StateFailed, backend.StateCancelled, backend.StateQuarantined:
	default:
		return fmt.Errorf("memory: retry job %s in state %s: %w", id, e.job.State, backend.ErrWrongState)
	}
	j := &e.job
	if j.Attempt >= j.MaxAttempts {
		j.MaxAttempts = j.Attempt + 1
	}
	j.State = backend.StateQueued
	e.setRunAt(now)
	j.FinishedAt = time.Time{}
	b.queue(j).add(e)
	b.notify()
	return nil
}

// Stats counts jobs per queue and state, sorted by queue then state in life order.
func (b *Backend) Stats(ctx context.Context, now time.Time) ([]backend.QueueStat, error) {
	if err := b.lock(ctx, "stats"); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	type key struct {
		queue string
		state backend.State
	}
	counts := map[key]*backend.QueueStat{}
	for _, e := range b.jobs {
		k := key{e.job.Queue, e.job.State}
		s := counts[k]
		if s == nil {
			s = &backend.QueueStat{Queue: k.queue, State: k.state, OldestRunAt: e.job.RunAt}
			counts[k] = s
		} else if e.job.RunAt.Before(s.OldestRunAt) {
			s.OldestRunAt = e.job.RunAt
		}
		s.Count++
	}
	out := make([]backend.QueueStat, 0, len(counts))
	for _, s := range counts {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b backend.QueueStat) int {
		return cmp.Or(cmp.Compare(a.Queue, b.Queue),
			cmp.Compare(slices.Index(backend.AllStates(), a.State), slices.Index(backend.AllStates(), b.State)),
			cmp.Compare(a.State, b.State))
	})
	return out, nil
}

// Purge deletes the jobs matching f that are not running.
func (b *Backend) Purge(ctx context.Context, f backend.PurgeFilter) (int, error) {
	return b.purge(ctx, f, time.Time{})
}

// PurgeEnded deletes the jobs matching f that ended before before.
func (b *Backend) PurgeEnded(ctx context.Context, before time.Time, f backend.PurgeFilter) (int, error) {
	if before.IsZero() {
		return 0, backend.ErrNoCutoff
	}
	return b.purge(ctx, f, before)
}

// TrimEnded deletes, queue by queue, the ended jobs matching f but the
// newest keep (backend.BeyondNewest).
func (b *Backend) TrimEnded(ctx context.Context, keep int, f backend.PurgeFilter) (int, error) {
	if keep < 0 {
		return 0, backend.ErrNegativeKeep
	}
	if err := b.lock(ctx, "trim"); err != nil {
		return 0, err
	}
	defer b.mu.Unlock()
	var ended []backend.EndedJob
	for id, e := range b.jobs {
		j := &e.job
		if j.State.Final() && purgeMatches(f, id, j) && !b.waitedFor(id) {
			ended = append(ended, backend.EndedJob{ID: id, Queue: j.Queue, FinishedAt: j.FinishedAt})
		}
	}
	gone := map[string]bool{}
	for _, e := range backend.BeyondNewest(ended, keep) {
		gone[e.ID] = true
	}
	return b.deleteLocked(func(id string, _ *backend.Job) bool { return gone[id] }), nil
}

// purgeMatches reports whether the job id (j) matches f's fields.
func purgeMatches(f backend.PurgeFilter, id string, j *backend.Job) bool {
	return (len(f.IDs) == 0 || slices.Contains(f.IDs, id)) &&
		(f.Queue == "" || j.Queue == f.Queue) &&
		(len(f.States) == 0 || slices.Contains(f.States, j.State))
}

// purge deletes the jobs matching f that are not running and, unless before
// is zero, ended before it.
func (b *Backend) purge(ctx context.Context, f backend.PurgeFilter, before time.Time) (int, error) {
	if err := b.lock(ctx, "purge"); err != nil {
		return 0, err
	}
	defer b.mu.Unlock()
	return b.deleteLocked(func(id string, j *backend.Job) bool {
		return j.State != backend.StateRunning && purgeMatches(f, id, j) && backend.EndedBefore(before, j.State, j.FinishedAt) &&
			(before.IsZero() || !b.waitedFor(id))
	}), nil
}

// deleteLocked deletes the jobs for which del is true, with b.mu held, and
// returns how many.
func (b *Backend) deleteLocked(del func(id string, j *backend.Job) bool) int {
	n, released, now := 0, false, backend.ClampTime(time.Now())
	var lostKeys map[uniqueKey]bool
	for id, e := range b.jobs {
		j := &e.job
		if !del(id, j) {
			continue
		}
		b.detach(e)
		delete(b.jobs, id)
		released = b.forgetStep(id, now) || released
		if k := keyOf(j); j.UniqueKey != "" && b.unique[k] == e {
			delete(b.unique, k)
			if lostKeys == nil {
				lostKeys = map[uniqueKey]bool{}
			}
			lostKeys[k] = true
		}
		n++
	}
	// A purged key holder may leave an older job whose window is still open.
	if lostKeys != nil {
		for _, e := range b.jobs {
			k := keyOf(&e.job)
			if e.job.UniqueKey != "" && lostKeys[k] {
				if h := b.unique[k]; h == nil || e.job.UniqueUntil.After(h.job.UniqueUntil) {
					b.unique[k] = e
				}
			}
		}
	}
	if released {
		b.notify()
	}
	return n
}

// Subscribe returns a channel (buffered 1) signalled when work may be ready.
func (b *Backend) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ch, func() {}
	}
	id := b.nextSub
	b.nextSub++
	b.subs[id] = ch
	return ch, func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	}
}

// Close drops every job and makes later calls return ErrClosed. It is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.jobs, b.queues, b.unique, b.subs = nil, nil, nil, nil
	b.leases.items = nil
	return nil
}
