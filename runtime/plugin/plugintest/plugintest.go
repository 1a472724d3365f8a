// Package plugintest is the conformance kit for Nuvom plugins. A plugin
// author runs it in one line:
//
//	func TestConformance(t *testing.T) {
//		plugintest.Run(t, myplugin.Plugin, plugintest.Sample(`addr = "127.0.0.1:0"`))
//	}
//
// It checks the registration, starts and stops the plugin through the same
// host as the worker with sample settings, stops it without a start and
// twice, feeds settings errors, floods it with stored outcomes and scheduler
// ticks (the worker must never wait), runs its middleware around failing and
// panicking attempts, and checks that no goroutine is left behind after Stop.
// A plugin that provides a storage backend also has it run the backend
// conformance suite (runtime/backend/backendtest).
package plugintest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/memory"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugin/pluginconf"
	"github.com/nuvom/nuvom/runtime/plugin/pluginhost"
)

// Option configures Run.
type Option func(*config)

type config struct {
	sample string
	events int
	getenv func(string) (string, bool)
}

// Sample sets the body of the [plugin.settings] table the start and stop
// tests use (TOML). The plugin must start with it on a machine with nothing
// else running: listen on "127.0.0.1:0", not on a fixed port.
func Sample(settingsTOML string) Option { return func(c *config) { c.sample = settingsTOML } }

// Events sets how many events the flood test publishes; default 100000.
func Events(n int) Option { return func(c *config) { c.events = n } }

// Env sets how ${NAME} references in the sample are expanded; default os.LookupEnv.
func Env(getenv func(string) (string, bool)) Option { return func(c *config) { c.getenv = getenv } }

// Hang guards: waits that should end at once fail the test only after these.
const (
	stopGuard      = 60 * time.Second
	goroutineGuard = 60 * time.Second
)

// Run runs the conformance suite against reg as subtests of t.
func Run(t *testing.T, reg plugin.Registration, opts ...Option) {
	t.Helper()
	c := &config{events: 100000, getenv: os.LookupEnv}
	for _, o := range opts {
		o(c)
	}
	t.Run("Registration", func(t *testing.T) { testRegistration(t, reg) })
	t.Run("StartStop", func(t *testing.T) { testStartStop(t, reg, c) })
	t.Run("StopWithoutStart", func(t *testing.T) { testStopWithoutStart(t, reg, c) })
	t.Run("DoubleStop", func(t *testing.T) { testDoubleStop(t, reg, c) })
	t.Run("SettingsErrors", func(t *testing.T) { testSettingsErrors(t, reg) })
	t.Run("Flood", func(t *testing.T) { testFlood(t, reg, c) })
	t.Run("PanicsContained", func(t *testing.T) { testPanics(t, reg, c) })
	if reg.Provides&plugin.ProvidesBackend != 0 {
		t.Run("Backend", func(t *testing.T) { testBackend(t, reg, c) })
	}
}

func testRegistration(t *testing.T, reg plugin.Registration) {
	if err := pluginhost.CheckRegistration(reg); err != nil {
		t.Fatal(err)
	}
	if reg.NewSettings == nil {
		return
	}
	a, b := reg.NewSettings(), reg.NewSettings()
	if reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() {
		t.Error("NewSettings returns the same pointer twice; it must return a fresh value each call")
	}
	if name := reflect.TypeOf(a).Elem().Name(); name != "Settings" {
		t.Errorf("settings type is %s; nuvomgen reads the settings schema of a plugin package from its type named Settings", name)
	}
}

// file renders a one-plugin .nuvom_plugins.toml with the given settings body.
func file(reg plugin.Registration, settings string) string {
	s := fmt.Sprintf("[[plugin]]\nimport = \"example.com/plugintest/%s\"\nname = %q\n", reg.Name, reg.Name)
	if settings != "" {
		s += "[plugin.settings]\n" + settings + "\n"
	}
	return s
}

