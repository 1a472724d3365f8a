package redis

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/runtime/backend"
)

// TestAppendStaticMatchesMsgpack: the hand-written encoder of field d must
// produce exactly the bytes msgpack.Marshal makes of static (the records the
// other write paths store, and what decodeJob reads), across the size
// classes of every field.
func TestAppendStaticMatchesMsgpack(t *testing.T) {
	strs := []string{"", "a", strings.Repeat("s", 31), strings.Repeat("s", 32), strings.Repeat("s", 255),
		strings.Repeat("s", 256), strings.Repeat("s", 65535), strings.Repeat("s", 65536)}
	blobs := [][]byte{nil, {}, {0x90}, bytes.Repeat([]byte{1}, 255), bytes.Repeat([]byte{1}, 256),
		bytes.Repeat([]byte{1}, 65535), bytes.Repeat([]byte{1}, 65536)}
	durs := []time.Duration{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
		-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64}
	times := []time.Time{{}, time.Unix(0, 0), time.Now(), time.UnixMicro(1), time.UnixMicro(-1), backend.ClampTime(time.Unix(-1<<40, 0))}
	check := func(j *backend.Job) {
		t.Helper()
		want, err := msgpack.Marshal(static{Signature: j.Signature, Args: j.Args, Timeout: j.Timeout,
			TimeoutPolicy: j.TimeoutPolicy, StoreResult: j.StoreResult, Queue: j.Queue, Created: timeWord(j.CreatedAt), Meta: j.Meta})
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendStatic([]byte("prefix"), j)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[6:], want) || string(got[:6]) != "prefix" {
			t.Fatalf("appendStatic(sig %d bytes, args %d bytes, timeout %d, queue %d bytes, created %v) =\n%x\nwant\n%x",
				len(j.Signature), len(j.Args), j.Timeout, len(j.Queue), j.CreatedAt, got[6:min(len(got), 80)], want[:min(len(want), 74)])
		}
	}
	for _, s := range strs {
		check(&backend.Job{Signature: s, Queue: "q", TimeoutPolicy: backend.TimeoutFail})
		check(&backend.Job{Signature: "sig", Queue: s, TimeoutPolicy: backend.TimeoutPolicy(s), StoreResult: true})
	}
	for _, a := range blobs {
		check(&backend.Job{Signature: "sig", Args: a, Queue: "q"})
	}
	for _, d := range durs {
		check(&backend.Job{Signature: "sig", Timeout: d, Queue: "q", TimeoutPolicy: backend.TimeoutIgnore})
	}
	for _, c := range times {
		check(&backend.Job{Signature: "sig", Queue: "default", CreatedAt: c})
	}
	check(&backend.Job{Signature: "sig", Queue: "q", Meta: map[string]string{"k": "v"}})
	j := &backend.Job{Signature: "sig", Queue: "q", Meta: map[string]string{"k": "v"}}
	d, err := appendStatic(nil, j)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := decodeJob("id", map[string]string{"tk": "t", "st": "queued", "pk": prioKey(0), "ra": timeKey(time.Now()), "d": string(d)})
	if err != nil || got.Meta["k"] != "v" || got.Queue != "q" || got.Signature != "sig" {
		t.Fatalf("decodeJob of appendStatic's bytes: %+v, %v", got, err)
	}
}

// TestAppendKeys: the keys appended without fmt match timeKey and prioKey.
func TestAppendKeys(t *testing.T) {
	for _, p := range []int{0, 1, -1, 5, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64} {
		if got := string(appendPrioKey(nil, p)); got != prioKey(p) {
			t.Errorf("appendPrioKey(%d) = %s, want %s", p, got, prioKey(p))
		}
	}
	for _, tm := range []time.Time{time.Unix(0, 0), time.Now(), time.UnixMicro(-5), backend.ClampTime(time.Unix(1<<40, 0))} {
		if got := string(appendTimeKey(nil, tm)); got != timeKey(tm) {
			t.Errorf("appendTimeKey(%v) = %s, want %s", tm, got, timeKey(tm))
		}
	}
}
