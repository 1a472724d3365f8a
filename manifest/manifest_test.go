package manifest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleTask() Task {
	opts := DefaultOptions()
	opts.Retries = 3
	opts.Timeout = Duration(30 * time.Second)
	opts.Queue = "images"
	opts.Tags = []string{"media", "thumbs"}
	t := Task{
		Name: "images.Resize", Package: "example.com/shop/images", Dir: "images", Func: "Resize",
		File: "images/resize.go", Doc: "Resize makes a thumbnail of the image at <src>.", Context: true,
		Params: []Param{
			{Name: "src", Type: Type{Kind: KindString}},
			{Name: "width", Type: Type{Kind: KindInt}},
		},
		Result: &Type{Kind: KindStruct, Name: "example.com/shop/images.Thumb", Fields: []Field{
			{Name: "Path", Wire: "path", Type: Type{Kind: KindString}},
			{Name: "Sizes", Wire: "Sizes", Type: Type{Kind: KindMap, Key: &Type{Kind: KindString}, Elem: &Type{Kind: KindInt64}}},
		}},
		Options: opts,
	}
	t.Signature = t.ComputeSignature()
	return t
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	m := New("example.com/shop")
	b := sampleTask()
	b.Name, b.Func = "images.Blur", "Blur"
	b.Signature = b.ComputeSignature()
	m.Tasks = []Task{sampleTask(), b}
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode: %v\n%s", err, data)
	}
	m.Sort()
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("round trip changed the manifest (-want +got):\n%s", diff)
	}
	again, err := got.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Errorf("encoding is not stable:\n%s\n---\n%s", data, again)
	}
}

func TestEncodeIsCanonical(t *testing.T) {
	m := New("example.com/shop")
	a, b := sampleTask(), sampleTask()
	b.Name = "aaa.First"
	m.Tasks = []Task{a, b}
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if !strings.HasSuffix(s, "}\n") || strings.HasSuffix(s, "\n\n") {
		t.Errorf("want exactly one trailing newline, got %q", s[len(s)-5:])
	}
	if strings.Index(s, `"aaa.First"`) > strings.Index(s, `"images.Resize"`) {
		t.Errorf("tasks are not sorted by name")
	}
	if !strings.Contains(s, "\n  \"tasks\": [\n    {\n      \"name\"") {
		t.Errorf("want 2-space indent, got:\n%s", s)
	}
	if !strings.Contains(s, "<src>") {
		t.Errorf("HTML characters must not be escaped:\n%s", s)
	}
	if !strings.Contains(s, `"timeout": "30s"`) {
		t.Errorf("durations must be written as strings:\n%s", s)
	}
	if m.Tasks[0].Name != "images.Resize" {
		t.Errorf("Encode must not reorder the caller's tasks")
	}
}

