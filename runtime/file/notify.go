package file

import (
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Subscribe returns a channel that receives when work may be ready: at once
// for enqueues, retries and releases made through this Backend, and, across
// processes, when a file appears in a ready/ folder (fsnotify; when the
// platform cannot watch, a poll of the ready folders' modification times).
func (b *Backend) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	id := b.nextID
	b.nextID++
	b.subs[id] = ch
	if b.watch == nil && !b.closed {
		b.watch = b.startWatcher()
	}
	b.mu.Unlock()
	return ch, sync.OnceFunc(func() {
		b.mu.Lock()
		delete(b.subs, id)
		var w *watcher
		if len(b.subs) == 0 {
			w, b.watch = b.watch, nil
		}
		b.mu.Unlock()
		if w != nil {
			w.stop()
		}
	})
}

// signal wakes every subscriber without blocking; signals coalesce.
func (b *Backend) signal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range b.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// watcher watches the ready folders for files created by other processes.
type watcher struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func (w *watcher) stop() {
	close(w.done)
	w.wg.Wait()
}

// startWatcher starts the cross-process watch. Call with b.mu held; the
// goroutine it starts takes b.mu only through signal and logger.
func (b *Backend) startWatcher() *watcher {
	w := &watcher{done: make(chan struct{})}
	root := b.path(readyDir)
	fw, err := fsnotify.NewWatcher()
	if err == nil {
		err = fw.Add(root)
		queues, _ := readNames(root)
		for _, q := range queues {
			if err == nil {
				err = fw.Add(filepath.Join(root, q))
			}
		}
		if err != nil {
			_ = fw.Close()
		}
	}
	w.wg.Add(1)
	if err != nil {
		go b.pollLoop(w, root)
	} else {
		go b.watchLoop(w, fw, root)
	}
	return w
}

func (b *Backend) watchLoop(w *watcher, fw *fsnotify.Watcher, root string) {
	defer w.wg.Done()
	defer fw.Close()
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-fw.Events:
			if !ok {
				return
			}
			name := filepath.Base(ev.Name)
			if name == "" || name[0] == '.' || !ev.Has(fsnotify.Create) {
				continue
			}
			if filepath.Dir(ev.Name) == root {
				_ = fw.Add(ev.Name) // a new queue folder: watch it too
			}
			b.signal()
		case _, ok := <-fw.Errors:
			if !ok {
				return
			}
			b.signal() // e.g. an overflow: events were lost, so look
		}
	}
}

// pollLoop compares the modification times of the ready folders; it reads
// only the queue folder names, never the job files.
func (b *Backend) pollLoop(w *watcher, root string) {
	defer w.wg.Done()
	t := time.NewTicker(b.poll)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
		}
		latest := modTime(root)
		queues, _ := readNames(root)
		for _, q := range queues {
			if m := modTime(filepath.Join(root, q)); m.After(latest) {
				latest = m
			}
		}
		if latest.After(last) {
			last = latest
			b.signal()
		}
	}
}

func modTime(p string) time.Time {
	fi, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
