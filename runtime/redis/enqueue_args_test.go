package redis

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/internal/redistest"

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

// TestFreshRecordVersion: an enqueued record has no version field (absent is
// the first version, ""), by every enqueue path; a compare-and-set against
// "" applies to it, and one against "" after the job was claimed does not:
// the first write gives it version 1.
func TestFreshRecordVersion(t *testing.T) {
	srv := redistest.Start(t)
	b := openTest(t, srv)
	ctx := context.Background()
	now := time.Now()
	first := benchJobs(1, now) // the general script (queue not registered yet)
	if _, err := b.Enqueue(ctx, first); err != nil {
		t.Fatal(err)
	}
	single, batch := benchJobs(1, now), benchJobs(3, now)
	for _, jobs := range [][]*backend.Job{single, batch} {
		if b.registered(jobs) != 0 {
			t.Fatal("the queue and task are not registered: the lean scripts would not run")
		}
		if _, err := b.Enqueue(ctx, jobs); err != nil {
			t.Fatal(err)
		}
	}
	p := b.qp("default")
	for _, j := range append(append(first, single...), batch...) {
		f := b.c.HGetAll(ctx, p+"j:"+j.ID).Val()
		if _, ok := f["v"]; ok || f["st"] != "queued" {
			t.Fatalf("record of %s: %v; want state queued and no v field", j.ID, f)
		}
	}
	cas := func(id, v string) int64 {
		t.Helper()
		r, err := b.run(ctx, casScript, b.meta("default"), p, b.ch, id, v, 0, "ma", 7)
		if err != nil {
			t.Fatal(err)
		}
		return r.(int64)
	}
	if got := cas(first[0].ID, ""); got != 1 {
		t.Fatalf("compare-and-set of a fresh record against version \"\" = %d, want 1 (applied)", got)
	}
	if got := cas(first[0].ID, ""); got != 0 {
		t.Fatalf("second compare-and-set against version \"\" = %d, want 0 (changed)", got)
	}
	claimed, err := b.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Now: now.Add(time.Second), LeaseFor: time.Minute})
	if err != nil || len(claimed) != 5 {
		t.Fatalf("Claim: %d jobs, %v; want 5", len(claimed), err)
	}
	if got := cas(batch[0].ID, ""); got != 0 {
		t.Fatalf("compare-and-set of a claimed job against its enqueued version \"\" = %d, want 0", got)
	}
	if err := b.Cancel(ctx, batch[1].ID, now); err != nil {
		t.Fatal(err)
	}
	if j, err := b.Get(ctx, batch[1].ID); err != nil || j.State != backend.StateCancelled {
		t.Fatalf("Get after Cancel: %+v, %v", j, err)
	}
}
