// Package storetest is the conformance suite every schedule.Store passes.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/schedule"
)

// Opener opens a handle on one storage; calling it again opens another handle
// on the same storage (another process would), or returns the same store when
// the storage is in-process.
type Opener func() (schedule.Store, error)

// Run runs the suite. newStorage returns an opener for fresh, empty storage.
func Run(t *testing.T, newStorage func(t *testing.T) Opener) {
	cases := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"UpsertGetList", testUpsertGetList},
		{"NotFound", testNotFound},
		{"Delete", testDelete},
		{"PauseResume", testPauseResume},
		{"AdvanceCAS", testAdvanceCAS},
		{"AdvanceRace", testAdvanceRace},
		{"Lease", testLease},
		{"Update", testUpdate},
		{"UpdateRace", testUpdateRace},
		{"AnnotationSets", testAnnotationSets},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, newStorage(t))
		})
	}
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustOpen(t *testing.T, open Opener) schedule.Store {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sample(id string) schedule.Schedule {
	return schedule.Schedule{
		ID: id,
		Task: nuvom.TaskSpec{Name: "shop.Report", Signature: "sig123", Options: nuvom.TaskOptions{
			Queue: "reports", Priority: 3, Retries: 2, Timeout: time.Minute, TimeoutPolicy: nuvom.TimeoutRetry,
			Tags: []string{"a", "b"}, StoreResult: true, Version: 1, Cron: "0 3 * * *", Zone: "Europe/Berlin"}},
		Args:         []byte{0x92, 0xa3, 'a', '.', 'p', 0x10},
		Kind:         nuvom.ScheduleCron,
		Spec:         "0 3 * * *",
		Zone:         "Europe/Berlin",
		NextRun:      base.Add(time.Hour),
		LastRun:      base.Add(-time.Hour),
		LastJobID:    "01JOB",
		Misfire:      nuvom.MisfireCatchUp,
		CatchUpLimit: 5,
		Jitter:       3 * time.Second,
		Source:       schedule.SourceUser,
		CreatedAt:    base,
		UpdatedAt:    base,
	}
}

var cmpOpts = cmp.Options{cmpopts.EquateEmpty()}

func testUpsertGetList(t *testing.T, open Opener) {
	ctx := context.Background()
	s := mustOpen(t, open)
	if got, err := s.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("List on empty store = %v, %v; want none", got, err)
	}
	b, a := sample("b"), sample("a")
	a.Source, a.Kind, a.Spec, a.Zone = schedule.SourceAnnotation, nuvom.ScheduleInterval, "1h0m0s", ""
	a.Anchor = base.Add(time.Hour)
	a.NextRun = time.Date(2026, 3, 1, 13, 0, 0, 123456789, time.FixedZone("x", 3600)) // stored in UTC
	for _, sc := range []schedule.Schedule{b, a} {
		if err := s.Upsert(ctx, sc); err != nil {
			t.Fatalf("Upsert %s: %v", sc.ID, err)
		}
	}
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatalf("Get a: %v", err)
	}
	if diff := cmp.Diff(schedule.Normalize(a), got, cmpOpts); diff != "" {
		t.Errorf("Get a (-want +got):\n%s", diff)
	}
	if got.NextRun.Location() != time.UTC {
		t.Errorf("NextRun location = %v, want UTC", got.NextRun.Location())
	}
	// A second handle sees the same.
	s2 := mustOpen(t, open)
	list, err := s2.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 2 || list[0].ID != "a" || list[1].ID != "b" {
		t.Fatalf("List ids = %v, want [a b]", ids(list))
	}
	if diff := cmp.Diff(schedule.Normalize(b), list[1], cmpOpts); diff != "" {
		t.Errorf("List[1] (-want +got):\n%s", diff)
	}
	// Upsert replaces.
	b.Spec, b.Paused = "*/5 * * * *", true
	if err := s2.Upsert(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err = s.Get(ctx, "b")
	if err != nil || got.Spec != "*/5 * * * *" || !got.Paused {
		t.Fatalf("after replace Get b = %+v, %v", got, err)
	}
	if err := s.Upsert(ctx, schedule.Schedule{}); err == nil {
		t.Errorf("Upsert with empty id: no error")
	}
}

