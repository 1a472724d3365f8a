package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Snapshot is what the live counters show; one poll of the store makes one
// snapshot, shared by every open page.
type Snapshot struct {
	// Seq numbers the polls: pages that saw the same Seq shared one poll.
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Processed and Failed per second since the previous poll (from the
	// per-minute aggregates); absent on the first poll.
	Processed float64 `json:"processed_per_sec"`
	Failed    float64 `json:"failed_per_sec"`
	// Totals by state come from the shared counts (see statsCache),
	// taken at CountedAt; Workers (live) is refreshed every statsEvery poll
	// intervals.
	Totals    map[backend.State]int `json:"totals,omitempty"`
	CountedAt time.Time             `json:"counted_at,omitzero"`
	Workers   int                   `json:"workers"`
	Err       string                `json:"error,omitempty"`
}

// statsEvery is how many poll intervals (PollEvery) share one look at the
// worker registry.
const statsEvery = 10

// hub polls the store once per PollEvery while anyone listens, and fans
// the snapshot out: the store sees one light query per tick however many
// pages are open.
type hub struct {
	h *Handler

	mu      sync.Mutex
	subs    map[chan Snapshot]struct{}
	running bool
	stop    chan struct{}
	closed  bool
	last    Snapshot
	prev    map[minuteKey]backend.MinuteStat
	prevAt  time.Time
	polls   int64
	// workersAt is when the worker registry was last read.
	workersAt time.Time
}

type minuteKey struct {
	minute      int64
	queue, task string
}

func newHub(h *Handler) *hub {
	return &hub{h: h, subs: map[chan Snapshot]struct{}{}}
}

func (b *hub) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running {
		close(b.stop)
		b.running = false
	}
	b.closed = true
}

// subscribe registers a listener and starts the poller when it is the first.
func (b *hub) subscribe() (chan Snapshot, func()) {
	ch := make(chan Snapshot, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[ch] = struct{}{}
	if !b.running && !b.closed {
		b.running = true
		b.stop = make(chan struct{})
		go b.run(b.stop)
	}
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, ch)
		if len(b.subs) == 0 && b.running {
			close(b.stop)
			b.running = false
		}
	}
}

func (b *hub) run(stop chan struct{}) {
	t := time.NewTicker(b.h.o.PollEvery)
	defer t.Stop()
	for {
		s := b.poll()
		b.mu.Lock()
		for ch := range b.subs {
			select { // a slow page skips a snapshot rather than stalling the others
			case <-ch:
			default:
			}
			ch <- s
		}
		b.mu.Unlock()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// current returns the last snapshot when it is younger than PollEvery, else polls.
func (b *hub) current() Snapshot {
	b.mu.Lock()
	fresh := b.polls > 0 && b.h.o.Now().Sub(b.last.Time) < b.h.o.PollEvery
	s := b.last
	b.mu.Unlock()
	if fresh {
		return s
	}
	return b.poll()
}

// poll reads the store once: the aggregates of the last two minutes (an
// index range), the counts by state, and every statsEvery poll intervals
// the workers.
func (b *hub) poll() Snapshot {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.h.o.Now()
	b.polls++
	s := Snapshot{Seq: b.polls, Time: now, Totals: b.last.Totals, Workers: b.last.Workers}
	if a := b.h.admin; a != nil {
		ms, err := a.Minutes(ctx, backend.MinuteFilter{Since: now.Add(-2 * time.Minute)})
		if err != nil {
			s.Err = err.Error()
		} else {
			cur := make(map[minuteKey]backend.MinuteStat, len(ms))
			var dp, df int
			for _, m := range ms {
				k := minuteKey{m.Minute.UnixNano(), m.Queue, m.Task}
				cur[k] = m
				p := b.prev[k]
				dp += m.Processed() - p.Processed()
				df += m.Failed + m.Retried - p.Failed - p.Retried
			}
			if b.prev != nil {
				if secs := now.Sub(b.prevAt).Seconds(); secs > 0 {
					s.Processed, s.Failed = float64(dp)/secs, float64(df)/secs
				}
			}
			b.prev, b.prevAt = cur, now
		}
	}
	stats, at, err := b.h.stats(ctx)
	s.CountedAt = at
	if err != nil {
		s.Err = err.Error()
	} else {
		s.Totals = map[backend.State]int{}
		for _, st := range stats {
			s.Totals[st.State] += st.Count
		}
	}
	// By the clock, not by the poll count: polls happen only while a page is
	// open, so counting them could keep a gone worker "live" for hours.
	if b.workersAt.IsZero() || now.Sub(b.workersAt) >= statsEvery*b.h.o.PollEvery || now.Before(b.workersAt) {
		if a := b.h.admin; a != nil {
			if ws, err := a.Workers(ctx, now); err == nil {
				b.workersAt = now
				s.Workers = 0
				for _, w := range ws {
					if !w.Gone {
						s.Workers++
					}
				}
			}
		}
	}
	b.last = s
	return s
}

// events streams snapshots as server-sent events until the page closes.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	ch, unsubscribe := h.live.subscribe()
	defer unsubscribe()
	fmt.Fprint(w, "retry: 3000\n\n")
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case s := <-ch:
			b, _ := json.Marshal(s)
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// apiLive returns the current snapshot as JSON (shared with the SSE poll).
func (h *Handler) apiLive(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(h.live.current())
}