func load(t *testing.T, reg plugin.Registration, c *config) *pluginhost.Set {
	t.Helper()
	f, err := pluginconf.Parse(pluginconf.FileName, []byte(file(reg, c.sample)))
	if err != nil {
		t.Fatalf("sample settings: %v", err)
	}
	s, err := pluginhost.Load(f, []plugin.Registration{reg}, c.getenv)
	if err != nil {
		t.Fatalf("load with sample settings: %v", err)
	}
	return s
}

func start(t *testing.T, s *pluginhost.Set) {
	t.Helper()
	b := memory.New()
	t.Cleanup(func() { b.Close() })
	if err := s.Start(context.Background(), pluginhost.Options{Logger: testLogger(t), Inspector: nuvom.NewInspector(b), WorkerID: "plugintest"}); err != nil {
		t.Fatalf("start with sample settings: %v", err)
	}
}

func stop(t *testing.T, s *pluginhost.Set) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stopGuard)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// noLeak fails t when, after the plugin stopped, more goroutines run than
// before it was made (polled, with a long hang guard).
func noLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(goroutineGuard)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left behind after Stop (before: %d):\n%s", n-before, before, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testStartStop(t *testing.T, reg plugin.Registration, c *config) {
	before := runtime.NumGoroutine()
	s := load(t, reg, c)
	start(t, s)
	stop(t, s)
	noLeak(t, before)
}

func testStopWithoutStart(t *testing.T, reg plugin.Registration, c *config) {
	before := runtime.NumGoroutine()
	s := load(t, reg, c)
	for _, p := range s.Plugins() {
		ctx, cancel := context.WithTimeout(context.Background(), stopGuard)
		err := callStop(ctx, p)
		cancel()
		if err != nil {
			t.Fatalf("Stop without Start: %v", err)
		}
	}
	noLeak(t, before)
}

func testDoubleStop(t *testing.T, reg plugin.Registration, c *config) {
	before := runtime.NumGoroutine()
	s := load(t, reg, c)
	start(t, s)
	stop(t, s)
	for _, p := range s.Plugins() {
		ctx, cancel := context.WithTimeout(context.Background(), stopGuard)
		err := callStop(ctx, p)
		cancel()
		if err != nil {
			t.Fatalf("second Stop: %v", err)
		}
	}
	noLeak(t, before)
}

// callStop calls p.Stop, failing on a panic and on a Stop that outlives its context.
func callStop(ctx context.Context, p plugin.Plugin) (err error) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Errorf("panicked: %v", v)
			}
		}()
		done <- p.Stop(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return errors.New("Stop did not return")
	}
}

func testSettingsErrors(t *testing.T, reg plugin.Registration) {
	try := func(body string) error {
		f, err := pluginconf.Parse(pluginconf.FileName, []byte(file(reg, body)))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		_, err = pluginhost.Load(f, []plugin.Registration{reg}, func(string) (string, bool) { return "", false })
		return err
	}
	// Line 5 is the first line of the settings table.
	err := try("plugintest_no_such_setting = 1")
	if err == nil || !strings.Contains(err.Error(), pluginconf.FileName+":5:1: ") || !strings.Contains(err.Error(), "plugintest_no_such_setting") {
		t.Errorf("an unknown setting gave %v, want a positioned error naming it", err)
	}
	if reg.NewSettings == nil {
		return
	}
	schema, _ := pluginconf.SchemaOf(reg.NewSettings())
	for _, f := range schema {
		var wrong string
		switch f.Kind {
		case pluginconf.KindString, pluginconf.KindDuration, pluginconf.KindStrings, pluginconf.KindMap:
			wrong = "true"
		case pluginconf.KindBool, pluginconf.KindInt, pluginconf.KindFloat:
			wrong = `"not a number or boolean"`
		default:
			continue
		}
		err := try(fmt.Sprintf("%s = %s", f.Key, wrong))
		if err == nil || !strings.Contains(err.Error(), pluginconf.FileName+":5:1: ") {
			t.Errorf("setting %s = %s (wrong type) gave %v, want a positioned error", f.Key, wrong, err)
		}
	}
}

