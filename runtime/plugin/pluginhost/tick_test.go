package pluginhost

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/plugin"
)

// Ticks reach the plugins that subscribed, in order, on their own
// goroutine; a plugin without ProvidesObserver cannot subscribe; a full
// buffer drops and counts instead of blocking the scheduler; Stop delivers
// what is buffered.
func TestTicks(t *testing.T) {
	got := make(chan plugin.Tick, 10)
	release := make(chan struct{})
	obs := &fake{start: func(_ context.Context, h plugin.Host) error {
		return h.SubscribeTicks(1, func(tk plugin.Tick) {
			<-release
			got <- tk
		})
	}}
	var refused error
	mw := &fake{start: func(_ context.Context, h plugin.Host) error {
		refused = h.SubscribeTicks(0, func(plugin.Tick) {})
		return nil
	}}
	s, err := New([]plugin.Registration{reg("obs", plugin.ProvidesObserver, obs), reg("mw", plugin.ProvidesMiddleware, mw)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.PublishTick(plugin.Tick{Schedule: "before start"}) // no subscriber yet: nothing, no panic
	if err := s.Start(context.Background(), Options{}); err != nil {
		t.Fatal(err)
	}
	if refused == nil || !strings.Contains(refused.Error(), "needs Provides observer") {
		t.Errorf("SubscribeTicks without ProvidesObserver: %v", refused)
	}
	// The subscriber is blocked on its first tick: one more fits the buffer
	// of 1, the rest are dropped, and publishing never waits.
	done := make(chan struct{})
	go func() {
		for i := range 10 {
			s.PublishTick(plugin.Tick{Schedule: "s", JobID: string(rune('a' + i))})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second): // hang guard
		t.Fatal("PublishTick blocked on a slow plugin")
	}
	if d := s.Dropped(); d < 8 {
		t.Errorf("Dropped = %d, want at least 8 of 10 ticks to a blocked subscriber with a buffer of 1", d)
	}
	close(release)
	stopCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	close(got)
	var ids []string
	for tk := range got {
		ids = append(ids, tk.JobID)
	}
	if len(ids) < 1 || len(ids) > 2 || ids[0] != "a" {
		t.Errorf("delivered %v, want the first tick (and the one buffered) in order", ids)
	}
	s.PublishTick(plugin.Tick{Schedule: "after stop"}) // closed: nothing, no panic
}
