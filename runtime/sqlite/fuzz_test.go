package sqlite

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nuvom/nuvom/runtime/backend"
)

// fuzzAttempts are the attempt histories whose encodings seed FuzzDecodeAttempts.
func fuzzAttempts() [][]backend.Attempt {
	t0 := time.Date(2025, 3, 30, 1, 59, 59, 123456789, time.UTC)
	return [][]backend.Attempt{
		nil,
		{{Number: 1, StartedAt: t0, FinishedAt: t0.Add(time.Second), Worker: "w-1", Outcome: backend.OutcomeSucceeded}},
		{
			{Number: 1, StartedAt: t0, FinishedAt: t0.Add(time.Millisecond), Worker: "host:42", Outcome: backend.OutcomeFailed, Error: "boom"},
			{Number: 2, StartedAt: t0.Add(time.Minute), Worker: "host:42", Outcome: backend.OutcomeLost},
			{Number: 3, StartedAt: time.Unix(0, -1), FinishedAt: time.Unix(0, math.MaxInt64), Worker: "é\x00\xff", Outcome: backend.OutcomePanicked, Error: "panic: ünïcode"},
		},
		{{Number: math.MaxInt64}, {Number: -1}},
	}
}

// FuzzDecodeAttempts feeds arbitrary bytes, as a corrupted attempts column
// would hold, to decodeAttempts: it must never panic; what it accepts must
// re-encode canonically (no longer than the input, and byte for byte equal
// when the input was canonical) and decode back to the same history; and
// appending one record built from the fuzz input, as Complete does in SQL,
// must decode to the old history plus that record.
func FuzzDecodeAttempts(f *testing.F) {
	for _, as := range fuzzAttempts() {
		f.Add(encodeAttempts(as), 7, int64(1743299999000000000), "worker", "failed: x")
	}
	valid := encodeAttempts(fuzzAttempts()[2])
	f.Add(valid[:len(valid)-1], 0, int64(0), "", "")                                         // truncated record
	f.Add([]byte{0x80}, 1, int64(-1), "w", "")                                               // truncated length
	f.Add([]byte{0x05, 0x01, 0x02, 0x02, 0x00, 0x00}, 1, int64(1), "", "")                   // record missing strings
	f.Add([]byte{0x07, 0x01, 0x02, 0x02, 0x00, 0x00, 0x00, 0xee}, 2, int64(2), "", "")       // a field added later
	f.Add([]byte{0x08, 0x81, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00}, 3, int64(3), "", "") // non-minimal varint
	f.Add([]byte{0x02, 0xff, 0xff}, 4, int64(4), "", "")                                     // length past the end
	f.Add(bytes.Repeat([]byte{0xff}, 11), 5, int64(5), "", "")                               // uvarint overflow
	f.Fuzz(func(t *testing.T, data []byte, number int, started int64, worker, errText string) {
		as, err := decodeAttempts(data)
		if err != nil {
			if as != nil {
				t.Fatalf("error %v came with attempts %v", err, as)
			}
			return
		}
		if as == nil {
			t.Fatal("decoded history is nil, want an empty slice")
		}
		enc := encodeAttempts(as)
		if len(enc) > len(data) {
			t.Fatalf("re-encoding is longer (%d bytes) than the input (%d bytes)", len(enc), len(data))
		}
		back, err := decodeAttempts(enc)
		if err != nil {
			t.Fatalf("re-encoded history does not decode: %v", err)
		}
		if d := cmp.Diff(as, back, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("history changed through encode and decode (-first +second):\n%s", d)
		}
		if !bytes.Equal(encodeAttempts(back), enc) {
			t.Fatal("encoding is not stable")
		}
		if isCanonicalAttempts(data) && !bytes.Equal(enc, data) {
			t.Fatalf("canonical input %x re-encodes to %x", data, enc)
		}

		// decode(x || record(a)) == decode(x) + [a] for an a built from the input.
		a := backend.Attempt{
			Number: number, StartedAt: fromNanos(started), FinishedAt: fromNanos(-started),
			Worker: worker, Outcome: backend.OutcomeFailed, Error: errText,
		}
		more, err := decodeAttempts(appendAttempt(bytes.Clone(data), a))
		if err != nil {
			t.Fatalf("appending a record broke a decodable history: %v", err)
		}
		if d := cmp.Diff(append(as, a), more, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("appended record did not decode as written (-want +got):\n%s", d)
		}
	})
}

