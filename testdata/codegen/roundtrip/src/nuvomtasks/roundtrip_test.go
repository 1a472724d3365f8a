package nuvomtasks_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"example.com/shop/clash"
	"example.com/shop/images"
	legacy "example.com/shop/legacy/images"
	"example.com/shop/levels"
	"example.com/shop/mail"
	"example.com/shop/nuvomtasks"
	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/nuvomimpl"
)

// runner is a Backend that runs each job as it is enqueued, through the
// generated registry, and keeps its final record for Get.
type runner struct {
	nuvom.Backend // other methods are not used
	reg           *nuvom.Registry
	jobs          map[string]*nuvom.Job
}

func (b *runner) Enqueue(ctx context.Context, jobs []*nuvom.Job) ([]nuvom.EnqueueResult, error) {
	out := make([]nuvom.EnqueueResult, len(jobs))
	for i, j := range jobs {
		def, ok := b.reg.Lookup(j.Task)
		switch {
		case !ok:
			return nil, fmt.Errorf("unknown task %s", j.Task)
		case def.Signature != j.Signature:
			return nil, fmt.Errorf("task %s: signature %s, job has %s", j.Task, def.Signature, j.Signature)
		}
		res, err := def.Invoke(ctx, j.Args)
		if err != nil {
			j.State, j.Error = nuvom.StateFailed, err.Error()
		} else {
			j.State, j.Result = nuvom.StateSucceeded, res
		}
		b.jobs[j.ID] = j
		out[i] = nuvom.EnqueueResult{ID: j.ID}
	}
	return out, nil
}

func (b *runner) Get(ctx context.Context, id string) (*nuvom.Job, error) { return b.jobs[id], nil }

func setup(t *testing.T) (context.Context, *nuvom.Client) {
	t.Helper()
	reg, err := nuvomtasks.Registry()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"clash.Everything", "clash.Shadows", "images.Check", "images.Count", "images.Echo",
		"images.EchoComposite", "images.EchoNamed", "images.Resize", "legacy/images.Crop", "legacy/images.Resize",
		"mail.Blank", "mail.Ping", "mail.sweep"}
	if got := reg.Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("registry names = %v, want %v", got, want)
	}
	return context.Background(), nuvom.NewClient(&runner{reg: reg, jobs: map[string]*nuvom.Job{}})
}

