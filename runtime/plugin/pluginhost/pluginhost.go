// Package pluginhost runs a worker's plugins: it checks their registrations
// against .nuvom_plugins.toml before anything runs, starts them with a Host,
// feeds their observers through bounded buffers, serves their HTTP handlers
// and stops them in reverse order. The worker binary (runtime/workercmd) and
// the conformance kit (runtime/plugin/plugintest) both use it.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugin/pluginconf"
)

// CheckRegistration reports what makes reg unusable by this worker: no name,
// no constructor, another API version, capabilities the worker cannot use,
// or a settings value that is not a pointer to a struct.
func CheckRegistration(reg plugin.Registration) error {
	name := reg.Name
	if name == "" {
		return errors.New("plugin registration has no name")
	}
	if reg.APIVersion != plugin.APIVersion {
		return fmt.Errorf("plugin %s was built for plugin API version %d, but this worker speaks version %d: upgrade the plugin or nuvom so that they match",
			name, reg.APIVersion, plugin.APIVersion)
	}
	if reg.New == nil {
		return fmt.Errorf("plugin %s: registration has no New function", name)
	}
	switch provides := reg.Provides&plugin.ProvidesBackend != 0; {
	case provides && reg.Backend == nil:
		return fmt.Errorf("plugin %s provides a backend but its registration has no Backend function", name)
	case !provides && reg.Backend != nil:
		return fmt.Errorf("plugin %s has a Backend function but does not declare ProvidesBackend", name)
	}
	if extra := reg.Provides &^ plugin.Supported; extra != 0 {
		return fmt.Errorf("plugin %s provides %s, which this worker cannot use (it uses %s)", name, extra, plugin.Supported)
	}
	if reg.NewSettings != nil {
		if _, err := pluginconf.SchemaOf(reg.NewSettings()); err != nil {
			return fmt.Errorf("plugin %s: %w", name, err)
		}
	}
	return nil
}

// member is one loaded plugin.
type member struct {
	reg      plugin.Registration
	settings any
	p        plugin.Plugin
	started  bool
}

// Set is the plugins of one worker.
type Set struct {
	members []*member
	log     *slog.Logger
	in      *nuvom.Inspector
	id      string

	mw        []nuvom.Middleware
	subs      []*sub[plugin.Event]
	abandoned atomic.Pointer[func() int]

	mu        sync.Mutex
	listeners map[string]*listener // requested addr -> listener
	tickSubs  []*sub[plugin.Tick]  // guarded by mu: the scheduler may tick while plugins start
	stopped   bool
}

