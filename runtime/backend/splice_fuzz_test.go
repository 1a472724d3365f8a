package backend

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// FuzzSpliceArg: the splice of a parent's result into a step's stored
// arguments never panics on any bytes; for a well-formed argument array of
// n values and a well-formed result it gives an array of n+1 values whose
// first is the result and whose rest are the arguments, unchanged.
func FuzzSpliceArg(f *testing.F) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(enc([]any{"cat.png", 128}), enc("thumb"))
	f.Add(enc([]any{}), enc(map[string]any{"w": 1}))
	f.Add(enc(make([]any, 20)), []byte{})
	f.Add(enc(make([]any, 70000)), enc(nil))
	f.Add([]byte{0xdc, 0xff}, []byte{0xc0})
	f.Fuzz(func(t *testing.T, args, first []byte) {
		out, err := SpliceArg(args, first)
		var in []msgpack.RawMessage
		if !isArray(args) || msgpack.Unmarshal(args, &in) != nil || len(first) > 0 && !wellFormed(first) {
			return // not a case with a property beyond not panicking
		}
		if err != nil {
			t.Fatalf("SpliceArg of a well-formed array of %d values: %v", len(in), err)
		}
		var got []msgpack.RawMessage
		if err := msgpack.Unmarshal(out, &got); err != nil {
			t.Fatalf("spliced arguments do not decode: %v", err)
		}
		if len(got) != len(in)+1 {
			t.Fatalf("spliced %d values into %d: got %d", 1, len(in), len(got))
		}
		want := first
		if len(want) == 0 {
			want = []byte{msgpackNil}
		}
		if !sameValue(got[0], want) {
			t.Fatalf("first value = %x, want %x", []byte(got[0]), want)
		}
		for i := range in {
			if !sameValue(got[i+1], in[i]) {
				t.Fatalf("argument %d changed: %x -> %x", i, []byte(in[i]), []byte(got[i+1]))
			}
		}
	})
}

// wellFormed reports whether b is exactly one msgpack value.
func wellFormed(b []byte) bool {
	d := msgpack.NewDecoder(bytes.NewReader(b))
	var v msgpack.RawMessage
	if d.Decode(&v) != nil {
		return false
	}
	return len(v) == len(b)
}

// sameValue compares two raw msgpack values, where the decoder gives nil
// as an empty RawMessage.
func sameValue(a, b []byte) bool {
	norm := func(x []byte) []byte {
		if len(x) == 0 {
			return []byte{msgpackNil}
		}
		return x
	}
	return bytes.Equal(norm(a), norm(b))
}

// isArray reports whether b starts with a msgpack array header (nil, which
// decodes into a nil slice, is not an array of arguments).
func isArray(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	c := b[0]
	var n int
	switch {
	case c >= 0x90 && c <= 0x9f:
		n = int(c & 0x0f)
	case c == 0xdc && len(b) >= 3:
		n = int(b[1])<<8 | int(b[2])
	case c == 0xdd && len(b) >= 5:
		n = int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4])
	default:
		return false
	}
	// A header counting more values than there are bytes is not decoded
	// (the decoder would allocate for the count first).
	return n <= len(b)
}
