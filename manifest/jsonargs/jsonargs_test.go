package jsonargs

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/runtime/nuvomimpl"
)

func ty(k manifest.Kind) manifest.Type   { return manifest.Type{Kind: k} }
func ptr(t manifest.Type) *manifest.Type { return &t }

// item mirrors the schema below, as a worker's Go code would declare it.
type item struct {
	SKU   string         `msgpack:"sku"`
	Qty   int            `msgpack:"qty"`
	Tags  []string       `msgpack:"tags"`
	Attrs map[string]int `msgpack:"attrs"`
	Next  *item          `msgpack:"next"`
}

func itemType() manifest.Type {
	return manifest.Type{Kind: manifest.KindStruct, Name: "example.com/shop.Item", Fields: []manifest.Field{
		{Name: "SKU", Wire: "sku", Type: ty(manifest.KindString)},
		{Name: "Qty", Wire: "qty", Type: ty(manifest.KindInt)},
		{Name: "Tags", Wire: "tags", Type: manifest.Type{Kind: manifest.KindSlice, Elem: ptr(ty(manifest.KindString))}},
		{Name: "Attrs", Wire: "attrs", Type: manifest.Type{Kind: manifest.KindMap, Key: ptr(ty(manifest.KindString)), Elem: ptr(ty(manifest.KindInt))}},
		{Name: "Next", Wire: "next", Type: manifest.Type{Kind: manifest.KindPointer,
			Elem: &manifest.Type{Kind: manifest.KindRef, Name: "example.com/shop.Item"}}},
	}}
}

func task() *manifest.Task {
	return &manifest.Task{Name: "shop.Process", Params: []manifest.Param{
		{Name: "id", Type: ty(manifest.KindInt64)},
		{Name: "small", Type: ty(manifest.KindInt8)},
		{Name: "flag", Type: ty(manifest.KindBool)},
		{Name: "ratio", Type: ty(manifest.KindFloat64)},
		{Name: "blob", Type: ty(manifest.KindBytes)},
		{Name: "at", Type: ty(manifest.KindTime)},
		{Name: "wait", Type: ty(manifest.KindDuration)},
		{Name: "item", Type: itemType()},
		{Name: "counts", Type: manifest.Type{Kind: manifest.KindMap, Key: ptr(ty(manifest.KindInt)), Elem: ptr(ty(manifest.KindUint16))}},
		{Name: "pair", Type: manifest.Type{Kind: manifest.KindArray, Len: 2, Elem: ptr(ty(manifest.KindString))}},
	}}
}

