package dashboard

import (
	"context"
	"sync"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// minStatsAge is the least time counts by state are reused for.
const minStatsAge = 2 * time.Second

// statsCache shares the counts of jobs by queue and state between pages and
// the live poll. Counting every job is the one query whose cost grows with
// the store (a scan of the jobs), so the counts are reused for
// max(minStatsAge, 20 × the last count's duration) and, once stale,
// served while one refresh runs in the background: pages never wait for it
// after the first, and the store spends at most a twentieth of a reader's
// time counting, however many pages are open.
type statsCache struct {
	mu         sync.Mutex
	stats      []backend.QueueStat
	at         time.Time // when the counts were taken
	took       time.Duration
	refreshing bool
	err        error
}

// stats returns the counts and when they were taken.
func (h *Handler) stats(ctx context.Context) ([]backend.QueueStat, time.Time, error) {
	c := &h.statsCache
	c.mu.Lock()
	if !c.at.IsZero() {
		stats, at := c.stats, c.at
		if time.Since(at) > max(minStatsAge, 20*c.took) && !c.refreshing {
			c.refreshing = true
			go h.refreshStats(context.WithoutCancel(ctx))
		}
		c.mu.Unlock()
		return stats, at, nil
	}
	c.mu.Unlock()
	return h.refreshStats(ctx)
}

// refreshStats counts the jobs and stores the counts.
func (h *Handler) refreshStats(ctx context.Context) ([]backend.QueueStat, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start := time.Now()
	stats, err := h.o.Backend.Stats(ctx, h.o.Now())
	c := &h.statsCache
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshing = false
	if err != nil {
		c.err = err
		return c.stats, c.at, err
	}
	c.stats, c.at, c.took, c.err = stats, time.Now(), time.Since(start), nil
	return stats, c.at, nil
}
