package nuvomimpl_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/nuvomimpl"
)

type stamped struct {
	At time.Time `msgpack:"at"`
}

// A payload the msgpack decoder panics on (nil where a time.Time is expected)
// must come back as a *DecodeError, which the worker quarantines, and as an
// error from DecodeResult; never as a panic.
func TestMalformedPayloadIsADecodeError(t *testing.T) {
	// [{"at": nil}]: an array of one map whose "at" is nil.
	payload := []byte{0x91, 0x81, 0xa2, 'a', 't', 0xc0}
	r := nuvomimpl.NewArgReader("t.Task", payload, 1)
	var v stamped
	r.Value(&v)
	var de *nuvomimpl.DecodeError
	if err := r.Err(); !errors.As(err, &de) {
		t.Fatalf("Err() = %v, want a *DecodeError", err)
	}
	if err := nuvomimpl.DecodeResult(payload[1:], &v); err == nil {
		t.Fatalf("DecodeResult of a malformed value: want an error")
	}
}

func TestArgsRoundTrip(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 10, time.UTC)
	w := nuvomimpl.NewArgWriter(9)
	w.Bool(true)
	w.Int(-42)
	w.Uint(42)
	w.Float32(1.5)
	w.Float64(2.25)
	w.String("s")
	w.Bytes([]byte{1, 2})
	w.Time(at)
	w.Value(map[string]int{"a": 1})
	data, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	r := nuvomimpl.NewArgReader("t.Task", data, 9)
	b, i, u, f32, f64, s, bs, tm := r.Bool(), r.Int(), r.Uint(), r.Float32(), r.Float64(), r.String(), r.Bytes(), r.Time()
	var m map[string]int
	r.Value(&m)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if !b || i != -42 || u != 42 || f32 != 1.5 || f64 != 2.25 || s != "s" || string(bs) != "\x01\x02" || !tm.Equal(at) || m["a"] != 1 {
		t.Errorf("round trip: %v %v %v %v %v %q %v %v %v", b, i, u, f32, f64, s, bs, tm, m)
	}
	if err := nuvomimpl.NewArgReader("t.Task", data, 3).Err(); err == nil {
		t.Errorf("wrong arity: want an error")
	}
}

// A task without parameters accepts an empty payload (what schedules stored
// before they wrote an empty array) as well as an empty array; a task with
// parameters still refuses an empty payload.
func TestEmptyPayloadOfATaskWithoutParameters(t *testing.T) {
	for _, payload := range [][]byte{nil, {}, {0x90}} {
		if err := nuvomimpl.NewArgReader("t.Cleanup", payload, 0).Err(); err != nil {
			t.Errorf("payload %x for 0 params: %v", payload, err)
		}
	}
	var de *nuvomimpl.DecodeError
	if err := nuvomimpl.NewArgReader("t.Resize", nil, 2).Err(); !errors.As(err, &de) {
		t.Errorf("empty payload for 2 params: %v, want a *DecodeError", err)
	}
	if err := nuvomimpl.NewArgReader("t.Cleanup", []byte{0x91, 0x01}, 0).Err(); !errors.As(err, &de) {
		t.Errorf("one arg for 0 params: %v, want a *DecodeError", err)
	}
}
