package memory

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

var _ backend.Limits = (*Backend)(nil)

// limitState is the flow control of the tasks (backend.Limits), under the mutex.
type limitState struct {
	tasks  map[string]*backend.TaskLimit
	starts map[string][]time.Time // recent starts of rate-limited tasks
}

// startsSlack keeps starts a while past their period (see the SQLite backend).
const startsSlack = time.Minute

// DeclareLimits stores declared limits, leaving overrides alone.
func (b *Backend) DeclareLimits(ctx context.Context, declared map[string]backend.Limit) error {
	if err := b.lock(ctx, "declare limits"); err != nil {
		return err
	}
	defer b.mu.Unlock()
	for task, l := range declared {
		t := b.limitOf(task)
		t.Declared = l
		if !t.HasOverride && l.IsZero() {
			delete(b.lim.tasks, task)
		}
	}
	return nil
}

func (b *Backend) limitOf(task string) *backend.TaskLimit {
	if b.lim.tasks == nil {
		b.lim.tasks, b.lim.starts = map[string]*backend.TaskLimit{}, map[string][]time.Time{}
	}
	t := b.lim.tasks[task]
	if t == nil {
		t = &backend.TaskLimit{Task: task}
		b.lim.tasks[task] = t
	}
	return t
}

// OverrideLimit sets or clears a task's override.
func (b *Backend) OverrideLimit(ctx context.Context, task string, l backend.Limit, set bool) error {
	if task == "" {
		return errors.New("memory: override limit: task name is empty")
	}
	if err := b.lock(ctx, "override limit"); err != nil {
		return err
	}
	defer b.mu.Unlock()
	t := b.limitOf(task)
	t.Override, t.HasOverride = l, set
	if !set {
		t.Override = backend.Limit{}
		if t.Declared.IsZero() {
			delete(b.lim.tasks, task)
		}
	}
	return nil
}

// TaskLimits lists the stored limits by task name.
func (b *Backend) TaskLimits(ctx context.Context) ([]backend.TaskLimit, error) {
	if err := b.lock(ctx, "task limits"); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	out := []backend.TaskLimit{}
	for _, t := range b.lim.tasks {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(x, y backend.TaskLimit) int { return cmp.Compare(x.Task, y.Task) })
	return out, nil
}

// allowances returns how many jobs of each limited task a claim at now may
// start (nil when no task is limited). The caller holds the mutex.
func (b *Backend) allowances(now time.Time) map[string]int {
	var allow map[string]int
	for task, t := range b.lim.tasks {
		l := t.Effective()
		if l.IsZero() {
			continue
		}
		n := math.MaxInt
		if l.MaxConcurrency > 0 {
			running := 0
			for _, e := range b.leases.items {
				if e.job.Task == task {
					running++
				}
			}
			n = min(n, l.MaxConcurrency-running)
		}
		if l.Rate > 0 && l.Per > 0 {
			recent := 0
			for _, s := range b.lim.starts[task] {
				if s.After(now.Add(-l.Per)) {
					recent++
				}
			}
			n = min(n, l.Rate-recent)
		}
		if allow == nil {
			allow = map[string]int{}
		}
		allow[task] = n
	}
	return allow
}

// started records a start of a limited task. The caller holds the mutex.
func (b *Backend) started(task string, now time.Time) {
	t := b.lim.tasks[task]
	if t == nil {
		return
	}
	l := t.Effective()
	if l.Rate <= 0 || l.Per <= 0 {
		return
	}
	keep := b.lim.starts[task][:0]
	for _, s := range b.lim.starts[task] {
		if s.After(now.Add(-l.Per - startsSlack)) {
			keep = append(keep, s)
		}
	}
	b.lim.starts[task] = append(keep, now)
}
