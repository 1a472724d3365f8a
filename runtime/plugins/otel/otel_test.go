package otel_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/plugin"
	"github.com/nuvom/nuvom/runtime/plugin/pluginhost"
	"github.com/nuvom/nuvom/runtime/plugin/plugintest"
	"github.com/nuvom/nuvom/runtime/plugins/otel"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

func TestConformance(t *testing.T) {
	plugintest.Run(t, otel.Plugin)
}

func TestConformanceWithSettings(t *testing.T) {
	plugintest.Run(t, otel.Plugin, plugintest.Sample(`parent = "link"`+"\n"+`attributes = { "deployment.environment" = "test" }`))
}

var noArgs = []byte{0x90}

// rig is a worker with the otel plugin on a real SQLite file, spans going to
// an in-memory exporter.
type rig struct {
	t      *testing.T
	exp    *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	client *nuvom.Client
}

func newRig(t *testing.T, settings *otel.Settings, defs ...nuvom.TaskDef) *rig {
	t.Helper()
	ctx := context.Background()
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "nuvom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	r := &rig{t: t, exp: exp, tp: tp, client: nuvom.NewClient(b, otel.ClientOption())}

	var st []any
	if settings != nil {
		st = []any{settings}
	}
	set, err := pluginhost.New([]plugin.Registration{otel.PluginFor(tp)}, st)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := set.Start(ctx, pluginhost.Options{Logger: quiet, Inspector: r.client.Inspector(), WorkerID: "w1"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Stop(context.Background()) })
	reg, err := nuvom.NewRegistry(defs...)
	if err != nil {
		t.Fatal(err)
	}
	w, err := nuvom.NewWorker(b, reg, nuvom.WorkerOptions{ID: "w1", Logger: quiet, PollInterval: 10 * time.Millisecond,
		Middleware: set.Middleware(), OnStored: set.Publish})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-runErr; err != nil {
			t.Error(err)
		}
	})
	return r
}

