// Package stopsignal turns the stop signals a process receives (SIGINT,
// SIGTERM, a console's Ctrl-C) into stop requests.
//
// One keypress can arrive more than once: a terminal sends SIGINT to its whole
// foreground process group, and a parent in that group that forwards signals
// (the go command under "go tool nuvom ...") sends its own copy. So signals
// that arrive within Window of the last accepted one count as one request,
// and a second request means what a second keypress means: stop at once.
package stopsignal

import (
	"os"
	"time"
)

// Window is how close together stop signals must arrive to count as one.
const Window = time.Second

// Filter decides which signals are new stop requests. The zero value accepts
// every signal (a zero Window).
type Filter struct {
	// Window is how long after an accepted signal others count as the same one.
	Window time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time

	last     time.Time
	accepted bool
}

// Accept reports whether a signal arriving now is a new stop request, and
// remembers it when it is.
func (f *Filter) Accept() bool {
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	t := now()
	if f.accepted && t.Sub(f.last) < f.Window {
		return false
	}
	f.last, f.accepted = t, true
	return true
}

// Coalesce passes on the signals of in that f accepts, until done is closed;
// it calls repeated (when not nil) with each signal it drops. The returned
// channel is never closed.
func Coalesce(in <-chan os.Signal, f *Filter, done <-chan struct{}, repeated func(os.Signal)) <-chan os.Signal {
	out := make(chan os.Signal, 4)
	go func() {
		for {
			select {
			case s := <-in:
				if !f.Accept() {
					if repeated != nil {
						repeated(s)
					}
					continue
				}
				select {
				case out <- s:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	return out
}

// Spacer spaces the stop signals a parent sends to a child that filters them
// with Window, so that a second request is not taken for a repeat of the first.
type Spacer struct {
	// Now is the clock; default time.Now.
	Now func() time.Time

	last time.Time
	sent bool
}

// Delay returns how long to wait before sending the next signal: zero for the
// first, else what remains of Window plus a margin since the previous one.
func (s *Spacer) Delay() time.Duration {
	if !s.sent {
		return 0
	}
	return max(0, Window+Window/4-s.now().Sub(s.last))
}

// Sent records that a signal was sent now.
func (s *Spacer) Sent() { s.last, s.sent = s.now(), true }

func (s *Spacer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
