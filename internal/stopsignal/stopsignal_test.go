package stopsignal

import (
	"os"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func filter(c *fakeClock) *Filter        { return &Filter{Window: Window, Now: c.now} }
func spacer(c *fakeClock) *Spacer        { return &Spacer{Now: c.now} }

func accept(t *testing.T, f *Filter, want bool) {
	t.Helper()
	if got := f.Accept(); got != want {
		t.Fatalf("Accept() = %v, want %v", got, want)
	}
}

func TestFilterCountsSignalsWithinTheWindowAsOne(t *testing.T) {
	c := newClock()
	f := filter(c)
	accept(t, f, true)  // the terminal's SIGINT
	accept(t, f, false) // the go command's forwarded copy, at once
	c.add(Window - time.Millisecond)
	accept(t, f, false) // still the same keypress
	c.add(time.Millisecond)
	accept(t, f, true) // a second keypress: stop at once
	accept(t, f, false)
	c.add(10 * Window)
	accept(t, f, true)
}

func TestZeroFilterAcceptsEverySignal(t *testing.T) {
	var f Filter
	for range 3 {
		accept(t, &f, true)
	}
}

func TestCoalesce(t *testing.T) {
	// The clock reports each reading, so the test knows when the filter has
	// seen a signal before it moves the time on.
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reads := make(chan struct{}, 8)
	f := &Filter{Window: Window, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		reads <- struct{}{}
		return now
	}}
	in := make(chan os.Signal, 4)
	done := make(chan struct{})
	defer close(done)
	var dropped []os.Signal
	out := Coalesce(in, f, done, func(s os.Signal) { dropped = append(dropped, s) })
	in <- os.Interrupt
	in <- os.Interrupt // the same instant: dropped
	<-reads
	<-reads
	if s := <-out; s != os.Interrupt {
		t.Fatalf("got %v", s)
	}
	mu.Lock()
	now = now.Add(Window)
	mu.Unlock()
	// The marker below is read after the duplicate, so dropped is complete.
	in <- os.Kill
	if s := <-out; s != os.Kill {
		t.Fatalf("got %v after the window, want the next signal (the duplicate was passed on)", s)
	}
	if len(dropped) != 1 || dropped[0] != os.Interrupt {
		t.Fatalf("reported as repeated: %v", dropped)
	}
}

func TestSpacer(t *testing.T) {
	c := newClock()
	s := spacer(c)
	if d := s.Delay(); d != 0 {
		t.Fatalf("first signal delayed by %v", d)
	}
	s.Sent()
	if d := s.Delay(); d <= Window {
		t.Fatalf("second signal at once is delayed by %v, want more than the window %v", d, Window)
	}
	c.add(Window / 2)
	if d := s.Delay(); d <= Window/2 {
		t.Fatalf("delay %v after half a window", d)
	}
	c.add(Window)
	if d := s.Delay(); d != 0 {
		t.Fatalf("delay %v after 1.5 windows", d)
	}
}
