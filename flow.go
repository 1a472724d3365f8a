package nuvom

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Limit is a task's flow control across every worker on the store: at most
// MaxConcurrency of its jobs running at once, at most Rate starting per Per.
// Zero fields limit nothing.
type Limit = backend.Limit

// TaskLimit is a task's stored flow control: declared by its workers and
// overridden by an operator.
type TaskLimit = backend.TaskLimit

// Rate is a rate limit: at most N starts per Per (//nuvom:task rate=10/s).
type Rate struct {
	N   int
	Per time.Duration
}

// limitOf is the flow control declared in o.
func limitOf(o TaskOptions) Limit {
	return Limit{MaxConcurrency: o.MaxConcurrency, Rate: o.Rate.N, Per: o.Rate.Per}
}

// limits returns the backend's flow control, or an error naming op.
func (c *Client) limits(op string) (backend.Limits, error) {
	l, ok := c.backend.(backend.Limits)
	if !ok {
		return nil, fmt.Errorf("%s: backend %T does not enforce task limits", op, c.backend)
	}
	return l, nil
}

// SetTaskLimit overrides the declared flow control of task for every worker
// on the store, until ClearTaskLimit (a zero Limit lifts the task's limits).
// Claims through this client's backend enforce it from their next call,
// other processes' within a second (SQLite keeps the limits it read for a second).
func (c *Client) SetTaskLimit(ctx context.Context, task string, l Limit) error {
	b, err := c.limits("set limit of " + task)
	if err != nil {
		return err
	}
	if err := b.OverrideLimit(ctx, task, l, true); err != nil {
		return fmt.Errorf("set limit of %s: %w", task, err)
	}
	return nil
}

// ClearTaskLimit removes the override of task: its declared limits apply again.
func (c *Client) ClearTaskLimit(ctx context.Context, task string) error {
	b, err := c.limits("clear limit of " + task)
	if err != nil {
		return err
	}
	if err := b.OverrideLimit(ctx, task, Limit{}, false); err != nil {
		return fmt.Errorf("clear limit of %s: %w", task, err)
	}
	return nil
}

// TaskLimits lists the stored limits of every task that has one.
func (c *Client) TaskLimits(ctx context.Context) ([]TaskLimit, error) {
	b, err := c.limits("list task limits")
	if err != nil {
		return nil, err
	}
	out, err := b.TaskLimits(ctx)
	if err != nil {
		return nil, fmt.Errorf("list task limits: %w", err)
	}
	return out, nil
}

// declareLimits stores the limits the worker's tasks declare (and clears
// the declarations of its tasks that no longer have any), when the backend
// enforces limits.
func (w *Worker) declareLimits(ctx context.Context) {
	b, ok := w.b.(backend.Limits)
	if !ok {
		return
	}
	declared := map[string]Limit{}
	for _, name := range w.tasks {
		if d, ok := w.reg.Lookup(name); ok {
			declared[name] = limitOf(d.Options)
		}
	}
	if err := b.DeclareLimits(ctx, declared); err != nil {
		w.log.Error("declare task limits", "worker", w.o.ID, "err", err)
	}
}

// burstRateHeld looks, at the end of a burst, for queued jobs of this
// worker's tasks and queues that a task's rate limit holds back (they become
// claimable within its period, so the burst is not done): it returns how
// long to wait before claiming again (the time between two starts at the
// slowest such rate, at least 1ms), or 0 when there is none. Jobs of a
// paused queue are not waited for, nor those of a task whose concurrency
// slots other workers hold (they run them). Each task is logged once a burst (logged).
func (w *Worker) burstRateHeld(ctx context.Context, logged map[string]bool) (time.Duration, error) {
	lb, ok := w.b.(backend.Limits)
	if !ok {
		return 0, nil
	}
	limits, err := lb.TaskLimits(ctx)
	if err != nil {
		return 0, fmt.Errorf("worker %s: read task limits at the end of the burst: %w", w.o.ID, err)
	}
	var paused []string
	if p, ok := w.b.(interface {
		Paused(ctx context.Context) ([]string, error)
	}); ok {
		if paused, err = p.Paused(ctx); err != nil {
			return 0, fmt.Errorf("worker %s: read paused queues at the end of the burst: %w", w.o.ID, err)
		}
	}
	queues := w.queues
	if queues == nil {
		queues = []string{""} // every queue
	}
	var wait time.Duration
	for _, tl := range limits {
		l := tl.Effective()
		if l.Rate <= 0 || l.Per <= 0 || (len(w.tasks) > 0 && !slices.Contains(w.tasks, tl.Task)) {
			continue
		}
		if l.MaxConcurrency > 0 {
			// With its slots taken (by other workers: this one runs
			// nothing now), the task's concurrency holds its jobs, not its
			// rate: the workers that hold the slots run them.
			running, err := w.b.List(ctx, ListFilter{States: []State{StateRunning}, Task: tl.Task, Limit: l.MaxConcurrency})
			if err != nil {
				return 0, fmt.Errorf("worker %s: list running jobs of %s at the end of the burst: %w", w.o.ID, tl.Task, err)
			}
			if len(running) >= l.MaxConcurrency {
				continue
			}
		}
		for _, q := range queues {
			held, err := w.b.List(ctx, ListFilter{States: []State{StateQueued}, Task: tl.Task, Queue: q, Limit: 100})
			if err != nil {
				return 0, fmt.Errorf("worker %s: list queued jobs of %s at the end of the burst: %w", w.o.ID, tl.Task, err)
			}
			held = slices.DeleteFunc(held, func(j *Job) bool { return slices.Contains(paused, j.Queue) })
			if len(held) == 0 {
				continue
			}
			if !logged[tl.Task] {
				logged[tl.Task] = true
				w.log.Info("burst: jobs wait for their task's rate limit", "worker", w.o.ID, "task", tl.Task,
					"rate", backend.FormatRate(l.Rate, l.Per), "queued", len(held))
			}
			wait = max(wait, l.Per/time.Duration(l.Rate), time.Millisecond)
			break
		}
	}
	return wait, nil
}