func TestDecodeErrors(t *testing.T) {
	valid, _ := (&Manifest{Version: Version, Module: "m", Registry: "nuvomtasks", Tasks: []Task{sampleTask()}}).Encode()
	tests := []struct {
		name, input, want string
	}{
		{"not json", "{", "decode manifest"},
		{"newer major", `{"version":"2.0","module":"m","registry":"r","tasks":[]}`, "newer than this nuvom understands"},
		{"missing version", `{"module":"m","registry":"r","tasks":[]}`, "no version field"},
		{"bad version", `{"version":"x.1","module":"m","registry":"r","tasks":[]}`, "not of the form MAJOR.MINOR"},
		{"unknown field", `{"version":"1.0","module":"m","registry":"r","tasks":[],"extra":1}`, `unknown field "extra"`},
		{"trailing data", `{"version":"1.0","module":"m","registry":"r","tasks":[]} {}`, "unexpected data"},
		{"duplicate task", strings.Replace(string(valid), `"tasks": [`, `"tasks": [`+taskJSON(t)+",", 1), "duplicate task name"},
		{"bad kind", strings.Replace(string(valid), `"kind": "int"`, `"kind": "complex128"`, 1), `unknown kind "complex128"`},
		{"bad policy", strings.Replace(string(valid), `"timeout_policy": "fail"`, `"timeout_policy": "later"`, 1), `timeout_policy "later"`},
		{"bad duration", strings.Replace(string(valid), `"timeout": "30s"`, `"timeout": "soon"`, 1), "invalid duration"},
		{"stale signature", strings.Replace(string(valid), `"kind": "int"`, `"kind": "int64"`, 1), "does not match"},
		{"negative retries", strings.Replace(string(valid), `"retries": 3`, `"retries": -1`, 1), "retries is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.input))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := Decode(bytes.NewReader(valid)); err != nil {
		t.Fatalf("valid manifest refused: %v", err)
	}
}

func taskJSON(t *testing.T) string {
	m := &Manifest{Version: Version, Module: "m", Registry: "r", Tasks: []Task{sampleTask()}}
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	start := strings.Index(s, "[") + 1
	end := strings.LastIndex(s, "]")
	return s[start:end]
}

func TestCheckVersionAcceptsOlderAndMinor(t *testing.T) {
	for _, v := range []string{"1.0", "1.7", "0.9", "1"} {
		if err := CheckVersion(v); err != nil {
			t.Errorf("CheckVersion(%q) = %v, want nil", v, err)
		}
	}
}

func TestSignature(t *testing.T) {
	base := sampleTask()
	sig := base.ComputeSignature()
	if len(sig) != 16 {
		t.Fatalf("signature %q: want 16 hex digits", sig)
	}
	// Pinned: a change here breaks every queued job in every user's database.
	if sig != "baf99a450f8c3d8f" {
		t.Fatalf("signature algorithm changed: got %s; bump the nuvom-sig version on purpose only", sig)
	}
	same := []func(*Task){
		func(t *Task) { t.Params[0].Name = "source" },
		func(t *Task) { t.Doc = "other" },
		func(t *Task) { t.Options.Retries = 9; t.Options.Queue = "q" },
		func(t *Task) { t.Result.Name = "example.com/other/pkg.Thumb" },
		func(t *Task) { t.Context = false },
	}
	for i, f := range same {
		c := sampleTask()
		f(&c)
		if got := c.ComputeSignature(); got != sig {
			t.Errorf("unchanged-wire edit %d changed the signature", i)
		}
	}
	different := []func(*Task){
		func(t *Task) { t.Params[1].Type.Kind = KindInt64 },
		func(t *Task) { t.Params = t.Params[:1] },
		func(t *Task) { t.Params[0], t.Params[1] = t.Params[1], t.Params[0] },
		func(t *Task) { t.Result = nil },
		func(t *Task) { t.Result.Fields[0].Wire = "p" },
		func(t *Task) { t.Result.Name = "example.com/shop/images.Thumbnail" },
		func(t *Task) { t.Options.Version = 2 },
	}
	for i, f := range different {
		c := sampleTask()
		f(&c)
		if got := c.ComputeSignature(); got == sig {
			t.Errorf("wire edit %d kept the signature", i)
		}
	}
}

func TestDiff(t *testing.T) {
	old := New("m")
	old.Tasks = []Task{sampleTask()}
	removed := sampleTask()
	removed.Name = "a.Gone"
	old.Tasks = append(old.Tasks, removed)

	changed := sampleTask()
	changed.Options.Retries = 5
	changed.Params[1].Type.Kind = KindInt32
	changed.Signature = changed.ComputeSignature()
	added := sampleTask()
	added.Name = "z.New"
	nw := New("m")
	nw.Tasks = []Task{changed, added}

	got := Diff(old, nw)
	var lines []string
	for _, c := range got {
		lines = append(lines, c.String())
	}
	want := []string{
		"- a.Gone",
		"~ images.Resize: signature: (ctx, src string, width int) (images.Thumb, error) [" + old.Tasks[0].Signature +
			"] -> (ctx, src string, width int32) (images.Thumb, error) [" + changed.Signature + "]; options.retries: 3 -> 5",
		"+ z.New",
	}
	if d := cmp.Diff(want, lines); d != "" {
		t.Errorf("Diff (-want +got):\n%s", d)
	}
	if !got[1].SignatureChanged {
		t.Errorf("SignatureChanged not set")
	}
	if len(Diff(nw, nw)) != 0 {
		t.Errorf("a manifest differs from itself")
	}
	if len(Diff(nil, nw)) != 2 {
		t.Errorf("nil old manifest: want every task added")
	}
}

func TestTypeString(t *testing.T) {
	ty := Type{Kind: KindMap, Key: &Type{Kind: KindString}, Elem: &Type{Kind: KindSlice,
		Elem: &Type{Kind: KindPointer, Elem: &Type{Kind: KindStruct, Name: "example.com/x/pkg.Item"}}}}
	if got, want := ty.String(), "map[string][]*pkg.Item"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	arr := Type{Kind: KindArray, Len: 4, Elem: &Type{Kind: KindBytes}}
	if got, want := arr.String(), "[4][]byte"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestDiffStructFields: a change inside a struct param or result keeps the
// signature line alike on both sides ("req kinds.Req"), so the diff names the
// fields that changed.
func TestDiffStructFields(t *testing.T) {
	req := func(fields ...Field) Type {
		return Type{Kind: KindStruct, Name: "example.com/app/kinds.Req", Fields: fields}
	}
	str, i64 := Type{Kind: KindString}, Type{Kind: KindInt64}
	task := func(param, result Type) Task {
		tk := Task{Name: "kinds.Build", Package: "example.com/app/kinds", Dir: "kinds", Func: "Build", File: "kinds/kinds.go",
			Context: true, Params: []Param{{Name: "req", Type: param}}, Result: &result, Options: DefaultOptions()}
		tk.Signature = tk.ComputeSignature()
		return tk
	}
	item := func(fields ...Field) Type {
		return Type{Kind: KindSlice, Elem: &Type{Kind: KindStruct, Name: "example.com/app/kinds.Item", Fields: fields}}
	}
	old := New("m")
	old.Tasks = []Task{task(
		req(Field{Name: "From", Wire: "from", Type: str}, Field{Name: "Gone", Wire: "Gone", Type: str},
			Field{Name: "Items", Wire: "Items", Type: item(Field{Name: "N", Wire: "N", Type: i64})}),
		str)}
	nw := New("m")
	nw.Tasks = []Task{task(
		req(Field{Name: "From", Wire: "since", Type: str},
			Field{Name: "Items", Wire: "Items", Type: item(Field{Name: "N", Wire: "N", Type: str})},
			Field{Name: "Note", Wire: "note", Type: str}),
		str)}
	got := Diff(old, nw)
	if len(got) != 1 {
		t.Fatalf("Diff = %v, want one change", got)
	}
	want := []string{
		"signature: (ctx, req kinds.Req) (string, error) [" + old.Tasks[0].Signature + "] -> (ctx, req kinds.Req) (string, error) [" + nw.Tasks[0].Signature + "]",
		`param req: field From: msgpack key "from" -> "since"`,
		"param req: field Gone (string) removed",
		"param req: field Items[].N: int64 -> string",
		"param req: field Note (note string) added",
	}
	if d := cmp.Diff(want, got[0].Details); d != "" {
		t.Errorf("Details (-want +got):\n%s", d)
	}

	// Swapping two fields is a reorder; the shift of an added field is not.
	swapped := New("m")
	swapped.Tasks = []Task{task(
		req(Field{Name: "Items", Wire: "Items", Type: item(Field{Name: "N", Wire: "N", Type: i64})},
			Field{Name: "From", Wire: "from", Type: str}, Field{Name: "Gone", Wire: "Gone", Type: str}),
		str)}
	got = Diff(old, swapped)
	if len(got) != 1 || len(got[0].Details) != 2 || got[0].Details[1] != "param req: fields reordered: From, Gone, Items -> Items, From, Gone" {
		t.Errorf("Diff after a swap = %q", got)
	}
}