// events returns a varied mix of stored outcomes, zero values included.
func events(i int) (nuvom.JobInfo, nuvom.Outcome) {
	outcomes := []string{nuvom.OutcomeSucceeded, nuvom.OutcomeFailed, nuvom.OutcomeTimedOut, nuvom.OutcomePanicked, nuvom.OutcomeLost, ""}
	states := []nuvom.State{nuvom.StateSucceeded, nuvom.StateFailed, nuvom.StateRetrying, nuvom.StateQuarantined, nuvom.StateCancelled, ""}
	now := time.Now()
	if i%7 == 6 {
		return nuvom.JobInfo{}, nuvom.Outcome{}
	}
	job := nuvom.JobInfo{ID: fmt.Sprintf("job-%d", i), Task: fmt.Sprintf("task%d", i%3), Queue: fmt.Sprintf("q%d", i%2),
		Attempt: 1 + i%3, MaxAttempts: 3, CreatedAt: now.Add(-time.Second), StartedAt: now.Add(-time.Millisecond), Worker: "plugintest"}
	o := nuvom.Outcome{State: states[i%len(states)], FinishedAt: now,
		Attempt: nuvom.Attempt{Number: job.Attempt, StartedAt: job.StartedAt, FinishedAt: now, Worker: "plugintest", Outcome: outcomes[i%len(outcomes)]}}
	return job, o
}

// tick returns a varied scheduler tick, zero values included.
func tick(i int) plugin.Tick {
	outcomes := []string{"enqueued", "duplicate", "failed", ""}
	if i%9 == 8 {
		return plugin.Tick{}
	}
	t := plugin.Tick{Schedule: fmt.Sprintf("sched-%d", i%4), Task: fmt.Sprintf("task%d", i%3), FireTime: time.Now(),
		JobID: fmt.Sprintf("job-%d", i), Outcome: outcomes[i%len(outcomes)]}
	if t.Outcome == "failed" {
		t.JobID, t.Error = "", "enqueue refused"
	}
	return t
}

func testFlood(t *testing.T, reg plugin.Registration, c *config) {
	before := runtime.NumGoroutine()
	s := load(t, reg, c)
	start(t, s)
	const publishers = 4
	done := make(chan struct{})
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < c.events; i += publishers {
				job, o := events(i)
				s.Publish(job, o)
				if i%10 == 0 {
					s.PublishTick(tick(i))
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopGuard):
		t.Fatal("publishing events blocked: the worker would wait for the plugin")
	}
	t.Logf("%d events published, %d dropped by full buffers", c.events, s.Dropped())
	stop(t, s)
	noLeak(t, before)
}

func testPanics(t *testing.T, reg plugin.Registration, c *config) {
	before := runtime.NumGoroutine()
	s := load(t, reg, c)
	start(t, s)
	handlers := []nuvom.Handler{
		func(context.Context, nuvom.JobInfo) error { return nil },
		func(context.Context, nuvom.JobInfo) error { return errors.New("task failed") },
		func(context.Context, nuvom.JobInfo) error { return &nuvom.PanicError{Value: "boom"} },
	}
	for i, mw := range s.Middleware() {
		for j, h := range handlers {
			job, _ := events(j)
			func() {
				defer func() {
					if v := recover(); v != nil {
						t.Errorf("middleware %d panicked around handler %d: %v", i, j, v)
					}
				}()
				ctx := nuvom.WithJobInfo(context.Background(), job)
				if got, want := mw(h)(ctx, job), h(ctx, job); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("middleware %d changed the attempt's error from %v to %v", i, want, got)
				}
			}()
		}
	}
	for i := 0; i < 100; i++ {
		s.Publish(events(i))
		s.PublishTick(tick(i))
	}
	stop(t, s)
	noLeak(t, before)
}

// testLogger writes the plugin's log lines to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
