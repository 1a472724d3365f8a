package sqlite

import (
	"database/sql"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// notifier wakes subscribers. Jobs enqueued, retried or released through this
// Backend signal at once; commits by other connections (other processes, or
// other Backends on the same file) are noticed through PRAGMA data_version on
// the writer connection, which changes only when another connection has
// committed. The check runs when the database's WAL (or main) file changes,
// as fsnotify reports, at most once per eventGap while commits stream in, and
// otherwise only every safetyPoll: an idle worker does almost nothing. Where
// the folder cannot be watched, it polls every interval instead. All of this
// runs only while someone is subscribed.
type notifier struct {
	db       *sql.DB
	path     string // the database file
	interval time.Duration

	mu     sync.Mutex
	subs   map[int]chan struct{}
	next   int
	stop   chan struct{} // closes to stop the running poller; nil when none runs
	done   chan struct{} // closed when the poller has returned
	closed bool
}

// safetyPoll bounds the wake-up delay should a file event be missed.
const safetyPoll = 250 * time.Millisecond

// eventGap is the least time between two checks that file events trigger. A
// commit is several writes, so the first event's check may come too early:
// the next one follows within eventGap. While commits stream in this caps the
// checks at about a thousand a second, each one cached statement step.
const eventGap = time.Millisecond

func (n *notifier) init(db *sql.DB, path string, interval time.Duration) {
	n.db = db
	n.path = path
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

// poll checks PRAGMA data_version when the database files change (or every
// interval when they cannot be watched) until stop closes, and signals
// subscribers when it changed.
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
	var lastCheck time.Time
	check := func() {
		lastCheck = time.Now()
		var v int64
		if err := st.QueryRow().Scan(&v); err != nil {
			// Busy or closing: a missed wake-up only delays pickup until the
			// next check or the worker's own poll.
			return
		}
		if have && v != last {
			n.signal()
		}
		last, have = v, true
	}
	check()

	events, unwatch := watchFiles(n.path)
	defer unwatch()
	period := safetyPoll
	if events == nil {
		period = n.interval
	}
	t := time.NewTicker(period)
	defer t.Stop()
	// SQLite publishes a commit through the memory-mapped -shm index, which
	// raises no file event, after its last write to the WAL: so one more check
	// follows an interval after the last event.
	trailing := time.NewTimer(time.Hour)
	trailing.Stop()
	defer trailing.Stop()
	var pending <-chan time.Time // a check deferred to honour eventGap
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			check()
		case <-pending:
			pending = nil
			check()
		case <-trailing.C:
			check()
		case _, ok := <-events:
			if !ok { // the watcher failed: poll instead
				events = nil
				t.Reset(n.interval)
				continue
			}
			trailing.Reset(n.interval)
			if pending != nil {
				continue
			}
			if wait := eventGap - time.Since(lastCheck); wait > 0 {
				pending = time.After(wait)
				continue
			}
			check()
		}
	}
}

// watchFiles reports writes to the database file and its WAL on the returned
// channel (coalesced), until unwatch is called; the channel closes if the
// watcher fails. It returns a nil channel when the folder cannot be watched.
func watchFiles(db string) (<-chan struct{}, func()) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, func() {}
	}
	if err := w.Add(filepath.Dir(db)); err != nil {
		w.Close()
		return nil, func() {}
	}
	wal := db + "-wal"
	out := make(chan struct{}, 1)
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		defer close(out)
		for {
			select {
			case <-quit:
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if (ev.Name == wal || ev.Name == db) && ev.Op&(fsnotify.Write|fsnotify.Create) != 0 {
					select {
					case out <- struct{}{}:
					default:
					}
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	return out, func() {
		close(quit)
		w.Close()
		<-finished
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
