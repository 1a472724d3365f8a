package memory

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

var _ backend.Admin = (*Backend)(nil)

// adminState holds the Admin data (under Backend.mu).
type adminState struct {
	workers map[string]backend.WorkerInfo
	paused  map[string]bool
	minutes map[minuteKey]*backend.MinuteStat
}

type minuteKey struct {
	minute      int64
	queue, task string
}

func (a *adminState) init() {
	if a.workers == nil {
		a.workers = map[string]backend.WorkerInfo{}
		a.paused = map[string]bool{}
		a.minutes = map[minuteKey]*backend.MinuteStat{}
	}
}

// addMinute counts one applied outcome (under b.mu).
func (a *adminState) addMinute(m backend.MinuteStat) {
	a.init()
	k := minuteKey{m.Minute.UnixNano(), m.Queue, m.Task}
	if cur := a.minutes[k]; cur != nil {
		cur.Add(m)
		return
	}
	a.minutes[k] = &m
	cutoff := m.Minute.Add(-backend.MinutesRetention).UnixNano()
	for k := range a.minutes {
		if k.minute < cutoff {
			delete(a.minutes, k)
		}
	}
}

// Heartbeat stores w's registry row and forgets long-gone workers.
func (b *Backend) Heartbeat(ctx context.Context, w backend.WorkerInfo) error {
	if w.ID == "" {
		return errors.New("memory: heartbeat: worker id is empty")
	}
	if err := b.lock(ctx, "heartbeat"); err != nil {
		return err
	}
	defer b.mu.Unlock()
	b.admin.init()
	w.Gone = false
	w.Queues = slices.Clone(w.Queues)
	b.admin.workers[w.ID] = w
	for id, o := range b.admin.workers {
		if o.LastHeartbeat.Before(w.LastHeartbeat.Add(-backend.WorkerForgetAfter)) {
			delete(b.admin.workers, id)
		}
	}
	return nil
}

// RemoveWorker deletes a worker's row.
func (b *Backend) RemoveWorker(ctx context.Context, id string) error {
	if err := b.lock(ctx, "remove worker"); err != nil {
		return err
	}
	defer b.mu.Unlock()
	delete(b.admin.workers, id)
	return nil
}

// Workers lists the registered workers by id.
func (b *Backend) Workers(ctx context.Context, now time.Time) ([]backend.WorkerInfo, error) {
	if err := b.lock(ctx, "workers"); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	out := []backend.WorkerInfo{}
	for _, w := range b.admin.workers {
		w.Queues = slices.Clone(w.Queues)
		w.Gone = w.IsGone(now)
		out = append(out, w)
	}
	slices.SortFunc(out, func(x, y backend.WorkerInfo) int { return cmp.Compare(x.ID, y.ID) })
	return out, nil
}

// SetPaused pauses or resumes a queue.
func (b *Backend) SetPaused(ctx context.Context, queue string, paused bool) error {
	if err := b.lock(ctx, "pause queue"); err != nil {
		return err
	}
	b.admin.init()
	if paused {
		b.admin.paused[queue] = true
	} else {
		delete(b.admin.paused, queue)
		b.notify()
	}
	b.mu.Unlock()
	return nil
}

// Paused lists the paused queues, sorted.
func (b *Backend) Paused(ctx context.Context) ([]string, error) {
	if err := b.lock(ctx, "paused queues"); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	out := []string{}
	for q := range b.admin.paused {
		out = append(out, q)
	}
	slices.Sort(out)
	return out, nil
}

// Minutes returns the aggregates selected by f.
func (b *Backend) Minutes(ctx context.Context, f backend.MinuteFilter) ([]backend.MinuteStat, error) {
	if err := b.lock(ctx, "aggregates"); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	since := f.Since.Truncate(time.Minute)
	sums := map[minuteKey]*backend.MinuteStat{}
	for _, m := range b.admin.minutes {
		if m.Minute.Before(since) || (!f.Until.IsZero() && !m.Minute.Before(f.Until)) ||
			(f.Queue != "" && m.Queue != f.Queue) || (f.Task != "" && m.Task != f.Task) {
			continue
		}
		g := *m
		if f.CountsOnly {
			g.Duration, g.Buckets = 0, [backend.NumBuckets]int64{}
		}
		g.Minute = f.Bucket(m.Minute)
		g.Queue, g.Task = f.Keys(m.Queue, m.Task)
		k := minuteKey{g.Minute.UnixNano(), g.Queue, g.Task}
		if cur := sums[k]; cur != nil {
			cur.Add(g)
		} else {
			sums[k] = &g
		}
	}
	out := make([]backend.MinuteStat, 0, len(sums))
	for _, m := range sums {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(x, y backend.MinuteStat) int {
		return cmp.Or(x.Minute.Compare(y.Minute), cmp.Compare(x.Queue, y.Queue), cmp.Compare(x.Task, y.Task))
	})
	return out, nil
}

// Search lists a page of jobs matching q, newest first.
func (b *Backend) Search(ctx context.Context, q backend.JobQuery) (backend.JobPage, error) {
	if err := b.lock(ctx, "search jobs"); err != nil {
		return backend.JobPage{}, err
	}
	defer b.mu.Unlock()
	var match []*entry
	for _, e := range b.jobs {
		j := &e.job
		if (len(q.States) == 0 || slices.Contains(q.States, j.State)) &&
			(q.Task == "" || j.Task == q.Task) && (q.Queue == "" || j.Queue == q.Queue) &&
			(q.Since.IsZero() || !j.CreatedAt.Before(backend.ClampTime(q.Since))) &&
			(q.Until.IsZero() || j.CreatedAt.Before(backend.ClampTime(q.Until))) &&
			(q.After == "" || j.ID < q.After) && (q.MinID == "" || j.ID >= q.MinID) &&
			(q.Text == "" || j.ID == q.Text || j.UniqueKey == q.Text || bytes.Contains(j.Args, []byte(q.Text))) {
			match = append(match, e)
		}
	}
	slices.SortFunc(match, func(a, b *entry) int { return cmp.Compare(b.job.ID, a.job.ID) })
	var p backend.JobPage
	if limit := q.PageLimit(); len(match) > limit {
		match = match[:limit]
		p.Next = match[limit-1].job.ID
	}
	p.Jobs = make([]*backend.Job, len(match))
	for i, e := range match {
		p.Jobs[i] = cloneJob(&e.job)
	}
	return p, nil
}

// Bulk applies action to the selected jobs.
func (b *Backend) Bulk(ctx context.Context, action backend.BulkAction, sel backend.Selection, now time.Time) (int, error) {
	return backend.BulkEach(ctx, b, action, sel, now)
}
