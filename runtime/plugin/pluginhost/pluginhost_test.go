package pluginhost

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugin/pluginconf"
)

type fake struct {
	start func(ctx context.Context, h plugin.Host) error
	stops *[]string
	name  string
}

func (f *fake) Start(ctx context.Context, h plugin.Host) error {
	if f.start != nil {
		return f.start(ctx, h)
	}
	return nil
}

func (f *fake) Stop(context.Context) error {
	if f.stops != nil {
		*f.stops = append(*f.stops, f.name)
	}
	return nil
}

func reg(name string, p plugin.Provides, f *fake) plugin.Registration {
	f.name = name
	return plugin.Registration{Name: name, APIVersion: plugin.APIVersion, Provides: p,
		New: func(any) (plugin.Plugin, error) { return f, nil }}
}

func TestCheckRegistration(t *testing.T) {
	r := reg("old", 0, &fake{})
	r.APIVersion = 0
	err := CheckRegistration(r)
	if err == nil || err.Error() != "plugin old was built for plugin API version 0, but this worker speaks version 1: upgrade the plugin or nuvom so that they match" {
		t.Errorf("version: %v", err)
	}
	err = CheckRegistration(reg("sched", plugin.ProvidesScheduleStore|plugin.ProvidesObserver, &fake{}))
	if err == nil || !strings.Contains(err.Error(), "plugin sched provides schedule-store, which this worker cannot use") {
		t.Errorf("schedule store: %v", err)
	}
	err = CheckRegistration(reg("store", plugin.ProvidesBackend, &fake{}))
	if err == nil || !strings.Contains(err.Error(), "plugin store provides a backend but its registration has no Backend function") {
		t.Errorf("backend without a Backend function: %v", err)
	}
	r = reg("store", 0, &fake{})
	r.Backend = func(context.Context, any, plugin.BackendEnv) (nuvom.Backend, error) { return nil, nil }
	if err := CheckRegistration(r); err == nil || !strings.Contains(err.Error(), "does not declare ProvidesBackend") {
		t.Errorf("Backend function without ProvidesBackend: %v", err)
	}
	r = reg("s", 0, &fake{})
	r.NewSettings = func() any { return map[string]string{} }
	if err := CheckRegistration(r); err == nil || !strings.Contains(err.Error(), "pointer to a struct") {
		t.Errorf("settings: %v", err)
	}
}

func TestLoadMatchesFile(t *testing.T) {
	f, err := pluginconf.Parse(pluginconf.FileName, []byte("[[plugin]]\nimport = \"a/b\"\n[plugin.settings]\nx = 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Load(f, []plugin.Registration{reg("b", 0, &fake{})}, nil)
	if err == nil || err.Error() != `.nuvom_plugins.toml:4:1: plugin b: unknown setting "x" (it takes no settings)` {
		t.Errorf("got %v", err)
	}
	if _, err := Load(f, nil, nil); err == nil || !strings.Contains(err.Error(), "run go generate") {
		t.Errorf("count mismatch: %v", err)
	}
}

// A failing Start names the plugin, and the plugins started before it are
// stopped in reverse order (the failing one too, to release what it began).
func TestStartFailureStopsStarted(t *testing.T) {
	var stops []string
	a, b := &fake{stops: &stops}, &fake{stops: &stops}
	c := &fake{stops: &stops, start: func(context.Context, plugin.Host) error { panic("kaboom") }}
	s, err := New([]plugin.Registration{reg("a", 0, a), reg("b", 0, b), reg("c", 0, c)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(context.Background(), Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "plugin c failed to start: panic: kaboom") {
		t.Errorf("err = %v", err)
	}
	if got := strings.Join(stops, ","); got != "c,b,a" {
		t.Errorf("stops = %s", got)
	}
}

func TestHostRefusesUndeclared(t *testing.T) {
	var hostSeen plugin.Host
	f := &fake{start: func(_ context.Context, h plugin.Host) error {
		hostSeen = h
		return h.Use(func(n nuvom.Handler) nuvom.Handler { return n })
	}}
	s, _ := New([]plugin.Registration{reg("m", plugin.ProvidesObserver, f)}, nil)
	err := s.Start(context.Background(), Options{})
	if err == nil || !strings.Contains(err.Error(), "Use needs Provides middleware") {
		t.Errorf("err = %v", err)
	}
	if err := hostSeen.Subscribe(0, func(plugin.Event) {}); err == nil || !strings.Contains(err.Error(), "outside Start") {
		t.Errorf("after start: %v", err)
	}
}

// A blocked observer never blocks Publish: overflow is counted. A panicking
// observer gets the next event.
func TestObserversNeverBlock(t *testing.T) {
	release := make(chan struct{})
	var got atomic.Int64
	blocked := &fake{start: func(_ context.Context, h plugin.Host) error {
		return h.Subscribe(4, func(plugin.Event) { <-release })
	}}
	panicky := &fake{start: func(_ context.Context, h plugin.Host) error {
		return h.Subscribe(1000, func(ev plugin.Event) {
			got.Add(1)
			if ev.Job.ID == "panic" {
				panic("observer bug")
			}
		})
	}}
	s, _ := New([]plugin.Registration{reg("blocked", plugin.ProvidesObserver, blocked), reg("panicky", plugin.ProvidesObserver, panicky)}, nil)
	if err := s.Start(context.Background(), Options{}); err != nil {
		t.Fatal(err)
	}
	s.Publish(nuvom.JobInfo{ID: "panic"}, nuvom.Outcome{})
	for i := 0; i < 100; i++ {
		s.Publish(nuvom.JobInfo{ID: "x"}, nuvom.Outcome{})
	}
	// The blocked subscription holds one event in its function and 4 in its buffer.
	if d := s.Dropped(); d < 101-5 {
		t.Errorf("dropped = %d, want at least %d", d, 101-5)
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got.Load() != 101 {
		t.Errorf("panicky observer saw %d events, want 101", got.Load())
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

// A Stop that blocks is bounded by the context.
func TestStopBounded(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	s, _ := New([]plugin.Registration{{Name: "hang", APIVersion: plugin.APIVersion,
		New: func(any) (plugin.Plugin, error) { return hanging(hang), nil }}}, nil)
	if err := s.Start(context.Background(), Options{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Stop(ctx)
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "plugin hang did not stop in time") {
		t.Errorf("err = %v", err)
	}
}

type hanging chan struct{}

func (h hanging) Start(context.Context, plugin.Host) error { return nil }
func (h hanging) Stop(context.Context) error               { <-h; return nil }
