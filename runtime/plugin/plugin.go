// Package plugin is the contract between the Nuvom worker and its plugins.
//
// A plugin is a Go package that exposes one registration value, by convention
// named Plugin, and (when it has settings) a struct type named Settings whose
// fields carry toml tags:
//
//	// Settings are read from the plugin's [plugin.settings] table.
//	type Settings struct {
//		Webhook      string `toml:"webhook"`
//		OnlyFailures bool   `toml:"only_failures"`
//	}
//
//	var Plugin = plugin.Registration{
//		Name:        "slack",
//		APIVersion:  plugin.APIVersion,
//		Provides:    plugin.ProvidesObserver,
//		NewSettings: func() any { return &Settings{OnlyFailures: true} },
//		New:         func(s any) (plugin.Plugin, error) { return newNotifier(s.(*Settings)) },
//	}
//
// Plugins are compiled into the worker (Go has no portable dynamic loading):
// nuvomgen reads .nuvom_plugins.toml and generates a worker main that imports
// exactly the plugins listed there. The worker checks every registration
// before anything runs (API version, duplicate names, what it provides,
// settings decoded strictly), then starts the plugins in file order with a
// Host and stops them in reverse order on shutdown.
package plugin

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/nuvom/nuvom"
)

// APIVersion is the version of this contract. A registration built for another
// version is refused with a message naming both versions. It changes only when
// the contract changes incompatibly.
const APIVersion = 1

// Provides is a set of capabilities a plugin declares.
type Provides uint

// The capabilities a plugin can provide.
const (
	// ProvidesMiddleware: the plugin wraps attempts (Host.Use).
	ProvidesMiddleware Provides = 1 << iota
	// ProvidesObserver: the plugin receives stored outcomes (Host.Subscribe).
	ProvidesObserver
	// ProvidesHTTP: the plugin serves HTTP endpoints (Host.Handle).
	ProvidesHTTP
	// ProvidesBackend: the plugin provides a storage backend (Registration.Backend),
	// selected by NUVOM_BACKEND=<the plugin's name>.
	ProvidesBackend
	// ProvidesScheduleStore: the plugin provides a schedule store (not yet usable by the worker).
	ProvidesScheduleStore
)

// Supported is what the current worker can use from a plugin.
const Supported = ProvidesMiddleware | ProvidesObserver | ProvidesHTTP | ProvidesBackend

var providesNames = []struct {
	p    Provides
	name string
}{
	{ProvidesMiddleware, "middleware"},
	{ProvidesObserver, "observer"},
	{ProvidesHTTP, "http"},
	{ProvidesBackend, "backend"},
	{ProvidesScheduleStore, "schedule-store"},
}

// String lists the capabilities, comma-separated ("middleware,observer").
func (p Provides) String() string {
	var out []string
	for _, n := range providesNames {
		if p&n.p != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ",")
}

// Registration is what a plugin package exposes: who it is and how to make it.
type Registration struct {
	// Name is the plugin's name, unique in a worker ("prometheus").
	Name string
	// APIVersion is the contract version the plugin was built for: APIVersion.
	APIVersion int
	// Provides says what the plugin uses the host for; the host refuses the rest.
	Provides Provides
	// NewSettings returns a pointer to a settings struct holding the defaults,
	// into which the plugin's [plugin.settings] table is decoded strictly. Nil
	// means the plugin takes no settings.
	NewSettings func() any
	// New makes the plugin from its decoded settings (the value NewSettings
	// returned, filled in; nil when NewSettings is nil). It should only check
	// the settings; work starts in Start.
	New func(settings any) (Plugin, error)
	// Backend opens the storage backend of a plugin that provides
	// ProvidesBackend (nil otherwise); see OpenBackend.
	Backend OpenBackend
}

// Plugin is a started-and-stopped extension of the worker.
type Plugin interface {
	// Start is called once, before the worker claims jobs. It registers what
	// the plugin provides with host and starts the plugin's own goroutines. An
	// error stops the worker with a message naming the plugin.
	Start(ctx context.Context, host Host) error
	// Stop is called on shutdown, in reverse start order, with a context that
	// ends with the worker's grace period. It must release every goroutine and
	// resource; it is safe to call without Start and more than once.
	Stop(ctx context.Context) error
}

// Event is one outcome after the store committed it.
type Event struct {
	// Job is the job the attempt belonged to.
	Job nuvom.JobInfo
	// Outcome is the stored outcome: the job's next state and the attempt record.
	Outcome nuvom.Outcome
}

// Host is what the worker gives a plugin in Start. Its registration methods
// may only be called during Start.
type Host interface {
	// Logger returns a logger that tags every line with the plugin's name.
	Logger() *slog.Logger
	// Inspector gives read access to the queue (List, Stats, Get).
	Inspector() *nuvom.Inspector
	// WorkerID is the worker's id, as recorded in leases and attempts.
	WorkerID() string
	// Abandoned returns how many abandoned tasks of this worker are still
	// running (0 before the worker started).
	Abandoned() int
	// Use adds middleware around every attempt (needs ProvidesMiddleware).
	// Plugins' middleware runs in start order, outside the worker's own.
	Use(mw nuvom.Middleware) error
	// Subscribe delivers stored outcomes to fn on a goroutine of its own,
	// through a buffer of size events (0 means DefaultBuffer). When the buffer
	// is full, events are dropped, counted and logged: the worker never waits
	// for a plugin. A panic in fn is logged and the next event delivered.
	// Needs ProvidesObserver.
	Subscribe(size int, fn func(Event)) error
	// SubscribeTicks delivers the ticks of the worker's scheduler (each due
	// tick it enqueued, found enqueued already, or failed to enqueue) to fn,
	// like Subscribe: on a goroutine of its own, through a buffer of size
	// ticks, dropping when full. A worker run without its scheduler sends
	// none. Needs ProvidesObserver.
	SubscribeTicks(size int, fn func(Tick)) error
	// Handle serves h at pattern (an http.ServeMux pattern) on the HTTP
	// listener at addr ("127.0.0.1:9464"), which plugins naming the same
	// address share. Needs ProvidesHTTP.
	Handle(addr, pattern string, h http.Handler) error
}

// DefaultBuffer is the event buffer of a subscription that names no size.
const DefaultBuffer = 4096
