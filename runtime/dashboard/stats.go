package dashboard

import (
	"context"
	"sync"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// minStatsAge is the least time counts by state are reused for.
const minStatsAge = time.Second

// quickCount is the duration under which a stale count is redone while
// the page waits (a small store), rather than in the background.
const quickCount = 50 * time.Millisecond

// statsCache shares the counts of jobs by queue and state between pages and
// the live poll, reused for max(minStatsAge, 20 × the last count's
// duration): one count a second at most, however many pages are open. The
// SQLite and Redis backends answer Stats from counters (SQLite: a few
// milliseconds at a million jobs), so a stale count is simply redone while
// the page waits. Where Stats still reads every job (the file backend, a
// plugin's backend, the memory backend's map), a slow count is served
// while one refresh runs in the background, so pages never wait for it
// after the first, and the store spends at most a twentieth of a reader's
// time counting.
type statsCache struct {
	mu    sync.Mutex
	stats []backend.QueueStat
	at    time.Time // when the counts were taken
	took  time.Duration
	// done is open while a count runs; it is closed when the count ends.
	done chan struct{}
	err  error
}

// stats returns the counts and when they were taken. Only the first call
// (before any count finished) waits, for the one count in flight.
func (h *Handler) stats(ctx context.Context) ([]backend.QueueStat, time.Time, error) {
	c := &h.statsCache
	c.mu.Lock()
	if !c.at.IsZero() {
		stats, at := c.stats, c.at
		stale := time.Since(at) > max(minStatsAge, 20*c.took)
		if !stale || c.took >= quickCount {
			if stale && c.done == nil {
				h.startCount()
			}
			c.mu.Unlock()
			return stats, at, nil
		}
	}
	if c.done == nil {
		h.startCount()
	}
	done := c.done
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats, c.at, c.err
}

// startCount starts one count in the background (c.mu held).
func (h *Handler) startCount() {
	c := &h.statsCache
	done := make(chan struct{})
	c.done = done
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(h.bg, time.Minute)
		defer cancel()
		start := time.Now()
		stats, err := h.o.Backend.Stats(ctx, h.o.Now())
		c.mu.Lock()
		defer c.mu.Unlock()
		c.done = nil
		if err != nil {
			c.err = err
			return
		}
		c.stats, c.at, c.took, c.err = stats, time.Now(), time.Since(start), nil
	}()
}
