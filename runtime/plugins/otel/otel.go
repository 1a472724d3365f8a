// Package otel is the built-in OpenTelemetry plugin: a span per attempt of a
// job, in the trace of the code that enqueued the job. Enable it in
// .nuvom_plugins.toml:
//
//	[[plugin]]
//	name = "otel"
//
// and carry the trace context from the enqueueing code to its jobs by adding
// one option to the Client of the service that enqueues (which runs no
// plugins):
//
//	client := nuvom.NewClient(backend, otel.ClientOption())
//
// The client option stores the enqueueing ctx's W3C trace context
// ("traceparent", "tracestate") and baggage in the job's metadata
// (nuvom.Job.Meta); the plugin's middleware reads them back, so that each
// attempt's span is a child of the span that was current when the job was
// enqueued: a request and the jobs it enqueued are one trace. A job enqueued
// outside any span starts a trace of its own.
//
// Each attempt span is named "run <task>", of kind consumer, with the
// attributes nuvom.task, nuvom.job.id, nuvom.job.attempt,
// nuvom.job.max_attempts, nuvom.queue, nuvom.worker, nuvom.outcome
// (succeeded, failed, panicked, timed_out or cancelled) and
// messaging.system = "nuvom"; a failed attempt records its error and has
// status Error. The task runs in the span's context: spans it starts, and
// jobs it enqueues through a client with ClientOption, belong to the same
// trace.
//
// Spans go to the global TracerProvider (go.opentelemetry.io/otel's
// SetTracerProvider), which the worker process must set, for example in an
// init function of the tasks package, which the generated worker main
// imports; until one is set, spans are dropped. When the worker stops, the
// plugin flushes the provider (ForceFlush) so that a batching exporter
// loses nothing. A program that builds its worker itself can pass a
// TracerProvider with PluginFor.
package otel

import (
	"context"
	"errors"
	"fmt"
	"sync"

	gotel "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/plugin"
)

// ScopeName is the default instrumentation scope of the spans.
const ScopeName = "github.com/nuvom/nuvom/runtime/plugins/otel"

// Settings are read from the plugin's [plugin.settings] table.
type Settings struct {
	// Tracer is the instrumentation scope name the spans are created with;
	// default ScopeName.
	Tracer string `toml:"tracer"`
	// Parent says how an attempt span relates to the span current when its
	// job was enqueued: "child" (default) continues that trace, "link" starts
	// a trace of its own linked to it (for jobs that outlive their request by
	// far, where one trace would span hours).
	Parent string `toml:"parent"`
	// Attributes are added to every attempt span, e.g.
	// attributes = { "deployment.environment" = "prod" }.
	Attributes map[string]string `toml:"attributes"`
}

// The values of Settings.Parent.
const (
	ParentChild = "child"
	ParentLink  = "link"
)

// Plugin registers the plugin with the global TracerProvider; nuvomgen's
// generated worker passes it to the worker.
var Plugin = PluginFor(nil)

// PluginFor returns the plugin's registration sending spans to tp (nil: the
// global TracerProvider, looked up when the plugin starts), for programs
// that build their worker themselves and for tests.
func PluginFor(tp trace.TracerProvider) plugin.Registration {
	return plugin.Registration{
		Name:        "otel",
		APIVersion:  plugin.APIVersion,
		Provides:    plugin.ProvidesMiddleware,
		NewSettings: func() any { return &Settings{Tracer: ScopeName, Parent: ParentChild} },
		New: func(s any) (plugin.Plugin, error) {
			return New(*s.(*Settings), tp)
		},
	}
}

// Tracing is the running plugin.
type Tracing struct {
	s      Settings
	tp     trace.TracerProvider
	tracer trace.Tracer
	attrs  []attribute.KeyValue

	mu      sync.Mutex
	started trace.TracerProvider // the provider in use since Start; nil before and after Stop
}

// New checks s and returns the plugin, sending spans to tp (nil: the global
// TracerProvider at Start).
func New(s Settings, tp trace.TracerProvider) (*Tracing, error) {
	if s.Tracer == "" {
		s.Tracer = ScopeName
	}
	switch s.Parent {
	case "":
		s.Parent = ParentChild
	case ParentChild, ParentLink:
	default:
		return nil, fmt.Errorf("parent %q is not %q or %q", s.Parent, ParentChild, ParentLink)
	}
	t := &Tracing{s: s, tp: tp}
	for k, v := range s.Attributes {
		if k == "" {
			return nil, errors.New("attributes: a key is empty")
		}
		t.attrs = append(t.attrs, attribute.String(k, v))
	}
	return t, nil
}