// Load checks every registration and its entry of the plugins file (same
// order, same names), decodes each plugin's settings strictly (expanding
// ${NAME} with getenv) and makes the plugins. It runs before anything else:
// every problem is returned, joined, positioned in the file where it has a
// position.
func Load(file *pluginconf.File, regs []plugin.Registration, getenv func(string) (string, bool)) (*Set, error) {
	s := &Set{listeners: map[string]*listener{}}
	var errs []error
	if len(file.Entries) != len(regs) {
		return nil, fmt.Errorf("%s lists %d plugins but this worker was built with %d: run go generate", file.Name, len(file.Entries), len(regs))
	}
	seen := map[string]bool{}
	for i, reg := range regs {
		e := &file.Entries[i]
		if err := CheckRegistration(reg); err != nil {
			errs = append(errs, &pluginconf.Error{Pos: e.Pos, Msg: err.Error()})
			continue
		}
		if seen[reg.Name] {
			errs = append(errs, &pluginconf.Error{Pos: e.Pos, Msg: fmt.Sprintf("two plugins are called %s", reg.Name)})
			continue
		}
		seen[reg.Name] = true
		if e.Builtin && e.Name != reg.Name {
			errs = append(errs, &pluginconf.Error{Pos: e.Pos, Msg: fmt.Sprintf("plugin %s registers itself as %s: run go generate", e.Name, reg.Name)})
			continue
		}
		m, err := newMember(e, reg, getenv)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.members = append(s.members, m)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// New is Load for plugins given directly with their settings values (nil for
// defaults), without a file: for tests and programs that embed a worker.
func New(regs []plugin.Registration, settings []any) (*Set, error) {
	s := &Set{listeners: map[string]*listener{}}
	for i, reg := range regs {
		if err := CheckRegistration(reg); err != nil {
			return nil, err
		}
		var st any
		if i < len(settings) && settings[i] != nil {
			st = settings[i]
		} else if reg.NewSettings != nil {
			st = reg.NewSettings()
		}
		p, err := construct(reg, st)
		if err != nil {
			return nil, err
		}
		s.members = append(s.members, &member{reg: reg, settings: st, p: p})
	}
	return s, nil
}

func newMember(e *pluginconf.Entry, reg plugin.Registration, getenv func(string) (string, bool)) (*member, error) {
	var st any
	if reg.NewSettings != nil {
		st = reg.NewSettings()
	}
	if err := e.Decode(reg.Name, st, getenv); err != nil {
		return nil, err
	}
	p, err := construct(reg, st)
	if err != nil {
		return nil, &pluginconf.Error{Pos: e.BlamePos(err.Error()), Msg: err.Error()}
	}
	return &member{reg: reg, settings: st, p: p}, nil
}

// construct calls reg.New, containing a panic.
func construct(reg plugin.Registration, settings any) (p plugin.Plugin, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("plugin %s: New panicked: %v", reg.Name, v)
		}
	}()
	p, err = reg.New(settings)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", reg.Name, err)
	}
	if p == nil {
		return nil, fmt.Errorf("plugin %s: New returned no plugin", reg.Name)
	}
	return p, nil
}

// Names returns the plugins' names in start order.
func (s *Set) Names() []string {
	out := make([]string, len(s.members))
	for i, m := range s.members {
		out[i] = m.reg.Name
	}
	return out
}

// Options are what Start gives the plugins.
type Options struct {
	Logger    *slog.Logger
	Inspector *nuvom.Inspector
	WorkerID  string
}

// Start starts the plugins in order. When one fails, those already started
// are stopped (in reverse order, within ctx) and the error names the plugin.
func (s *Set) Start(ctx context.Context, o Options) error {
	s.log = o.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	s.in, s.id = o.Inspector, o.WorkerID
	for _, m := range s.members {
		h := &host{set: s, m: m, log: s.log.With("plugin", m.reg.Name)}
		h.open.Store(true)
		err := safe(func() error { return m.p.Start(ctx, h) })
		h.open.Store(false)
		m.started = true // Stop is called even after a failed Start, to release what it began
		if err != nil {
			_ = s.Stop(ctx)
			return fmt.Errorf("plugin %s failed to start: %w", m.reg.Name, err)
		}
		s.log.Debug("plugin started", "plugin", m.reg.Name)
	}
	return nil
}

// Middleware returns the middleware the plugins registered, in start order.
func (s *Set) Middleware() []nuvom.Middleware { return append([]nuvom.Middleware(nil), s.mw...) }

// SetAbandoned sets what Host.Abandoned reports (the worker's Abandoned).
func (s *Set) SetAbandoned(f func() int) { s.abandoned.Store(&f) }

// Publish hands a stored outcome to every subscription without waiting: a
// full buffer drops the event for that subscription, counting it. It suits
// WorkerOptions.OnStored.
func (s *Set) Publish(job nuvom.JobInfo, o nuvom.Outcome) {
	ev := plugin.Event{Job: job, Outcome: o}
	for _, sb := range s.subs {
		sb.publish(ev)
	}
}

// PublishTick hands a scheduler tick to every tick subscription without
// waiting, like Publish. It suits schedule.Dispatcher.OnTick (converted).
func (s *Set) PublishTick(t plugin.Tick) {
	s.mu.Lock()
	subs := s.tickSubs
	s.mu.Unlock()
	for _, sb := range subs {
		sb.publish(t)
	}
}

