package memory

import (
	"container/heap"
	"math"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// place says which structure holds an entry.
type place uint8

const (
	nowhere   place = iota // final state: in no heap
	inReady                // its queue's ready heap
	inWaiting              // its queue's waiting heap (run-at in the future)
	inLeases               // the lease heap (running)
)

// entry is one stored job and its position in the heap that holds it. due and
// until cache job.RunAt and job.LeaseUntil as nanoseconds for the heaps: set
// them only through setRunAt and setLeaseUntil.
type entry struct {
	job   backend.Job
	due   int64
	until int64
	where place
	index int
}

func (e *entry) setRunAt(t time.Time) {
	e.job.RunAt = t
	e.due = nanos(t)
}

func (e *entry) setLeaseUntil(t time.Time) {
	e.job.LeaseUntil = t
	e.until = nanos(t)
}

var (
	minNanos = time.Unix(0, math.MinInt64)
	maxNanos = time.Unix(0, math.MaxInt64)
)

// nanos returns t as Unix nanoseconds, clamped to the int64 range (the zero
// time sorts first), so that integer order is time order.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(minNanos):
		return math.MinInt64
	case t.After(maxNanos):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// entryHeap is a container/heap of entries ordered by less; it keeps each
// entry's index so that entries can be removed or fixed in O(log n).
type entryHeap struct {
	kind  place
	less  func(a, b *entry) bool
	items []*entry
}

func (h *entryHeap) Len() int           { return len(h.items) }
func (h *entryHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *entryHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index = i
	h.items[j].index = j
}

func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.where, e.index = h.kind, len(h.items)
	h.items = append(h.items, e)
}

func (h *entryHeap) Pop() any {
	n := len(h.items) - 1
	e := h.items[n]
	h.items[n] = nil
	h.items = h.items[:n]
	e.where, e.index = nowhere, -1
	return e
}

// top returns the heap's first entry, or nil.
func (h *entryHeap) top() *entry {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

// readyFirst orders ready jobs: highest priority, then earliest run-at, then lowest id.
func readyFirst(a, b *entry) bool {
	if a.job.Priority != b.job.Priority {
		return a.job.Priority > b.job.Priority
	}
	if a.due != b.due {
		return a.due < b.due
	}
	return a.job.ID < b.job.ID
}

// dueFirst orders waiting jobs by run-at, then id.
func dueFirst(a, b *entry) bool {
	if a.due != b.due {
		return a.due < b.due
	}
	return a.job.ID < b.job.ID
}

// expiresFirst orders running jobs by lease deadline, then id.
func expiresFirst(a, b *entry) bool {
	if a.until != b.until {
		return a.until < b.until
	}
	return a.job.ID < b.job.ID
}

// queue holds the not-yet-claimed jobs of one queue: those ready at promoted
// in a priority heap, later ones in a run-at heap.
type queue struct {
	ready   entryHeap
	waiting entryHeap
	// promoted is the latest claim time (nanos): every waiting job is due after it.
	promoted int64
}

func newQueue() *queue {
	return &queue{
		ready:    entryHeap{kind: inReady, less: readyFirst},
		waiting:  entryHeap{kind: inWaiting, less: dueFirst},
		promoted: math.MinInt64,
	}
}

// add puts an unclaimed job in the ready or the waiting heap.
func (q *queue) add(e *entry) {
	if e.due > q.promoted {
		heap.Push(&q.waiting, e)
	} else {
		heap.Push(&q.ready, e)
	}
}

// advance makes the ready heap hold exactly the jobs with RunAt <= now. Time
// moving forward costs O(k log n) for k jobs becoming ready; a clock that moves
// back (rare: only explicit test clocks) costs one pass over the ready heap.
func (q *queue) advance(now int64) {
	if now < q.promoted {
		keep := q.ready.items[:0]
		var back []*entry
		for _, e := range q.ready.items {
			if e.due > now {
				back = append(back, e)
			} else {
				keep = append(keep, e)
			}
		}
		clear(q.ready.items[len(keep):])
		q.ready.items = keep
		for i, e := range keep {
			e.index = i
		}
		heap.Init(&q.ready)
		for _, e := range back {
			heap.Push(&q.waiting, e)
		}
	}
	for {
		e := q.waiting.top()
		if e == nil || e.due > now {
			break
		}
		heap.Pop(&q.waiting)
		heap.Push(&q.ready, e)
	}
	q.promoted = now
}