func ids(l []schedule.Schedule) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = s.ID
	}
	return out
}

func testNotFound(t *testing.T, open Opener) {
	ctx := context.Background()
	s := mustOpen(t, open)
	checks := map[string]error{}
	_, checks["Get"] = s.Get(ctx, "nope")
	checks["Delete"] = s.Delete(ctx, "nope")
	checks["Pause"] = s.Pause(ctx, "nope", base)
	checks["Resume"] = s.Resume(ctx, "nope", base, base)
	_, checks["Advance"] = s.Advance(ctx, "nope", schedule.Advance{Now: base})
	for _, op := range []string{"Get", "Delete", "Pause", "Resume", "Advance"} {
		if !errors.Is(checks[op], schedule.ErrNotFound) {
			t.Errorf("%s of a missing schedule: err = %v, want ErrNotFound", op, checks[op])
		}
	}
}

func testDelete(t *testing.T, open Opener) {
	ctx := context.Background()
	s := mustOpen(t, open)
	for _, id := range []string{"x", "y"} {
		if err := s.Upsert(ctx, sample(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "x"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "x"); !errors.Is(err, schedule.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	list, _ := s.List(ctx)
	if len(list) != 1 || list[0].ID != "y" {
		t.Errorf("List after Delete = %v, want [y]", ids(list))
	}
}

func testPauseResume(t *testing.T, open Opener) {
	ctx := context.Background()
	s := mustOpen(t, open)
	if err := s.Upsert(ctx, sample("p")); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(ctx, "p", base.Add(time.Minute)); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	got, _ := s.Get(ctx, "p")
	if !got.Paused || !got.UpdatedAt.Equal(base.Add(time.Minute)) {
		t.Errorf("after Pause: paused %v updated %v", got.Paused, got.UpdatedAt)
	}
	next := base.Add(48 * time.Hour)
	if err := s.Resume(ctx, "p", next, base.Add(2*time.Minute)); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	got, _ = s.Get(ctx, "p")
	if got.Paused || !got.NextRun.Equal(next) {
		t.Errorf("after Resume: paused %v next %v, want false %v", got.Paused, got.NextRun, next)
	}
}

func testAdvanceCAS(t *testing.T, open Opener) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := sample("c")
	if err := s.Upsert(ctx, sc); err != nil {
		t.Fatal(err)
	}
	a := schedule.Advance{From: sc.NextRun.Add(time.Second), NextRun: sc.NextRun.Add(time.Hour), LastRun: sc.NextRun, LastJobID: "J1", Now: base}
	if ok, err := s.Advance(ctx, "c", a); err != nil || ok {
		t.Fatalf("Advance from a wrong next run = %v, %v; want false, nil", ok, err)
	}
	a.From = sc.NextRun.In(time.FixedZone("y", -7200)) // the same instant, another zone
	if ok, err := s.Advance(ctx, "c", a); err != nil || !ok {
		t.Fatalf("Advance = %v, %v; want true", ok, err)
	}
	got, _ := s.Get(ctx, "c")
	if !got.NextRun.Equal(a.NextRun) || !got.LastRun.Equal(a.LastRun) || got.LastJobID != "J1" {
		t.Errorf("after Advance: next %v last %v job %s", got.NextRun, got.LastRun, got.LastJobID)
	}
	if ok, _ := s.Advance(ctx, "c", a); ok {
		t.Errorf("second Advance from the same next run succeeded")
	}
	// Advancing to zero (a one-off done) and keeping LastJobID when none is given.
	z := schedule.Advance{From: a.NextRun, Now: base}
	if ok, err := s.Advance(ctx, "c", z); err != nil || !ok {
		t.Fatalf("Advance to zero = %v, %v", ok, err)
	}
	got, _ = s.Get(ctx, "c")
	if !got.NextRun.IsZero() || got.LastJobID != "J1" {
		t.Errorf("after Advance to zero: next %v job %q", got.NextRun, got.LastJobID)
	}
}

func testAdvanceRace(t *testing.T, open Opener) {
	ctx := context.Background()
	sc := sample("r")
	s := mustOpen(t, open)
	if err := s.Upsert(ctx, sc); err != nil {
		t.Fatal(err)
	}
	const n = 6
	stores := make([]schedule.Store, n)
	for i := range stores {
		stores[i] = mustOpen(t, open)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for round := 0; round < 5; round++ {
		from := sc.NextRun.Add(time.Duration(round) * time.Hour)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				ok, err := stores[i].Advance(ctx, "r", schedule.Advance{From: from, NextRun: from.Add(time.Hour), LastJobID: fmt.Sprint(i), Now: base})
				if err != nil {
					t.Errorf("Advance: %v", err)
				}
				if ok {
					wins.Add(1)
				}
			}(i)
		}
		wg.Wait()
		if got := wins.Swap(0); got != 1 {
			t.Fatalf("round %d: %d of %d racing Advances won, want exactly 1", round, got, n)
		}
	}
}

func testLease(t *testing.T, open Opener) {
	ctx := context.Background()
	a, b := mustOpen(t, open), mustOpen(t, open)
	ttl := 10 * time.Second
	step := func(s schedule.Store, owner string, at time.Duration, want bool) {
		t.Helper()
		ok, err := s.AcquireLease(ctx, owner, base.Add(at), ttl)
		if err != nil || ok != want {
			t.Fatalf("AcquireLease(%s at +%s) = %v, %v; want %v", owner, at, ok, err, want)
		}
	}
	step(a, "A", 0, true)
	step(b, "B", time.Second, false)
	step(a, "A", 5*time.Second, true) // renew: now held until +15s
	step(b, "B", 12*time.Second, false)
	step(b, "B", 16*time.Second, true) // expired: B takes over
	step(a, "A", 17*time.Second, false)
	if err := a.ReleaseLease(ctx, "A"); err != nil { // not A's: no effect
		t.Fatal(err)
	}
	step(a, "A", 18*time.Second, false)
	if err := b.ReleaseLease(ctx, "B"); err != nil {
		t.Fatal(err)
	}
	step(a, "A", 19*time.Second, true)
}

func testUpdate(t *testing.T, open Opener) {
	ctx := context.Background()
	s := mustOpen(t, open)
	calls := 0
	put := func(cur schedule.Schedule, found bool, newest int64) (schedule.Schedule, schedule.Action) {
		calls++
		if found {
			t.Errorf("Update of a missing schedule: found = true")
		}
		return sample("u"), schedule.Put
	}
	if act, err := s.Update(ctx, "u", put); err != nil || act != schedule.Put || calls != 1 {
		t.Fatalf("Update (insert) = %v, %v after %d calls", act, err, calls)
	}
	s2 := mustOpen(t, open)
	if got, err := s2.Get(ctx, "u"); err != nil || !cmp.Equal(schedule.Normalize(sample("u")), got, cmpOpts) {
		t.Fatalf("after Update insert: %+v, %v", got, err)
	}
	act, err := s2.Update(ctx, "u", func(cur schedule.Schedule, found bool, newest int64) (schedule.Schedule, schedule.Action) {
		if !found || cur.LastJobID != "01JOB" {
			t.Errorf("Update read found %v last job %q", found, cur.LastJobID)
		}
		cur.LastJobID = "02JOB"
		return cur, schedule.Put
	})
	if err != nil || act != schedule.Put {
		t.Fatalf("Update (replace) = %v, %v", act, err)
	}
	if got, _ := s.Get(ctx, "u"); got.LastJobID != "02JOB" {
		t.Errorf("after Update replace: last job %q", got.LastJobID)
	}
	keep := func(cur schedule.Schedule, found bool, newest int64) (schedule.Schedule, schedule.Action) {
		cur.Paused = true
		return cur, schedule.Keep
	}
	if act, err := s.Update(ctx, "u", keep); err != nil || act != schedule.Keep {
		t.Fatalf("Update (keep) = %v, %v", act, err)
	}
	if got, _ := s.Get(ctx, "u"); got.Paused {
		t.Errorf("Update with Keep changed the schedule")
	}
	if _, err := s.Update(ctx, "u", func(cur schedule.Schedule, found bool, newest int64) (schedule.Schedule, schedule.Action) {
		cur.ID = "other"
		return cur, schedule.Put
	}); err == nil {
		t.Errorf("Update that changes the id: no error")
	}
	remove := func(cur schedule.Schedule, found bool, newest int64) (schedule.Schedule, schedule.Action) {
		return cur, schedule.Remove
	}
	if act, err := s.Update(ctx, "u", remove); err != nil || act != schedule.Remove {
		t.Fatalf("Update (remove) = %v, %v", act, err)
	}
	if _, err := s2.Get(ctx, "u"); !errors.Is(err, schedule.ErrNotFound) {
		t.Errorf("after Update remove: %v, want ErrNotFound", err)
	}
	if act, err := s.Update(ctx, "u", remove); err != nil || act != schedule.Keep {
		t.Errorf("Update removing a missing schedule = %v, %v; want Keep", act, err)
	}
}

// testUpdateRace: concurrent read-modify-writes through Update on several
// handles lose no update.
func testUpdateRace(t *testing.T, open Opener) {
	ctx := context.Background()
	const n, rounds = 4, 5
	stores := make([]schedule.Store, n)
	for i := range stores {
		stores[i] = mustOpen(t, open)
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(s schedule.Store) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				_, err := s.Update(ctx, "c", func(cur schedule.Schedule, found bool, newest int64) (schedule.Schedule, schedule.Action) {
					if !found {
						cur = sample("c")
						cur.CatchUpLimit = 0
					}
					cur.CatchUpLimit++
					return cur, schedule.Put
				})
				if err != nil {
					t.Errorf("Update: %v", err)
				}
			}
		}(stores[i])
	}
	wg.Wait()
	got, err := stores[0].Get(ctx, "c")
	if err != nil || got.CatchUpLimit != n*rounds {
		t.Fatalf("after %d racing increments: %d, %v", n*rounds, got.CatchUpLimit, err)
	}
}