func wait[T any](t *testing.T, ctx context.Context, p *nuvom.Pending[T], err error) T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestResize(t *testing.T) {
	ctx, c := setup(t)
	p, err := images.ResizeTask.Delay(ctx, c, "a.png", 128)
	got := wait(t, ctx, p, err)
	if want := (images.Thumb{Path: "a.png.thumb", Width: 128}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	spec := images.ResizeTask.Spec()
	if spec.Options.Retries != 3 || spec.Options.Timeout != 30*time.Second || spec.Options.Queue != "images" {
		t.Fatalf("spec options %+v", spec.Options)
	}
	if images.ResizeTask.Definition().Before == nil {
		t.Fatal("Resize has no before hook")
	}
}

func TestBasicKinds(t *testing.T) {
	ctx, c := setup(t)
	at := time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.UTC)
	want := images.Basics{B: true, I: math.MinInt, I8: math.MinInt8, I16: math.MaxInt16, I32: math.MinInt32,
		I64: math.MaxInt64, U: math.MaxUint, U8: math.MaxUint8, U16: math.MaxUint16, U32: math.MaxUint32,
		U64: math.MaxUint64, F32: math.SmallestNonzeroFloat32, F64: -math.MaxFloat64, S: "héllo\x00wörld",
		Data: []byte{0, 1, 255}, At: at, Every: -90 * time.Minute}
	p, err := images.EchoTask.Delay(ctx, c, want.B, want.I, want.I8, want.I16, want.I32, want.I64, want.U, want.U8,
		want.U16, want.U32, want.U64, want.F32, want.F64, want.S, want.Data, want.At, want.Every)
	got := wait(t, ctx, p, err)
	if !got.At.Equal(want.At) {
		t.Errorf("time: got %v, want %v", got.At, want.At)
	}
	got.At = want.At
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestNamedKinds(t *testing.T) {
	ctx, c := setup(t)
	want := images.NamedBack{Color: "teal", Level: levels.Level(-7), ID: 4000000000, Blob: images.Blob("blob"),
		Month: time.December, Wait: images.Wait(1500 * time.Millisecond), Ratio: 0.25, Flag: true}
	p, err := images.EchoNamedTask.Delay(ctx, c, want.Color, want.Level, want.ID, want.Blob, want.Month, want.Wait, want.Ratio, want.Flag)
	if got := wait(t, ctx, p, err); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestComposites(t *testing.T) {
	ctx, c := setup(t)
	maybe := "maybe"
	at := time.Date(2001, 1, 1, 0, 0, 0, 1, time.UTC)
	want := images.Composite{
		Tags:    []string{"x", "y"},
		Counts:  map[string]int{"a": 1, "b": -2},
		Origin:  &images.Point{X: 3, Y: 4},
		Hash:    [16]byte{1, 2, 3, 15: 255},
		Corners: [4]images.Point{{X: 1, Y: 1}, {X: 2}, {Y: 3}, {X: -4, Y: 4}},
		Min:     -5,
		Max:     0,
		Tree: images.Node{Value: "root", Children: []images.Node{
			{Value: "leaf"}, {Value: "branch", Children: []images.Node{{Value: "deep"}}}}},
		ByColor: map[images.Color][]*images.Point{"red": {{X: 1}, nil}},
		When:    map[int]time.Time{7: at},
		Maybe:   &maybe,
		Grid:    [][]float64{{1.5, 2}, {}},
	}
	box := struct {
		Min int `msgpack:"min"`
		Max int `msgpack:",omitempty"`
	}{Min: want.Min, Max: want.Max}
	p, err := images.EchoCompositeTask.Delay(ctx, c, want.Tags, want.Counts, want.Origin, want.Hash, want.Corners, box,
		want.Tree, want.ByColor, want.When, want.Maybe, want.Missing, want.Grid)
	got := wait(t, ctx, p, err)
	if !got.When[7].Equal(at) {
		t.Errorf("time in map: got %v, want %v", got.When[7], at)
	}
	got.When[7] = at
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestErrorOnlyAndNoContext(t *testing.T) {
	ctx, c := setup(t)
	p, err := images.CheckTask.Delay(ctx, c, "same", "same")
	if _, err := p.Wait(ctx); err != nil {
		t.Fatalf("check same: %v", err)
	}
	var _ *nuvom.Pending[struct{}] = p
	p, err = images.CheckTask.Delay(ctx, c, "want", "got")
	if err != nil {
		t.Fatal(err)
	}
	var je *nuvom.JobError
	if _, err := p.Wait(ctx); !errors.As(err, &je) || !strings.Contains(je.Message, `want "want", got "got"`) {
		t.Fatalf("check mismatch: got error %v", err)
	}
	def := images.CheckTask.Definition()
	if def.Before == nil || def.After == nil || def.OnError == nil || def.Options.StoreResult || def.Options.Version != 3 {
		t.Fatalf("check definition %+v", def)
	}
	pc, err := images.CountTask.Delay(ctx, c)
	if got := wait(t, ctx, pc, err); got != 42 {
		t.Fatalf("count = %d", got)
	}
}

func TestSameNamePackages(t *testing.T) {
	ctx, c := setup(t)
	p, err := legacy.CropTask.Delay(ctx, c, images.Thumb{Path: "p"})
	if got := wait(t, ctx, p, err); got.Path != "p.crop" {
		t.Fatalf("crop = %+v", got)
	}
	pr, err := legacy.ResizeTask.Delay(ctx, c, "x")
	wait(t, ctx, pr, err)
}

func TestCollidingNames(t *testing.T) {
	ctx, c := setup(t)
	p, err := clash.EverythingTask.Delay(ctx, c, "ctx", "client", []string{"o"}, "err", 1, 2, true, []byte("args"), 0.5, 9)
	if got, want := wait(t, ctx, p, err), "ctx client [o] err 1 2 true args 0.5 9"; got != want {
		t.Fatalf("everything = %q, want %q", got, want)
	}
	at := time.Date(2020, 5, 6, 0, 0, 0, 0, time.UTC)
	ps, err := clash.ShadowsTask.Delay(ctx, c, "n", at, "s", 64, 0, 1, []clash.Color{"c"}, 2, 3, 4, 5)
	if got, want := wait(t, ctx, ps, err).Text, "n 2020-05-06 s 64 0 1 [c] 2 3 4 5"; got != want {
		t.Fatalf("shadows = %q, want %q", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	reg, err := nuvomtasks.Registry()
	if err != nil {
		t.Fatal(err)
	}
	def, _ := reg.Lookup("images.Resize")
	w := nuvomimpl.NewArgWriter(1)
	w.String("only one")
	args, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	var de *nuvomimpl.DecodeError
	if _, err := def.Invoke(context.Background(), args); !errors.As(err, &de) || de.Arg != -1 {
		t.Fatalf("wrong arg count: got %v", err)
	}
	w = nuvomimpl.NewArgWriter(2)
	w.String("a.png")
	w.String("not an int")
	args, _ = w.Finish()
	if _, err := def.Invoke(context.Background(), args); !errors.As(err, &de) || de.Arg != 1 {
		t.Fatalf("wrong arg type: got %v", err)
	}
}

func TestBlankAndUnexported(t *testing.T) {
	ctx, c := setup(t)
	p, err := mail.BlankTask.Delay(ctx, c, "s", 1, true)
	wait(t, ctx, p, err)
	p, err = mail.BlankTask.Delay(ctx, c, "s", 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctx); err == nil || !strings.Contains(err.Error(), "arg0 is false") {
		t.Fatalf("blank with false: got %v", err)
	}
	p, err = mail.PingTask.Delay(ctx, c)
	wait(t, ctx, p, err)
	p, err = mail.SweepTask.Delay(ctx, c, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctx); err == nil || !strings.Contains(err.Error(), "negative days -1") {
		t.Fatalf("sweep -1: got %v", err)
	}
}