// Dropped returns how many events (outcomes and ticks) were dropped because
// a buffer was full, over every subscription.
func (s *Set) Dropped() uint64 {
	var n uint64
	for _, sb := range s.subs {
		n += sb.dropped.Load()
	}
	s.mu.Lock()
	for _, sb := range s.tickSubs {
		n += sb.dropped.Load()
	}
	s.mu.Unlock()
	return n
}

// Addr returns the address the listener requested as addr really listens on
// ("127.0.0.1:0" gives the port the system chose), or "".
func (s *Set) Addr(addr string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.listeners[addr]; ok {
		return l.ln.Addr().String()
	}
	return ""
}

// Stop delivers the events already buffered, stops the started plugins in
// reverse order and closes the HTTP listeners, all within ctx: a plugin that
// does not stop in time is logged and left behind. It is safe to call twice.
func (s *Set) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	var errs []error
	for _, sb := range s.subs {
		sb.close(ctx)
		if n := sb.dropped.Load(); n > 0 {
			s.log.Warn("plugin events dropped (its buffer was full)", "plugin", sb.name, "dropped", n)
		}
	}
	s.mu.Lock()
	ticks := s.tickSubs
	s.mu.Unlock()
	for _, sb := range ticks {
		sb.close(ctx)
		if n := sb.dropped.Load(); n > 0 {
			s.log.Warn("plugin scheduler ticks dropped (its buffer was full)", "plugin", sb.name, "dropped", n)
		}
	}
	for i := len(s.members) - 1; i >= 0; i-- {
		m := s.members[i]
		if !m.started {
			continue
		}
		done := make(chan error, 1)
		go func() { done <- safe(func() error { return m.p.Stop(ctx) }) }()
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, fmt.Errorf("plugin %s: stop: %w", m.reg.Name, err))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("plugin %s did not stop in time: %w", m.reg.Name, ctx.Err()))
		}
	}
	s.mu.Lock()
	ls := s.listeners
	s.listeners = map[string]*listener{}
	s.mu.Unlock()
	for _, l := range ls {
		if err := l.srv.Shutdown(ctx); err != nil {
			l.srv.Close()
		}
		<-l.done
	}
	return errors.Join(errs...)
}

// safe runs f, turning a panic into an error.
func safe(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}()
	return f()
}

// host is the Host of one plugin.
type host struct {
	set  *Set
	m    *member
	log  *slog.Logger
	open atomic.Bool
}

func (h *host) Logger() *slog.Logger        { return h.log }
func (h *host) Inspector() *nuvom.Inspector { return h.set.in }
func (h *host) WorkerID() string            { return h.set.id }

func (h *host) Abandoned() int {
	if f := h.set.abandoned.Load(); f != nil {
		return (*f)()
	}
	return 0
}

func (h *host) check(need plugin.Provides, what string) error {
	if !h.open.Load() {
		return fmt.Errorf("plugin %s: %s outside Start", h.m.reg.Name, what)
	}
	if h.m.reg.Provides&need == 0 {
		return fmt.Errorf("plugin %s: %s needs Provides %s in its registration", h.m.reg.Name, what, need)
	}
	return nil
}

func (h *host) Use(mw nuvom.Middleware) error {
	if err := h.check(plugin.ProvidesMiddleware, "Use"); err != nil {
		return err
	}
	if mw == nil {
		return fmt.Errorf("plugin %s: Use(nil)", h.m.reg.Name)
	}
	h.set.mw = append(h.set.mw, mw)
	return nil
}

func (h *host) Subscribe(size int, fn func(plugin.Event)) error {
	if err := h.check(plugin.ProvidesObserver, "Subscribe"); err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("plugin %s: Subscribe with a nil function", h.m.reg.Name)
	}
	sb := newSub(h.m.reg.Name, h.log, size, fn, func(ev plugin.Event) string { return ev.Job.ID })
	h.set.subs = append(h.set.subs, sb)
	return nil
}