// Start registers the middleware that traces every attempt.
func (t *Tracing) Start(_ context.Context, h plugin.Host) error {
	tp := t.tp
	if tp == nil {
		tp = gotel.GetTracerProvider()
	}
	t.tracer = tp.Tracer(t.s.Tracer)
	t.mu.Lock()
	t.started = tp
	t.mu.Unlock()
	return h.Use(t.middleware)
}

// Stop flushes the spans the TracerProvider still buffers (when it can, as
// the SDK's can: ForceFlush), within ctx, so that the last attempts' spans
// are exported before the worker exits; it does not shut the provider down,
// which belongs to the program that set it. It is safe without Start and
// twice.
func (t *Tracing) Stop(ctx context.Context) error {
	t.mu.Lock()
	tp := t.started
	t.started = nil
	t.mu.Unlock()
	f, ok := tp.(interface{ ForceFlush(context.Context) error })
	if !ok {
		return nil
	}
	if err := f.ForceFlush(ctx); err != nil {
		return fmt.Errorf("flush spans: %w", err)
	}
	return nil
}

// Propagator is how the trace context travels in a job's metadata: the W3C
// trace context ("traceparent", "tracestate") and baggage ("baggage").
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// ClientOption makes a Client store the trace context of each enqueueing
// ctx in the job's metadata (see Inject), so that the job's attempts
// continue that trace. Add it to the Client of every service that enqueues.
func ClientOption() nuvom.ClientOption { return nuvom.WithEnqueueHook(Inject) }

// Inject is the enqueue hook ClientOption installs: it writes the trace
// context and baggage of ctx into meta. Outside a span it writes nothing.
func Inject(ctx context.Context, _ nuvom.JobInfo, meta map[string]string) error {
	Propagator().Inject(ctx, propagation.MapCarrier(meta))
	return nil
}

// Extract returns ctx with the trace context and baggage stored in a job's
// metadata (what Inject wrote), for code that starts spans of its own.
func Extract(ctx context.Context, meta map[string]string) context.Context {
	if len(meta) == 0 {
		return ctx
	}
	return Propagator().Extract(ctx, propagation.MapCarrier(meta))
}

func (t *Tracing) middleware(next nuvom.Handler) nuvom.Handler {
	return func(ctx context.Context, job nuvom.JobInfo) (err error) {
		parent := Extract(ctx, job.Meta)
		opts := []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(
				attribute.String("messaging.system", "nuvom"),
				attribute.String("nuvom.task", job.Task),
				attribute.String("nuvom.job.id", job.ID),
				attribute.Int("nuvom.job.attempt", job.Attempt),
				attribute.Int("nuvom.job.max_attempts", job.MaxAttempts),
				attribute.String("nuvom.queue", job.Queue),
				attribute.String("nuvom.worker", job.Worker),
			),
		}
		if len(t.attrs) > 0 {
			opts = append(opts, trace.WithAttributes(t.attrs...))
		}
		if t.s.Parent == ParentLink {
			if sc := trace.SpanContextFromContext(parent); sc.IsValid() {
				opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: sc}))
			}
		}
		ctx, span := t.tracer.Start(parent, "run "+job.Task, opts...)
		ended := false
		defer func() {
			if ended {
				return
			}
			// next panicked (a middleware below; the task's own panics come back as *nuvom.PanicError).
			v := recover()
			span.SetAttributes(attribute.String("nuvom.outcome", nuvom.OutcomePanicked))
			span.SetStatus(codes.Error, fmt.Sprintf("panic: %v", v))
			span.End()
			panic(v)
		}()
		err = next(ctx, job)
		outcome := outcomeOf(ctx, err)
		span.SetAttributes(attribute.String("nuvom.outcome", outcome))
		if err != nil {
			var opts []trace.EventOption
			var pe *nuvom.PanicError
			if errors.As(err, &pe) && len(pe.Stack) > 0 {
				opts = append(opts, trace.WithAttributes(attribute.String("exception.stacktrace", string(pe.Stack))))
			}
			span.RecordError(err, opts...)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		ended = true
		return err
	}
}

// outcomeOf names the attempt's outcome as the middleware sees it.
func outcomeOf(ctx context.Context, err error) string {
	if err == nil {
		return nuvom.OutcomeSucceeded
	}
	var pe *nuvom.PanicError
	switch {
	case errors.As(err, &pe):
		return nuvom.OutcomePanicked
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nuvom.OutcomeTimedOut
	case errors.Is(ctx.Err(), context.Canceled):
		return nuvom.OutcomeCancelled
	}
	return nuvom.OutcomeFailed
}
