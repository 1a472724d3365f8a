package sqlite

import (
	"database/sql"
	"sync"
	"time"
)

// notifier wakes subscribers. Jobs enqueued, retried or released through this
// Backend signal at once; commits by other connections (other processes, or
// other Backends on the same file) are noticed by polling PRAGMA data_version
// on the writer connection, which changes only when another connection has
// committed. The poll runs only while someone is subscribed.
type notifier struct {
	db       *sql.DB
	interval time.Duration

	mu     sync.Mutex
	subs   map[int]chan struct{}
	next   int
	stop   chan struct{} // closes to stop the running poller; nil when none runs
	done   chan struct{} // closed when the poller has returned
	closed bool
}

func (n *notifier) init(db *sql.DB, interval time.Duration) {
	n.db = db
	n.interval = interval
	n.subs = map[int]chan struct{}{}
}

// Subscribe returns a channel that receives when new work may be ready, and a
// function that unsubscribes. Signals coalesce; the sender never blocks.
func (b *Backend) Subscribe() (<-chan struct{}, func()) {
	return b.notify.subscribe()
}

func (n *notifier) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ch, func() {}
	}
	id := n.next
	n.next++
	n.subs[id] = ch
	if n.stop == nil {
		n.stop, n.done = make(chan struct{}), make(chan struct{})
		go n.poll(n.stop, n.done)
	}
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			n.mu.Lock()
			delete(n.subs, id)
			var done chan struct{}
			if len(n.subs) == 0 && n.stop != nil {
				close(n.stop)
				done = n.done
				n.stop, n.done = nil, nil
			}
			n.mu.Unlock()
			if done != nil {
				<-done
			}
		})
	}
}

// signal wakes every subscriber without blocking.
func (n *notifier) signal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// poll checks PRAGMA data_version every interval until stop closes and
// signals subscribers when it changed.
func (n *notifier) poll(stop, done chan struct{}) {
	defer close(done)
	// A prepared statement and a context that cannot be cancelled keep each
	// check to one cached statement step: no compile, no watcher goroutine.
	st, err := n.db.Prepare(`PRAGMA data_version`)
	if err != nil {
		return
	}
	defer st.Close()
	var last int64
	have := false
	t := time.NewTicker(n.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		var v int64
		if err := st.QueryRow().Scan(&v); err != nil {
			// Busy or closing: try again at the next tick; a missed wake-up
			// only delays pickup until the worker's own poll.
			continue
		}
		if have && v != last {
			n.signal()
		}
		last, have = v, true
	}
}

// close stops the poller; later subscriptions get a channel that never fires.
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	var done chan struct{}
	if n.stop != nil {
		close(n.stop)
		done = n.done
		n.stop, n.done = nil, nil
	}
	n.subs = map[int]chan struct{}{}
	n.mu.Unlock()
	if done != nil {
		<-done
	}
}