func testAnnotationSets(t *testing.T, open Opener) {
	ctx := context.Background()
	a, b := mustOpen(t, open), mustOpen(t, open)
	reg := func(s schedule.Store, fp string, at time.Duration, wantGen, wantNewest int64, wantFirst time.Duration) {
		t.Helper()
		set, newest, err := s.RegisterAnnotationSet(ctx, fp, base.Add(at))
		if err != nil || set.Fingerprint != fp || set.Generation != wantGen || newest != wantNewest || !set.FirstSeen.Equal(base.Add(wantFirst)) {
			t.Fatalf("RegisterAnnotationSet(%s) = %+v, %d, %v; want generation %d, newest %d, first seen +%s", fp, set, newest, err, wantGen, wantNewest, wantFirst)
		}
	}
	newestSeen := func(s schedule.Store) int64 {
		var got int64 = -1
		if _, err := s.Update(ctx, "x", func(cur schedule.Schedule, found bool, newest int64) (schedule.Schedule, schedule.Action) {
			got = newest
			return cur, schedule.Keep
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := newestSeen(a); got != 0 {
		t.Errorf("Update sees newest generation %d before any set, want 0", got)
	}
	reg(a, "old", 0, 1, 1, 0)
	reg(b, "new", time.Minute, 2, 2, time.Minute)
	reg(a, "old", 2*time.Minute, 1, 2, 0) // known: keeps its generation
	reg(b, "new", 3*time.Minute, 2, 2, time.Minute)
	if got := newestSeen(a); got != 2 {
		t.Errorf("Update sees newest generation %d, want 2", got)
	}
	reg(a, "newer", 4*time.Minute, 3, 3, 4*time.Minute)
}