func (h *host) SubscribeTicks(size int, fn func(plugin.Tick)) error {
	if err := h.check(plugin.ProvidesObserver, "SubscribeTicks"); err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("plugin %s: SubscribeTicks with a nil function", h.m.reg.Name)
	}
	sb := newSub(h.m.reg.Name, h.log, size, fn, func(t plugin.Tick) string { return t.Schedule })
	h.set.mu.Lock()
	h.set.tickSubs = append(h.set.tickSubs, sb)
	h.set.mu.Unlock()
	return nil
}

func (h *host) Handle(addr, pattern string, hd http.Handler) (err error) {
	if err := h.check(plugin.ProvidesHTTP, "Handle"); err != nil {
		return err
	}
	s := h.set
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.listeners[addr]
	if !ok {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("plugin %s: listen on %s: %w", h.m.reg.Name, addr, err)
		}
		l = &listener{ln: ln, mux: http.NewServeMux(), done: make(chan struct{})}
		l.srv = &http.Server{Handler: l.mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			defer close(l.done)
			_ = l.srv.Serve(ln)
		}()
		s.listeners[addr] = l
		s.log.Info("plugin HTTP listener", "addr", ln.Addr().String())
	}
	defer func() {
		if v := recover(); v != nil { // ServeMux panics on a conflicting pattern
			err = fmt.Errorf("plugin %s: handle %s on %s: %v", h.m.reg.Name, pattern, addr, v)
		}
	}()
	l.mux.Handle(pattern, hd)
	h.log.Info("serving", "url", "http://"+l.ln.Addr().String()+pattern)
	return nil
}

type listener struct {
	ln   net.Listener
	mux  *http.ServeMux
	srv  *http.Server
	done chan struct{}
}

// sub is one subscription: a bounded buffer and the goroutine that drains it.
type sub[T any] struct {
	name     string
	log      *slog.Logger
	fn       func(T)
	id       func(T) string // names an event in a log line
	ch       chan T
	done     chan struct{}
	mu       sync.RWMutex // publish holds it shared; close exclusively
	closed   bool
	dropped  atomic.Uint64
	lastWarn atomic.Int64 // unix nanos of the last overflow log line
}

// newSub starts a subscription of size events (0: plugin.DefaultBuffer).
func newSub[T any](name string, log *slog.Logger, size int, fn func(T), id func(T) string) *sub[T] {
	if size <= 0 {
		size = plugin.DefaultBuffer
	}
	sb := &sub[T]{name: name, log: log, fn: fn, id: id, ch: make(chan T, size), done: make(chan struct{})}
	go sb.loop()
	return sb
}

func (sb *sub[T]) publish(ev T) {
	sb.mu.RLock()
	defer sb.mu.RUnlock()
	if sb.closed {
		return
	}
	select {
	case sb.ch <- ev:
	default:
		n := sb.dropped.Add(1)
		now := time.Now().UnixNano()
		last := sb.lastWarn.Load()
		if now-last >= int64(time.Second) && sb.lastWarn.CompareAndSwap(last, now) {
			sb.log.Warn("plugin is slow: event buffer full, dropping outcomes", "dropped_total", n)
		}
	}
}

func (sb *sub[T]) loop() {
	defer close(sb.done)
	for ev := range sb.ch {
		sb.deliver(ev)
	}
}

func (sb *sub[T]) deliver(ev T) {
	defer func() {
		if v := recover(); v != nil {
			sb.log.Error("plugin panicked on an event; continuing", "panic", v, "event", sb.id(ev))
		}
	}()
	sb.fn(ev)
}

// close stops accepting events and waits, within ctx, for the buffered ones.
func (sb *sub[T]) close(ctx context.Context) {
	sb.mu.Lock()
	if sb.closed {
		sb.mu.Unlock()
		return
	}
	sb.closed = true
	close(sb.ch)
	sb.mu.Unlock()
	select {
	case <-sb.done:
	case <-ctx.Done():
		sb.log.Warn("plugin did not finish its buffered events before the grace period ended")
	}
}

// Plugins returns the plugins, in start order (the conformance kit stops them directly).
func (s *Set) Plugins() []plugin.Plugin {
	out := make([]plugin.Plugin, len(s.members))
	for i, m := range s.members {
		out[i] = m.p
	}
	return out
}
