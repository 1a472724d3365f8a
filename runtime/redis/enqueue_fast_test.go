package redis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
)

// TestEnqueueFastPathsStoreTheSame: the lean single and batch enqueue
// scripts (the plain and the general lean script of each; taken when the
// queues and tasks are registered and no job has a unique key) must leave
// Redis exactly as the general enqueue script does:
// the same records, indexes, locations and sets, key for key; and they must
// refuse a taken id, storing nothing of the batch.
func TestEnqueueFastPathsStoreTheSame(t *testing.T) {
	srv := redistest.Start(t)
	fast, slow := openTest(t, srv), openTest(t, srv)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	mk := func(id, q, task string, st backend.State, prio int, at time.Duration) *backend.Job {
		return &backend.Job{ID: id, Task: task, Signature: "sha256:00", Args: []byte{0x90}, Queue: q,
			State: st, Priority: prio, MaxAttempts: 3, RunAt: now.Add(at), StoreResult: true,
			TimeoutPolicy: backend.TimeoutFail, CreatedAt: now, Meta: map[string]string{"k": "v"}}
	}
	var warm, batch []*backend.Job
	var singles []*backend.Job
	for _, q := range []string{"qa", "qb"} {
		for _, task := range []string{"t.one", "t.two"} {
			warm = append(warm, mk(ulid.Make().String(), q, task, backend.StateQueued, 0, 0))
			singles = append(singles, mk(ulid.Make().String(), q, task, backend.StateQueued, 5, 0),
				mk(ulid.Make().String(), q, task, backend.StateScheduled, 0, time.Hour))
			for i := range 5 {
				st := backend.StateQueued
				if i%2 == 1 {
					st = backend.StateScheduled
				}
				batch = append(batch, mk(ulid.Make().String(), q, task, st, i-2, time.Duration(i)*time.Minute))
			}
		}
	}
	// Jobs the plain batch script does not take (an attempt limit of 0, a
	// history): the lean script with every field laid out by the client.
	var other []*backend.Job
	for i := range 6 {
		j := mk(ulid.Make().String(), []string{"qa", "qb"}[i%2], "t.one", backend.StateQueued, i, 0)
		if i%3 == 0 {
			j.MaxAttempts = 0
		} else {
			j.Attempt, j.Error = 1, "earlier"
			j.Attempts = []backend.Attempt{{Number: 1, StartedAt: now, FinishedAt: now, Worker: "w", Outcome: "failed", Error: "earlier"}}
		}
		other = append(other, j)
	}
	var others []*backend.Job
	for _, j := range other {
		c := *j
		c.ID = ulid.Make().String()
		others = append(others, &c)
	}
	if !plainBatch(batch) || plainBatch(other) || !plainBatch(singles) {
		t.Fatal("the batches would not take one lean script each")
	}
	for _, b := range []*Backend{fast, slow} {
		if _, err := b.Enqueue(ctx, warm); err != nil {
			t.Fatal(err)
		}
		if b.registered(batch) != 0 {
			t.Fatal("the warm-up did not register the queues and tasks")
		}
		enq := func(jobs []*backend.Job) error {
			if b == slow {
				b.regMu.Lock()
				clear(b.reg) // the general script
				b.regMu.Unlock()
			}
			_, err := b.Enqueue(ctx, jobs)
			return err
		}
		for _, j := range singles {
			if err := enq([]*backend.Job{j}); err != nil {
				t.Fatal(err)
			}
		}
		if err := enq(batch); err != nil {
			t.Fatal(err)
		}
		if err := enq(other); err != nil {
			t.Fatal(err)
		}
		// Singles the plain single script does not take: the lean one.
		for _, j := range others {
			if err := enq([]*backend.Job{j}); err != nil {
				t.Fatal(err)
			}
		}
		fresh := mk(ulid.Make().String(), "qa", "t.one", backend.StateQueued, 0, 0)
		if err := enq([]*backend.Job{singles[0]}); err == nil || !strings.Contains(err.Error(), "exists") {
			t.Fatalf("single enqueue of a taken id: err %v, want one saying it exists", err)
		}
		if err := enq([]*backend.Job{fresh, batch[3]}); err == nil || !strings.Contains(err.Error(), "exists") {
			t.Fatalf("batch with a taken id: err %v, want one saying it exists", err)
		}
		if _, err := b.Get(ctx, fresh.ID); err == nil {
			t.Fatal("a batch refused for a taken id stored another of its jobs")
		}
	}
	a, b := dumpKeys(t, fast), dumpKeys(t, slow)
	if len(a) < 20 {
		t.Fatalf("dumped %d keys; want the records and indexes", len(a))
	}
	if !slices.Equal(a, b) {
		for i := range max(len(a), len(b)) {
			var x, y string
			if i < len(a) {
				x = a[i]
			}
			if i < len(b) {
				y = b[i]
			}
			if x != y {
				t.Fatalf("first difference at line %d:\nfast:    %s\ngeneral: %s", i, x, y)
			}
		}
	}
}

// dumpKeys returns every key of b's prefix with its content, the prefix
// stripped, one line per key, sorted.
func dumpKeys(t *testing.T, b *Backend) []string {
	t.Helper()
	ctx := context.Background()
	keys, err := b.c.Keys(ctx, b.o.prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		typ := b.c.Type(ctx, k).Val()
		var v any
		switch typ {
		case "hash":
			m := b.c.HGetAll(ctx, k).Val()
			var kv []string
			for f, x := range m {
				kv = append(kv, f+"="+x)
			}
			slices.Sort(kv)
			v = kv
		case "zset":
			v = b.c.ZRange(ctx, k, 0, -1).Val()
		case "set":
			s := b.c.SMembers(ctx, k).Val()
			slices.Sort(s)
			v = s
		default:
			v = typ
		}
		out = append(out, fmt.Sprintf("%s %s %q", strings.TrimPrefix(k, b.o.prefix), typ, v))
	}
	slices.Sort(out)
	return out
}