// TestEncodeDecodesInGo checks the CLI's encoding against the generated code's
// decoding path (ArgReader), field by field.
func TestEncodeDecodesInGo(t *testing.T) {
	raw := `[9007199254740993, -7, true, 0.25, "aGk=", "2026-03-01T10:00:00.5Z", "1m30s",
		{"sku": "A1", "Qty": 3, "tags": ["x", "y"], "attrs": {"w": 2}, "next": {"sku": "B2", "next": null}},
		{"10": 1, "-2": 65535}, ["l", "r"]]`
	data, err := Encode(task(), []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	r := nuvomimpl.NewArgReader("shop.Process", data, 10)
	id, small, flag, ratio := r.Int(), int8(r.Int()), r.Bool(), r.Float64()
	blob, at, wait := r.Bytes(), r.Time(), r.Duration()
	var it item
	r.Value(&it)
	var counts map[int]uint16
	r.Value(&counts)
	var pair [2]string
	r.Value(&pair)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	wantAt := time.Date(2026, 3, 1, 10, 0, 0, 5e8, time.UTC)
	if id != 9007199254740993 || small != -7 || !flag || ratio != 0.25 || string(blob) != "hi" ||
		!at.Equal(wantAt) || wait != 90*time.Second {
		t.Errorf("scalars: %v %v %v %v %q %v %v", id, small, flag, ratio, blob, at, wait)
	}
	wantItem := item{SKU: "A1", Qty: 3, Tags: []string{"x", "y"}, Attrs: map[string]int{"w": 2}, Next: &item{SKU: "B2"}}
	if d := cmp.Diff(wantItem, it); d != "" {
		t.Errorf("struct (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[int]uint16{10: 1, -2: 65535}, counts); d != "" {
		t.Errorf("map (-want +got):\n%s", d)
	}
	if pair != [2]string{"l", "r"} {
		t.Errorf("array: %v", pair)
	}
}

func TestEncodeByName(t *testing.T) {
	tk := &manifest.Task{Name: "images.Resize", Params: []manifest.Param{
		{Name: "src", Type: ty(manifest.KindString)}, {Name: "width", Type: ty(manifest.KindInt)}}}
	byName, err := Encode(tk, []byte(`{"width": 128, "src": "a.png"}`))
	if err != nil {
		t.Fatal(err)
	}
	byPos, err := Encode(tk, []byte(`["a.png", 128]`))
	if err != nil {
		t.Fatal(err)
	}
	if string(byName) != string(byPos) {
		t.Errorf("object and array forms differ")
	}
}

func TestEncodeErrors(t *testing.T) {
	tk := task()
	tests := []struct{ name, raw, want string }{
		{"not json", `[1,`, "not valid JSON"},
		{"scalar", `5`, "must be a JSON array or an object keyed by param name"},
		{"count", `[1]`, "shop.Process takes 10 args"},
		{"wrong type", `["x", 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {}, {}, ["a","b"]]`, `param id: expected int64, got string "x"`},
		{"fraction", `[1.5, 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {}, {}, ["a","b"]]`, "param id: expected int64, got 1.5 (not an integer in range)"},
		{"overflow", `[1, 300, true, 1, null, "2026-01-01T00:00:00Z", "1s", {}, {}, ["a","b"]]`, "param small: expected int8, got 300"},
		{"base64", `[1, 1, true, 1, "!!", "2026-01-01T00:00:00Z", "1s", {}, {}, ["a","b"]]`, "param blob: expected []byte as a base64 string"},
		{"time", `[1, 1, true, 1, null, "yesterday", "1s", {}, {}, ["a","b"]]`, "param at: expected time.Time as an RFC 3339 string"},
		{"duration", `[1, 1, true, 1, null, "2026-01-01T00:00:00Z", "soon", {}, {}, ["a","b"]]`, `param wait: expected time.Duration as a string such as "1m30s", got "soon"`},
		{"bare number duration", `[1, 1, true, 1, null, "2026-01-01T00:00:00Z", 90, {}, {}, ["a","b"]]`,
			`param wait: expected time.Duration as a string such as "1m30s", got number 90 (a number has no unit: write "90s", "90ms"...)`},
		{"nested field", `[1, 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {"tags": ["a", 2]}, {}, ["a","b"]]`, "param item.Tags[1]: expected string, got number 2"},
		{"unknown field", `[1, 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {"color": 1}, {}, ["a","b"]]`, `has no field "color" (fields: sku, qty, tags, attrs, next)`},
		{"ref", `[1, 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {"next": {"next": {"qty": "x"}}}, {}, ["a","b"]]`, `param item.Next.Next.Qty: expected int, got string "x"`},
		{"map key", `[1, 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {}, {"x": 1}, ["a","b"]]`, `param counts["x"]: map key must be an integer`},
		{"negative uint", `[1, 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {}, {"1": -1}, ["a","b"]]`, `param counts["1"]: expected uint16, got -1`},
		{"array len", `[1, 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {}, {}, ["a"]]`, "param pair: expected [2]string with exactly 2 elements, got 1"},
		{"unknown param", `{"id": 1, "bogus": 2}`, "shop.Process has no param bogus"},
		{"missing param", `{"id": 1}`, "missing param small, flag"},
		// Decoding keeps the last of two equal keys: refused rather than enqueued silently.
		{"param twice", `{"id": 1, "id": 2}`, `args of shop.Process: key "id" given twice`},
		{"field twice", `[1, 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {"qty": 1, "tags": ["a", {"x": [{"k": 1, "k": 2}]}], "qty": 2}, {}, ["a","b"]]`,
			`args of shop.Process: key "k" given twice in [7].tags[1].x[0]`},
		{"field twice after nesting", `[1, 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {"qty": 1, "tags": ["a", {"x": [{"k": 1}]}], "qty": 2}, {}, ["a","b"]]`,
			`args of shop.Process: key "qty" given twice in [7]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Encode(tk, []byte(tt.raw))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Encode error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestErrorsClipHugeValues: a huge bad value (a tester sent 50 MB) gives a one-line error that
// shows its start and its size, not the whole value.
func TestErrorsClipHugeValues(t *testing.T) {
	tk := task()
	big := strings.Repeat("x", 1<<20)
	digits := strings.Repeat("9", 1<<20)
	for name, raw := range map[string]string{
		"string for an int":   `["` + big + `", 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {}, {}, ["a","b"]]`,
		"number out of range": `[` + digits + `, 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {}, {}, ["a","b"]]`,
		"time":                `[1, 1, true, 1, null, "` + big + `", "1s", {}, {}, ["a","b"]]`,
		"duration":            `[1, 1, true, 1, null, "2026-01-01T00:00:00Z", "` + big + `", {}, {}, ["a","b"]]`,
		"unknown field":       `[1, 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {"` + big + `": 1}, {}, ["a","b"]]`,
		"map key":             `[1, 1, true, 1, null, "2026-01-01T00:00:00Z", "1s", {}, {"` + big + `": 1}, ["a","b"]]`,
		"unknown param":       `{"` + big + `": 1}`,
	} {
		_, err := Encode(tk, []byte(raw))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		msg := err.Error()
		if len(msg) > 400 || !strings.Contains(msg, "… (1048576 bytes)") && !strings.Contains(msg, `…" (1048576 bytes)`) {
			t.Errorf("%s: error of %d bytes does not clip the value: %.300s", name, len(msg), msg)
		}
	}
}

// TestDecodeArgsShowsDurations: with the task's types, stored durations render
// as Go duration strings, at the top level and nested.
func TestDecodeArgsShowsDurations(t *testing.T) {
	tk := &manifest.Task{Name: "shop.Wait", Params: []manifest.Param{
		{Name: "d", Type: ty(manifest.KindDuration)},
		{Name: "opts", Type: manifest.Type{Kind: manifest.KindStruct, Name: "example.com/shop.Opts", Fields: []manifest.Field{
			{Name: "Every", Wire: "every", Type: ty(manifest.KindDuration)},
			{Name: "Steps", Wire: "steps", Type: manifest.Type{Kind: manifest.KindSlice, Elem: ptr(ty(manifest.KindDuration))}},
			{Name: "N", Wire: "n", Type: ty(manifest.KindInt)},
		}}},
	}, Result: ptr(manifest.Type{Kind: manifest.KindMap, Key: ptr(ty(manifest.KindString)), Elem: ptr(ty(manifest.KindDuration))})}
	data, err := Encode(tk, []byte(`["1m30s", {"every": "2h", "steps": ["1s", "250ms"], "n": 90}]`))
	if err != nil {
		t.Fatal(err)
	}
	v, err := DecodeArgs(tk, data)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(v)
	if want := `["1m30s",{"every":"2h0m0s","n":90,"steps":["1s","250ms"]}]`; string(got) != want {
		t.Errorf("DecodeArgs = %s, want %s", got, want)
	}
	res, err := nuvomimpl.EncodeResult(map[string]time.Duration{"p50": 1500 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeResult(tk, res)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(r); string(got) != `{"p50":"1.5ms"}` {
		t.Errorf("DecodeResult = %s", got)
	}
	// Without the types, Decode keeps the nanoseconds.
	plain, _ := Decode(data)
	if got, _ := json.Marshal(plain); !strings.Contains(string(got), "90000000000") {
		t.Errorf("Decode = %s", got)
	}
}

func TestDecode(t *testing.T) {
	type thumb struct {
		Path  string    `msgpack:"path"`
		Built time.Time `msgpack:"built"`
		Sizes map[int]string
	}
	data, err := nuvomimpl.EncodeResult(thumb{Path: "a.png", Built: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Sizes: map[int]string{1: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Sizes":{"1":"s"},"built":"2026-01-02T03:04:05Z","path":"a.png"}`
	if string(out) != want {
		t.Errorf("Decode as JSON = %s, want %s", out, want)
	}
	if v, err := Decode(nil); v != nil || err != nil {
		t.Errorf("Decode(nil) = %v, %v", v, err)
	}
	if _, err := Decode([]byte{0xc1}); err == nil {
		t.Errorf("Decode of an invalid byte: want error")
	}
}

// FuzzEncode: no JSON input may panic the converter, and whatever it accepts
// must decode as a msgpack array of the task's arity.
func FuzzEncode(f *testing.F) {
	f.Add(`[1, 1, true, 0.5, "aGk=", "2026-01-01T00:00:00Z", "1s", {"sku": "a", "next": {"next": null}}, {"1": 2}, ["a", "b"]]`)
	f.Add(`{"id": 1}`)
	f.Add(`[[[[[[]]]]]]`)
	f.Add(`{"item": {"next": {"next": {"next": {}}}}}`)
	tk := task()
	f.Fuzz(func(t *testing.T, raw string) {
		data, err := Encode(tk, []byte(raw))
		if err != nil {
			return
		}
		r := nuvomimpl.NewArgReader(tk.Name, data, len(tk.Params))
		if err := r.Err(); err != nil {
			t.Fatalf("accepted args do not decode: %v", err)
		}
		if _, err := Decode(data); err != nil {
			t.Fatalf("accepted args do not render: %v", err)
		}
	})
}
