package nuvom

import (
	"context"
	"fmt"
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
