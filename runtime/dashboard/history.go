package dashboard

import (
	"cmp"
	"context"
	"slices"
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
	// filling holds a channel per series (a key without its bucket) whose
	// closed buckets one caller is reading; others wait for it.
	filling map[historyKey]chan struct{}
}

type historyKey struct {
	step        time.Duration
	group       backend.Grouping
	queue, task string
	counts      bool
	bucket      int64
}

// closeGrace is how long after its end a bucket is taken as closed: an
// outcome is stored a moment after it finished (workers batch their
// writes), so the last minute may still be counted into.
const closeGrace = time.Minute

// minutes is Admin.Minutes for [f.Since, now] through the cache of closed
// buckets (Step of a minute or more). f.Since must be the start of a bucket
// (whole buckets are cached). Buckets still open are read from the store;
// those of a Step of several hours are made of hour buckets (cached once
// closed too), so no read covers more than an hour or two of minutes.
func (h *Handler) minutes(ctx context.Context, f backend.MinuteFilter, now time.Time) ([]backend.MinuteStat, error) {
	if f.Step < time.Minute {
		f.Step = time.Minute
	}
	c := &h.history
	// The first bucket not closed yet.
	open := f.Bucket(now.UTC().Add(-closeGrace).Truncate(time.Minute))
	key := func(b time.Time) historyKey {
		return historyKey{f.Step, f.Group, f.Queue, f.Task, f.CountsOnly, b.UnixNano()}
	}
	start := f.Bucket(f.Since.UTC().Truncate(time.Minute))
	series := key(time.Time{})
	var missing time.Time // the first closed bucket not cached
	for {
		c.mu.Lock()
		if c.rows == nil {
			c.rows = map[historyKey][]backend.MinuteStat{}
			c.filling = map[historyKey]chan struct{}{}
		}
		missing = time.Time{}
		for b := start; b.Before(open); b = b.Add(f.Step) {
			if _, ok := c.rows[key(b)]; !ok {
				missing = b
				break
			}
		}
		wait, busy := c.filling[series]
		if missing.IsZero() || !busy {
			if !missing.IsZero() {
				done := make(chan struct{})
				c.filling[series] = done
				defer func() {
					c.mu.Lock()
					delete(c.filling, series)
					c.mu.Unlock()
					close(done)
				}()
			}
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		select { // another page (or the warm-up) is reading these buckets
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
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
	var cur []backend.MinuteStat
	var err error
	if f.Step > time.Hour && f.Step%time.Hour == 0 {
		g.Step = time.Hour
		hours, err := h.minutes(ctx, g, now)
		if err != nil {
			return nil, err
		}
		cur = rebucket(f, hours)
	} else if cur, err = h.admin.Minutes(ctx, g); err != nil {
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

// rebucket sums rows (of f's grouping) into f.Step buckets, in order.
func rebucket(f backend.MinuteFilter, rows []backend.MinuteStat) []backend.MinuteStat {
	var out []backend.MinuteStat
	for _, r := range rows {
		r.Minute = f.Bucket(r.Minute)
		i := slices.IndexFunc(out, func(o backend.MinuteStat) bool {
			return o.Minute.Equal(r.Minute) && o.Queue == r.Queue && o.Task == r.Task
		})
		if i >= 0 {
			out[i].Add(r)
		} else {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(x, y backend.MinuteStat) int {
		return cmp.Or(x.Minute.Compare(y.Minute), cmp.Compare(x.Queue, y.Queue), cmp.Compare(x.Task, y.Task))
	})
	return out
}
