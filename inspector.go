package nuvom

import (
	"context"
	"fmt"
	"time"
)

// Inspector reads and administers the jobs of a backend: listing, statistics,
// cancel, retry, purge and the quarantine. The nuvom CLI is built on it. It is
// safe for concurrent use and, like a Client, does not own its backend.
type Inspector struct {
	b   Backend
	now func() time.Time
}

// InspectorOption configures an Inspector.
type InspectorOption func(*Inspector)

// WithInspectorClock sets the clock the inspector stamps admin operations with
// (tests use a fake one).
func WithInspectorClock(now func() time.Time) InspectorOption {
	return func(in *Inspector) { in.now = now }
}

// NewInspector returns an inspector over b.
func NewInspector(b Backend, opts ...InspectorOption) *Inspector {
	in := &Inspector{b: b, now: time.Now}
	for _, o := range opts {
		o(in)
	}
	return in
}

// Get returns a job's full record: arguments, result, error chain, panic stack
// and every attempt. An unknown id is an error matching ErrNotFound.
func (in *Inspector) Get(ctx context.Context, id string) (*Job, error) {
	j, err := in.b.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get job %s: %w", id, err)
	}
	return j, nil
}

// List returns the jobs that match f, newest first (at most f.Limit, 100 when 0).
func (in *Inspector) List(ctx context.Context, f ListFilter) ([]*Job, error) {
	jobs, err := in.b.List(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, nil
}

// Stats counts jobs per queue and state, omitting zero counts.
func (in *Inspector) Stats(ctx context.Context) ([]QueueStat, error) {
	st, err := in.b.Stats(ctx, in.now())
	if err != nil {
		return nil, fmt.Errorf("queue stats: %w", err)
	}
	return st, nil
}

// Cancel cancels a job that has not finished (see Client.Cancel).
func (in *Inspector) Cancel(ctx context.Context, id string) error {
	if err := in.b.Cancel(ctx, id, in.now()); err != nil {
		return fmt.Errorf("cancel job %s: %w", id, err)
	}
	return nil
}

// Retry queues a failed, cancelled or quarantined job for one more attempt,
// keeping its history. Other states give an error matching ErrWrongState.
func (in *Inspector) Retry(ctx context.Context, id string) error {
	if err := in.b.Retry(ctx, id, in.now()); err != nil {
		return fmt.Errorf("retry job %s: %w", id, err)
	}
	return nil
}

// Purge deletes the jobs that match f and are not running, and returns how
// many (also when it fails part-way: those are gone).
func (in *Inspector) Purge(ctx context.Context, f PurgeFilter) (int, error) {
	n, err := in.b.Purge(ctx, f)
	if err != nil {
		return n, fmt.Errorf("purge jobs: %w", err)
	}
	return n, nil
}

// PurgeEnded deletes the jobs that match f and ended (succeeded, failed,
// cancelled or quarantined) before before, and returns how many: retention
// by age, as WorkerOptions.KeepFinishedFor applies it.
func (in *Inspector) PurgeEnded(ctx context.Context, before time.Time, f PurgeFilter) (int, error) {
	n, err := in.b.PurgeEnded(ctx, before, f)
	if err != nil {
		return n, fmt.Errorf("purge ended jobs: %w", err)
	}
	return n, nil
}

// TrimEnded deletes, in each queue, the jobs that match f and ended
// (succeeded, failed, cancelled or quarantined), all but the newest keep of
// them (by finish time, then ID), and returns how many: retention by count,
// as WorkerOptions.KeepFinished applies it.
func (in *Inspector) TrimEnded(ctx context.Context, keep int, f PurgeFilter) (int, error) {
	n, err := in.b.TrimEnded(ctx, keep, f)
	if err != nil {
		return n, fmt.Errorf("trim ended jobs to %d per queue: %w", keep, err)
	}
	return n, nil
}

// Quarantined lists jobs whose payload could not be decoded, newest first (at
// most limit, 100 when 0). Requeue one with Retry, after deploying a worker
// that can decode it, or drop it with Drop.
func (in *Inspector) Quarantined(ctx context.Context, limit int) ([]*Job, error) {
	return in.List(ctx, ListFilter{States: []State{StateQuarantined}, Limit: limit})
}

// Drop deletes the given quarantined jobs and returns how many it deleted.
func (in *Inspector) Drop(ctx context.Context, ids ...string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	return in.Purge(ctx, PurgeFilter{IDs: ids, States: []State{StateQuarantined}})
}