// TestEnqueueManyLargeBatch: the lean batch scripts split their commands in
// chunks of 4,000 arguments (Lua's unpack has a limit); a batch of 9,000
// jobs crosses several chunk boundaries of every section and must store
// every job, in its indexes, claimable in order; by the plain script and by
// the general lean one.
func TestEnqueueManyLargeBatch(t *testing.T) {
	for _, plain := range []bool{true, false} {
		t.Run(fmt.Sprint("plain=", plain), func(t *testing.T) { testEnqueueManyLargeBatch(t, plain) })
	}
}

func testEnqueueManyLargeBatch(t *testing.T, plain bool) {
	srv := redistest.Start(t)
	b := openTest(t, srv)
	ctx := context.Background()
	now := time.Now()
	if _, err := b.Enqueue(ctx, benchJobs(1, now)); err != nil {
		t.Fatal(err)
	}
	jobs := benchJobs(9000, now)
	for i, j := range jobs {
		j.Priority = i % 3 // three runs of 3,000 for the plain script
		if !plain {
			j.MaxAttempts = 0
		}
	}
	if b.registered(jobs) != 0 || !noUniqueKeys(jobs) || plainBatch(jobs) != plain {
		t.Fatal("the batch would not take the lean script")
	}
	if _, err := b.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	stats, err := b.Stats(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range stats {
		if s.State == backend.StateQueued {
			n += s.Count
		}
	}
	if n != 9001 {
		t.Fatalf("Stats counts %d queued jobs, want 9001", n)
	}
	for _, j := range []*backend.Job{jobs[0], jobs[4321], jobs[8999]} {
		got, err := b.Get(ctx, j.ID)
		if err != nil || got.State != backend.StateQueued || got.Task != j.Task {
			t.Fatalf("Get(%s) = %+v, %v", j.ID, got, err)
		}
	}
	claimed := 0
	for claimed < 9001 {
		js, err := b.Claim(ctx, backend.ClaimRequest{Limit: 1000, Worker: "w", Now: now.Add(time.Second), LeaseFor: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if len(js) == 0 {
			break
		}
		claimed += len(js)
	}
	if claimed != 9001 {
		t.Fatalf("claimed %d jobs, want 9001", claimed)
	}
	// A second batch holding one stored id is refused whole.
	again := benchJobs(5000, now)
	again[4999] = jobs[8999]
	if _, err := b.Enqueue(ctx, again); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("batch with a stored id: err %v, want one saying it exists", err)
	}
	if _, err := b.Get(ctx, again[0].ID); err == nil {
		t.Fatal("a refused batch stored one of its jobs")
	}
}

// TestEnqueuePlainLargeMixedBatch: a plain batch of 4,500 jobs over three
// queues, two tasks, three states' worth of runs (queued and scheduled,
// several priorities and run-ats) crosses the script's 4,000-argument flush
// inside a queue and inside runs; it must store exactly what the general
// script stores, key for key.
func TestEnqueuePlainLargeMixedBatch(t *testing.T) {
	srv := redistest.Start(t)
	fast, slow := openTest(t, srv), openTest(t, srv)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	var warm, batch []*backend.Job
	for _, q := range []string{"qa", "qb", "qc"} {
		for _, task := range []string{"t.one", "t.two"} {
			warm = append(warm, &backend.Job{ID: ulid.Make().String(), Task: task, Signature: "s", Queue: q,
				State: backend.StateQueued, MaxAttempts: 1, RunAt: now, CreatedAt: now})
		}
		for i := range 1500 {
			j := &backend.Job{ID: ulid.Make().String(), Task: []string{"t.one", "t.two"}[i%2], Signature: "sha256:00",
				Args: []byte{byte(i), byte(i >> 8)}, Queue: q, State: backend.StateQueued, Priority: i % 3, MaxAttempts: 1 + i%2,
				RunAt: now.Add(time.Duration(i%4) * time.Second), CreatedAt: now, StoreResult: i%5 == 0}
			if i%7 == 0 {
				j.State, j.RunAt = backend.StateScheduled, now.Add(time.Hour)
			}
			batch = append(batch, j)
		}
	}
	if !plainBatch(batch) {
		t.Fatal("the batch is not plain")
	}
	for _, b := range []*Backend{fast, slow} {
		if _, err := b.Enqueue(ctx, warm); err != nil {
			t.Fatal(err)
		}
		if b == slow {
			b.regMu.Lock()
			clear(b.reg) // the general script
			b.regMu.Unlock()
		} else if b.registered(batch) != 0 {
			t.Fatal("the warm-up did not register the queues and tasks")
		}
		if _, err := b.Enqueue(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	a, b := dumpKeys(t, fast), dumpKeys(t, slow)
	if len(a) < 4500 {
		t.Fatalf("dumped %d keys; want the records and indexes", len(a))
	}
	if !slices.Equal(a, b) {
		for i := range max(len(a), len(b)) {
			if i >= len(a) || i >= len(b) || a[i] != b[i] {
				x, y := "", ""
				if i < len(a) {
					x = a[i][:min(len(a[i]), 300)]
				}
				if i < len(b) {
					y = b[i][:min(len(b[i]), 300)]
				}
				t.Fatalf("first difference at line %d:\nplain:   %s\ngeneral: %s", i, x, y)
			}
		}
	}
}
