package file

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/runtime/backend"
)

// FuzzDecodeJob feeds arbitrary bytes, as a damaged or foreign job file would
// hold, to decodeJob: it must never panic, every failure must wrap
// ErrCorrupt, a decoded job must hold a job id and a valid state, asking for
// another id must fail, and the job must re-encode and decode to the same job
// with the same bytes again.
func FuzzDecodeJob(f *testing.F) {
	t0 := time.Date(2025, 10, 26, 2, 30, 0, 123456789, time.FixedZone("CEST", 2*3600))
	full := &backend.Job{
		ID: "01JABCDEF0123456789ABCDEFG", Task: "send_email", Signature: "sha256:abc", Args: []byte{0x92, 0xa1, 'a', 0x01},
		Queue: "mail", Priority: -3, State: backend.StateRetrying, Attempt: 2, MaxAttempts: 5,
		RunAt: t0, Timeout: 30 * time.Second, TimeoutPolicy: backend.TimeoutRetry, StoreResult: true,
		UniqueKey: "sched:x:1", UniqueUntil: t0.Add(time.Hour), CreatedAt: t0.Add(-time.Minute),
		StartedAt: t0, FinishedAt: t0.Add(time.Second), Result: []byte{0xc0}, Error: "boom",
		ErrorChain: []string{"boom", "inner"}, PanicStack: "goroutine 1 [running]:",
		Attempts: []backend.Attempt{
			{Number: 1, StartedAt: t0, FinishedAt: t0.Add(time.Second), Worker: "w:1", Outcome: backend.OutcomeFailed, Error: "boom"},
			{Number: 2, StartedAt: t0.Add(time.Minute), Worker: "w:2", Outcome: backend.OutcomeLost},
		},
		LeaseOwner: "w:2", LeaseToken: 7, LeaseUntil: t0.Add(2 * time.Minute),
	}
	minimal := &backend.Job{ID: "j1", State: backend.StateQueued}
	for _, j := range []*backend.Job{full, minimal} {
		data, err := encodeJob(j)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2]) // a torn write
	}
	for _, v := range []any{
		map[string]any{"id": "j2", "state": "queued", "attempts": nil, "run_at": nil},
		map[string]any{"id": "j3", "state": "bogus"},
		map[string]any{"id": "", "state": "queued"},
		map[string]any{"id": "j4", "state": "failed", "priority": "high"},
		map[string]any{"id": "j5", "state": "succeeded", "unknown_field": []int{1, 2}, "args": "text"},
		[]any{"j6", "queued"},
	} {
		data, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte(`{"id":"j7","state":"queued"}`)) // JSON, not msgpack
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})   // a map claiming 4G entries
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := decodeJob(data, "")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v does not wrap ErrCorrupt", err)
			}
			if j != nil {
				t.Fatalf("error %v came with a job", err)
			}
			return
		}
		if j.ID == "" || !j.State.Valid() || j.Attempts == nil {
			t.Fatalf("decoded job has id %q, state %q, attempts %v", j.ID, j.State, j.Attempts)
		}
		if _, err := decodeJob(data, j.ID); err != nil {
			t.Fatalf("decoding as its own id %q: %v", j.ID, err)
		}
		if _, err := decodeJob(data, j.ID+"x"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decoding as another id = %v, want ErrCorrupt", err)
		}
		enc, err := encodeJob(j)
		if err != nil {
			t.Fatalf("decoded job does not encode: %v", err)
		}
		j2, err := decodeJob(enc, j.ID)
		if err != nil {
			t.Fatalf("re-encoded job does not decode: %v", err)
		}
		if d := cmp.Diff(j, j2); d != "" {
			t.Fatalf("job changed through encode and decode (-first +second):\n%s", d)
		}
		enc2, err := encodeJob(j2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%x\n%x", enc, enc2)
		}
	})
}

// TestUnmarshalNilTime checks that a nil where a time is expected, which
// makes msgpack v5.4.1 panic, is a decode error for job files (nested in an
// attempt too) and unique-key index files alike.
func TestUnmarshalNilTime(t *testing.T) {
	tests := []struct {
		name string
		v    any
		into any
	}{
		{"job run_at", map[string]any{"id": "j", "state": "queued", "run_at": nil}, &backend.Job{}},
		{"attempt started_at", map[string]any{"id": "j", "state": "queued", "attempts": []any{map[string]any{"started_at": nil}}}, &backend.Job{}},
		{"unique index until", map[string]any{"key": "k", "id": "j", "until": nil}, &uniqueIndex{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := msgpack.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if err := unmarshal(data, tt.into); err == nil {
				t.Fatalf("unmarshal of %x succeeded, want an error", data)
			}
		})
	}
}
