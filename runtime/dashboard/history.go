package dashboard

import (
	"context"
	"sync"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// historyCache keeps the aggregates of closed buckets (buckets of an hour or
// more that ended before the current one), which do not change: a chart of
// the last week reads the store's minutes once, then only its current
// bucket.
type historyCache struct {
	mu   sync.Mutex
	rows map[historyKey][]backend.MinuteStat
}

type historyKey struct {
	step        time.Duration
	group       backend.Grouping
	queue, task string
	counts      bool
	bucket      int64
}

// minutes is Admin.Minutes for [f.Since, now] through the cache of closed
// buckets: steps under an hour are read from the store every time. f.Since
// must be the start of a bucket (whole buckets are cached).
func (h *Handler) minutes(ctx context.Context, f backend.MinuteFilter, now time.Time) ([]backend.MinuteStat, error) {
	if f.Step < time.Hour {
		return h.admin.Minutes(ctx, f)
	}
	c := &h.history
	open := f.Bucket(now.UTC().Truncate(time.Minute)) // the current bucket
	key := func(b time.Time) historyKey {
		return historyKey{f.Step, f.Group, f.Queue, f.Task, f.CountsOnly, b.UnixNano()}
	}
	start := f.Bucket(f.Since.UTC().Truncate(time.Minute))
	c.mu.Lock()
	if c.rows == nil {
		c.rows = map[historyKey][]backend.MinuteStat{}
	}
	missing := time.Time{} // the first closed bucket not cached
	for b := start; b.Before(open); b = b.Add(f.Step) {
		if _, ok := c.rows[key(b)]; !ok {
			missing = b
			break
		}
	}
	c.mu.Unlock()
	if !missing.IsZero() {
		g := f
		g.Since, g.Until = missing, open
		rows, err := h.admin.Minutes(ctx, g)
		if err != nil {
			return nil, err
		}
		fresh := map[historyKey][]backend.MinuteStat{}
		for b := missing; b.Before(open); b = b.Add(f.Step) {
			fresh[key(b)] = nil
		}
		for _, r := range rows {
			k := key(r.Minute)
			fresh[k] = append(fresh[k], r)
		}
		c.mu.Lock()
		for k, v := range fresh {
			c.rows[k] = v
		}
		// Forget buckets past the aggregates' retention.
		old := now.Add(-backend.MinutesRetention - f.Step).UnixNano()
		for k := range c.rows {
			if k.bucket < old {
				delete(c.rows, k)
			}
		}
		c.mu.Unlock()
	}
	g := f
	g.Since, g.Until = open, time.Time{}
	cur, err := h.admin.Minutes(ctx, g)
	if err != nil {
		return nil, err
	}
	var out []backend.MinuteStat
	c.mu.Lock()
	for b := start; b.Before(open); b = b.Add(f.Step) {
		out = append(out, c.rows[key(b)]...)
	}
	c.mu.Unlock()
	return append(out, cur...), nil
}