// wait waits (with a long hang guard) until the job is final.
func (r *rig) wait(id string) *nuvom.Job {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j, err := r.client.Wait(ctx, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return j
}

// attemptSpans returns the exported spans of the job's attempts, by attempt number.
func (r *rig) attemptSpans(id string) map[int]tracetest.SpanStub {
	out := map[int]tracetest.SpanStub{}
	for _, s := range r.exp.GetSpans() {
		a := attrs(s)
		if a["nuvom.job.id"].AsString() == id {
			out[int(a["nuvom.job.attempt"].AsInt64())] = s
		}
	}
	return out
}

// spansOf waits (with a hang guard) until n attempt spans of job id were
// exported: the worker stores the outcome after the middleware returned,
// but the span export is synchronous with End, so this rarely waits.
func (r *rig) spansOf(id string, n int) map[int]tracetest.SpanStub {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := r.attemptSpans(id)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("job %s: %d attempt spans exported, want %d", id, len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func task(name string, o nuvom.TaskOptions, fn nuvom.InvokeFunc) nuvom.TaskDef {
	if o.Queue == "" {
		o.Queue = "default"
	}
	return nuvom.TaskDef{TaskSpec: nuvom.TaskSpec{Name: name, Signature: "sig-" + name, Options: o}, Invoke: fn}
}

// TestEnqueueToAttemptIsOneTrace is the plugin's purpose, end to end through
// a real SQLite store and a real worker: the span current when a job is
// enqueued is the parent of each of its attempts' spans (a retry included),
// with the attributes and statuses the package documents; baggage travels
// too; a job enqueued from inside an attempt continues the trace under that
// attempt's span; a job enqueued outside any span starts its own trace.
func TestEnqueueToAttemptIsOneTrace(t *testing.T) {
	var flaky atomic.Int64
	var child atomic.Value // the id of the job the parent task enqueues
	var r *rig
	var sawBaggage sync.Map // job id -> the tenant baggage its attempt saw
	ok := task("shop.Ok", nuvom.TaskOptions{}, func(ctx context.Context, _ []byte) ([]byte, error) {
		info, _ := nuvom.JobInfoFromContext(ctx)
		sawBaggage.Store(info.ID, baggage.FromContext(ctx).Member("tenant").Value())
		return nil, nil
	})
	retry := task("shop.Flaky", nuvom.TaskOptions{Queue: "mail", Retries: 1, RetryDelay: time.Millisecond, Backoff: nuvom.BackoffFixed},
		func(context.Context, []byte) ([]byte, error) {
			if flaky.Add(1) == 1 {
				return nil, errors.New("smtp down")
			}
			return nil, nil
		})
	parent := task("shop.Parent", nuvom.TaskOptions{}, func(ctx context.Context, _ []byte) ([]byte, error) {
		res, err := r.client.Enqueue(ctx, nuvom.TaskSpec{Name: "shop.Ok", Signature: "sig-shop.Ok", Options: nuvom.TaskOptions{Queue: "default"}}, noArgs)
		if err == nil {
			child.Store(res.ID)
		}
		return nil, err
	})
	r = newRig(t, nil, ok, retry, parent)

	member, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	reqCtx, req := r.tp.Tracer("test").Start(baggage.ContextWithBaggage(context.Background(), bag), "POST /orders")
	var ids []string
	for _, spec := range []nuvom.TaskSpec{ok.TaskSpec, retry.TaskSpec, parent.TaskSpec} {
		res, err := r.client.Enqueue(reqCtx, spec, noArgs)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	req.End()
	orphan, err := r.client.Enqueue(context.Background(), ok.TaskSpec, noArgs)
	if err != nil {
		t.Fatal(err)
	}

	reqSC := req.SpanContext()
	okJob, flakyJob, parentJob := r.wait(ids[0]), r.wait(ids[1]), r.wait(ids[2])
	if !strings.HasPrefix(okJob.Meta["traceparent"], "00-"+reqSC.TraceID().String()+"-"+reqSC.SpanID().String()) {
		t.Fatalf("stored metadata %v, want a traceparent naming the request span %s", okJob.Meta, reqSC.SpanID())
	}
	if okJob.Meta["baggage"] != "tenant=acme" {
		t.Errorf("stored baggage %q, want tenant=acme", okJob.Meta["baggage"])
	}
	if got, _ := sawBaggage.Load(okJob.ID); got != "acme" {
		t.Errorf("the task saw baggage tenant=%q, want acme", got)
	}
	if j := r.wait(orphan.ID); len(j.Meta) != 0 {
		t.Errorf("a job enqueued outside any span stored metadata %v", j.Meta)
	}

	wantChild := func(what string, s tracetest.SpanStub, of trace.SpanContext) {
		t.Helper()
		if s.SpanContext.TraceID() != of.TraceID() || s.Parent.SpanID() != of.SpanID() {
			t.Errorf("%s: span %q in trace %s with parent %s, want a child of %s in trace %s",
				what, s.Name, s.SpanContext.TraceID(), s.Parent.SpanID(), of.SpanID(), of.TraceID())
		}
	}
	okSpans := r.spansOf(okJob.ID, 1)
	s := okSpans[1]
	wantChild("shop.Ok", s, reqSC)
	if !s.Parent.IsRemote() {
		t.Errorf("the attempt's parent is not marked remote: it came from the job's metadata")
	}
	if s.Name != "run shop.Ok" || s.SpanKind != trace.SpanKindConsumer || s.Status.Code == codes.Error {
		t.Errorf("shop.Ok span: name %q kind %s status %v; want \"run shop.Ok\", consumer, not an error", s.Name, s.SpanKind, s.Status)
	}
	a := attrs(s)
	for k, want := range map[attribute.Key]string{"nuvom.task": "shop.Ok", "nuvom.job.id": okJob.ID, "nuvom.queue": "default",
		"nuvom.outcome": "succeeded", "nuvom.worker": "w1", "messaging.system": "nuvom"} {
		if got := a[k].Emit(); got != want {
			t.Errorf("shop.Ok span attribute %s = %q, want %q", k, got, want)
		}
	}
	if a["nuvom.job.attempt"].AsInt64() != 1 {
		t.Errorf("shop.Ok span attempt = %v, want 1", a["nuvom.job.attempt"].Emit())
	}

	fl := r.spansOf(flakyJob.ID, 2)
	if flakyJob.State != nuvom.StateSucceeded {
		t.Fatalf("shop.Flaky ended %s, want succeeded on its retry", flakyJob.State)
	}
	for n, wantOutcome := range map[int]string{1: "failed", 2: "succeeded"} {
		s := fl[n]
		wantChild("shop.Flaky attempt "+string(rune('0'+n)), s, reqSC)
		if got := attrs(s)["nuvom.outcome"].AsString(); got != wantOutcome {
			t.Errorf("shop.Flaky attempt %d outcome %q, want %q", n, got, wantOutcome)
		}
		if got := attrs(s)["nuvom.queue"].AsString(); got != "mail" {
			t.Errorf("shop.Flaky attempt %d queue %q, want mail", n, got)
		}
	}
	if st := fl[1].Status; st.Code != codes.Error || st.Description != "smtp down" {
		t.Errorf("failed attempt's status %+v, want Error \"smtp down\"", st)
	}
	if len(fl[1].Events) == 0 || fl[1].Events[0].Name != "exception" {
		t.Errorf("failed attempt's events %+v, want the recorded error", fl[1].Events)
	}
	if fl[2].Status.Code == codes.Error {
		t.Errorf("succeeded retry has status %+v", fl[2].Status)
	}

	// The job enqueued by shop.Parent's attempt is a child of that attempt.
	if parentJob.State != nuvom.StateSucceeded {
		t.Fatalf("shop.Parent ended %s: %s", parentJob.State, parentJob.Error)
	}
	pspan := r.spansOf(parentJob.ID, 1)[1]
	wantChild("shop.Parent", pspan, reqSC)
	cid, _ := child.Load().(string)
	r.wait(cid)
	wantChild("the job enqueued inside shop.Parent", r.spansOf(cid, 1)[1], pspan.SpanContext)

	o := r.spansOf(orphan.ID, 1)[1]
	if o.Parent.IsValid() || o.SpanContext.TraceID() == reqSC.TraceID() {
		t.Errorf("a job enqueued outside any span has parent %s in trace %s; want a root span of a new trace", o.Parent.SpanID(), o.SpanContext.TraceID())
	}
}

// TestParentLink: with parent = "link" the attempt starts a trace of its own
// linked to the enqueue-time span; settings attributes are on every span.
func TestParentLink(t *testing.T) {
	ok := task("shop.Ok", nuvom.TaskOptions{}, func(context.Context, []byte) ([]byte, error) { return nil, nil })
	r := newRig(t, &otel.Settings{Parent: otel.ParentLink, Attributes: map[string]string{"deployment.environment": "test"}}, ok)
	ctx, req := r.tp.Tracer("test").Start(context.Background(), "POST /orders")
	res, err := r.client.Enqueue(ctx, ok.TaskSpec, noArgs)
	if err != nil {
		t.Fatal(err)
	}
	req.End()
	r.wait(res.ID)
	s := r.spansOf(res.ID, 1)[1]
	if s.Parent.IsValid() || s.SpanContext.TraceID() == req.SpanContext().TraceID() {
		t.Errorf("link mode: span has parent %s in trace %s, want a new root", s.Parent.SpanID(), s.SpanContext.TraceID())
	}
	if len(s.Links) != 1 || s.Links[0].SpanContext.SpanID() != req.SpanContext().SpanID() {
		t.Errorf("link mode: links %+v, want one to the request span %s", s.Links, req.SpanContext().SpanID())
	}
	if got := attrs(s)["deployment.environment"].AsString(); got != "test" {
		t.Errorf("settings attribute deployment.environment = %q, want test", got)
	}
}

// TestMiddlewareOutcomes runs the middleware around handlers that fail in
// each way the worker distinguishes, without a worker: the outcome
// attribute and status, and the error returned unchanged.
func TestMiddlewareOutcomes(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	set, err := pluginhost.New([]plugin.Registration{otel.PluginFor(tp)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := set.Start(context.Background(), pluginhost.Options{Logger: quiet, WorkerID: "w"}); err != nil {
		t.Fatal(err)
	}
	defer set.Stop(context.Background())
	mw := set.Middleware()[0]
	expired, cancel := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel()
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	boom := errors.New("boom")
	cases := []struct {
		name    string
		ctx     context.Context
		err     error
		outcome string
	}{
		{"ok", context.Background(), nil, "succeeded"},
		{"failed", context.Background(), boom, "failed"},
		{"panicked", context.Background(), &nuvom.PanicError{Value: "kaboom", Stack: []byte("goroutine 1")}, "panicked"},
		{"timed out", expired, context.DeadlineExceeded, "timed_out"},
		{"cancelled", cancelled, context.Canceled, "cancelled"},
	}
	for i, c := range cases {
		job := nuvom.JobInfo{ID: c.name, Task: "t", Queue: "q", Attempt: 1}
		got := mw(func(context.Context, nuvom.JobInfo) error { return c.err })(c.ctx, job)
		if got != c.err {
			t.Errorf("%s: middleware returned %v, want %v unchanged", c.name, got, c.err)
		}
		spans := exp.GetSpans()
		if len(spans) != i+1 {
			t.Fatalf("%s: %d spans exported, want %d", c.name, len(spans), i+1)
		}
		s := spans[i]
		if o := attrs(s)["nuvom.outcome"].AsString(); o != c.outcome {
			t.Errorf("%s: outcome %q, want %q", c.name, o, c.outcome)
		}
		if (c.err != nil) != (s.Status.Code == codes.Error) {
			t.Errorf("%s: status %+v", c.name, s.Status)
		}
	}
	// A panic below the middleware ends the span and goes on up.
	func() {
		defer func() {
			if v := recover(); v != "below" {
				t.Errorf("recovered %v, want the panic to pass through", v)
			}
		}()
		mw(func(context.Context, nuvom.JobInfo) error { panic("below") })(context.Background(), nuvom.JobInfo{ID: "p", Task: "t"})
	}()
	spans := exp.GetSpans()
	if last := spans[len(spans)-1]; attrs(last)["nuvom.job.id"].AsString() != "p" || last.Status.Code != codes.Error {
		t.Errorf("after a panic below the middleware, last span %+v; want job p with status Error", last)
	}
}

// TestInject: outside a span the hook writes nothing; inside one it writes
// exactly the W3C keys, and Extract reads them back.
func TestInject(t *testing.T) {
	meta := map[string]string{}
	if err := otel.Inject(context.Background(), nuvom.JobInfo{}, meta); err != nil || len(meta) != 0 {
		t.Fatalf("Inject outside a span: %v, %v; want nothing written", meta, err)
	}
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("t").Start(context.Background(), "s")
	defer span.End()
	if err := otel.Inject(ctx, nuvom.JobInfo{}, meta); err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(meta)); !slices.Equal(keys, []string{"traceparent"}) {
		t.Fatalf("Inject in a span wrote %v, want traceparent only", meta)
	}
	if got := trace.SpanContextFromContext(otel.Extract(context.Background(), meta)); got.SpanID() != span.SpanContext().SpanID() || !got.IsRemote() {
		t.Fatalf("Extract gave %+v, want the remote span %s", got, span.SpanContext().SpanID())
	}
}

// TestSettings: a bad parent mode or an empty attribute key is refused.
func TestSettings(t *testing.T) {
	for _, s := range []otel.Settings{{Parent: "sibling"}, {Attributes: map[string]string{"": "x"}}} {
		if _, err := otel.New(s, nil); err == nil {
			t.Errorf("New(%+v) accepted it", s)
		}
	}
}

// TestStopFlushes: spans a batching provider still holds are exported when
// the plugin stops (the worker is exiting), not lost.
func TestStopFlushes(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Hour)))
	defer tp.Shutdown(context.Background())
	set, err := pluginhost.New([]plugin.Registration{otel.PluginFor(tp)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := set.Start(context.Background(), pluginhost.Options{Logger: quiet, WorkerID: "w"}); err != nil {
		t.Fatal(err)
	}
	job := nuvom.JobInfo{ID: "j1", Task: "t", Attempt: 1}
	if err := set.Middleware()[0](func(context.Context, nuvom.JobInfo) error { return nil })(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans exported before Stop by a batcher with a 1h timeout; the test needs them held", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := set.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if spans := exp.GetSpans(); len(spans) != 1 || attrs(spans[0])["nuvom.job.id"].AsString() != "j1" {
		t.Fatalf("after Stop, exported %v; want the attempt's span", spans)
	}
}