// isCanonicalAttempts reports whether b is exactly what encodeAttempts writes:
// minimal varints and records without unknown trailing fields.
func isCanonicalAttempts(b []byte) bool {
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) || !bytes.Equal(binary.AppendUvarint(nil, n), b[:k]) {
			return false
		}
		rec := b[k : k+int(n)]
		b = b[k+int(n):]
		u, k := binary.Uvarint(rec) // number
		if k <= 0 || !bytes.Equal(binary.AppendUvarint(nil, u), rec[:k]) {
			return false
		}
		rec = rec[k:]
		for i := 0; i < 2; i++ { // started, finished
			v, k := binary.Varint(rec)
			if k <= 0 || !bytes.Equal(binary.AppendVarint(nil, v), rec[:k]) {
				return false
			}
			if v != 0 && nanos(time.Unix(0, v)) != v { // outside the stored range: read as its end
				return false
			}
			rec = rec[k:]
		}
		for i := 0; i < 3; i++ { // worker, outcome, error
			if rec = canonicalString(rec); rec == nil {
				return false
			}
		}
		if len(rec) != 0 {
			return false
		}
	}
	return true
}

// canonicalString consumes one minimally length-prefixed string from b and
// returns the rest (non-nil), or nil when b does not start with one.
func canonicalString(b []byte) []byte {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) || !bytes.Equal(binary.AppendUvarint(nil, n), b[:k]) {
		return nil
	}
	return b[k+int(n):]
}

// FuzzDecodeChain feeds arbitrary bytes, as a corrupted error_chain column
// would hold, to decodeStrings: it must never panic; what it accepts must
// re-encode canonically and decode back to the same messages; and the
// messages built from the fuzz input must survive encode and decode.
func FuzzDecodeChain(f *testing.F) {
	seeds := [][]string{
		nil,
		{""},
		{"send mail: dial smtp: connection refused", "dial smtp: connection refused", "connection refused"},
		{"\x00\xff", string(bytes.Repeat([]byte{'x'}, 300))},
	}
	for _, ss := range seeds {
		f.Add(encodeStrings(ss), "a", "b")
	}
	f.Add([]byte{0x05, 'a', 'b'}, "", "")           // length past the end
	f.Add([]byte{0x80}, "x", "")                    // truncated length
	f.Add([]byte{0x81, 0x00, 'z'}, "", "y")         // non-minimal length
	f.Add(bytes.Repeat([]byte{0xff}, 11), "p", "q") // uvarint overflow
	f.Fuzz(func(t *testing.T, data []byte, m1, m2 string) {
		ss, err := decodeStrings(data)
		if err == nil {
			if len(data) == 0 && ss != nil {
				t.Fatalf("empty column decoded to %q, want nil", ss)
			}
			enc := encodeStrings(ss)
			if len(enc) > len(data) {
				t.Fatalf("re-encoding is longer (%d bytes) than the input (%d bytes)", len(enc), len(data))
			}
			back, err := decodeStrings(enc)
			if err != nil {
				t.Fatalf("re-encoded chain does not decode: %v", err)
			}
			if d := cmp.Diff(ss, back); d != "" {
				t.Fatalf("chain changed through encode and decode (-first +second):\n%s", d)
			}
			if isCanonicalChain(data) && !bytes.Equal(enc, data) {
				t.Fatalf("canonical input %x re-encodes to %x", data, enc)
			}
		} else if ss != nil {
			t.Fatalf("error %v came with messages %q", err, ss)
		}

		// decode(encode(v)) == v for a chain built from the input.
		v := []string{m1, m2, string(data)}
		got, err := decodeStrings(encodeStrings(v))
		if err != nil {
			t.Fatalf("encoded chain %q does not decode: %v", v, err)
		}
		if d := cmp.Diff(v, got); d != "" {
			t.Fatalf("chain changed through encode and decode (-want +got):\n%s", d)
		}
	})
}

// isCanonicalChain reports whether b is exactly what encodeStrings writes.
func isCanonicalChain(b []byte) bool {
	for len(b) > 0 {
		if b = canonicalString(b); b == nil {
			return false
		}
	}
	return true
}
