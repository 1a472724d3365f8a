package schedule_test

import (
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/schedule"
)

// fuzzZones are the zones FuzzTiming reads specs in: UTC, both hemispheres'
// daylight-saving rules, a 30-minute DST shift and odd fixed offsets.
var fuzzZones = []string{"", "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
	"Asia/Kathmandu", "Pacific/Chatham", "America/Sao_Paulo", "Asia/Tehran"}

// fuzzKinds are the schedule kinds, indexed by FuzzTiming's kind argument.
var fuzzKinds = []nuvom.ScheduleKind{nuvom.ScheduleCron, nuvom.ScheduleInterval, nuvom.ScheduleOnce}

// FuzzTiming feeds arbitrary spec and zone text to the schedule parsers
// (ParseCron, LoadZone, TimingOf for every kind, Build): they must never
// panic. When a spec parses (in a zone from fuzzZones), its fire times after
// t (a fixed base time moved by up to two years, so that daylight-saving
// changes are crossed) must be strictly increasing for a few steps, Build's
// first run must lie after its now, and DueTimes a while later (up to an hour
// for cron, up to 292 years for an interval) must return
// increasing due times no later than then and a next run after it.
func FuzzTiming(f *testing.F) {
	seeds := []struct {
		kind uint8
		spec string
	}{
		{0, "0 3 * * *"}, {0, "30 2 * * *"}, {0, "*/15 * * * *"}, {0, "0 0 1 1 *"}, {0, "0 0 30 2 *"},
		{0, "*/7 * * * * *"}, {0, "0 30 1 * * SUN"}, {0, "@hourly"}, {0, "@every 90s"}, {0, "@every 0s"},
		{0, "@every -1s"}, {0, "TZ=UTC 0 3 * * *"}, {0, "CRON_TZ=Europe/Berlin 0 3 * * *"}, {0, " "},
		{0, "0 0 29 2 MON"}, {0, "5-4 * * * *"}, {0, "0 0 ? * 1-5"}, {0, "60 * * * *"},
		{1, "1h"}, {1, "90s"}, {1, "1ns"}, {1, "-5m"}, {1, "0s"}, {1, "2562047h"}, {1, "1.5h"},
		{2, "2025-03-30T02:30:00Z"}, {2, "2020-01-01T00:00:00+01:00"}, {2, "2025-13-01T00:00:00Z"},
		{2, "9999-12-31T23:59:59.999999999Z"}, {3, "0 3 * * *"},
	}
	for i, s := range seeds {
		f.Add(s.kind, s.spec, fuzzZones[i%len(fuzzZones)], uint8(i), int64(i)*int64(37*24*time.Hour+time.Hour), int64(i)*int64(time.Minute))
	}
	// A 200-year interval whose dispatcher was down for 250 years: (k+1)*every overflowed.
	f.Add(uint8(1), "1752000h", "", uint8(0), int64(0), int64(250*365*24*time.Hour))
	f.Add(uint8(0), "0 3 * * *", "Local", uint8(2), int64(0), int64(0))
	f.Add(uint8(0), "0 3 * * *", "../../etc/passwd", uint8(3), int64(0), int64(0))
	f.Add(uint8(0), "0 3 * * *", "Mars/Olympus_Mons", uint8(4), int64(0), int64(0))
	base := time.Date(2025, 3, 30, 0, 30, 0, 0, time.UTC)
	const span = int64(2 * 365 * 24 * time.Hour)
	f.Fuzz(func(t *testing.T, kind uint8, spec, zone string, zoneIdx uint8, offset, lag int64) {
		// Arbitrary text: never panic.
		_, _ = schedule.LoadZone(zone)
		_, _ = schedule.ParseCron(spec, zone)
		_, _ = schedule.Build(nuvom.TaskSpec{Name: "t"}, nil, nuvom.Cron(spec, zone), base)

		k := fuzzKinds[int(kind)%len(fuzzKinds)]
		sc := schedule.Schedule{ID: "s", Kind: k, Spec: spec, Zone: fuzzZones[int(zoneIdx)%len(fuzzZones)]}
		if k != nuvom.ScheduleCron {
			sc.Zone = ""
		}
		tm, err := schedule.TimingOf(&sc)
		if err != nil {
			return
		}
		at := base.Add(time.Duration(offset % span))
		anchor := base
		prev := at
		for i := 0; i < 5; i++ {
			next := tm.Next(anchor, prev)
			if next.IsZero() {
				break
			}
			if !next.After(prev) {
				t.Fatalf("%s %q in %q: fire time %d after %s is %s, not later", k, spec, sc.Zone, i+1, prev, next)
			}
			if next.Location() != time.UTC {
				t.Fatalf("%s %q: fire time %s is not in UTC", k, spec, next)
			}
			prev = next
		}
		if p := tm.Period(at); p < 0 {
			t.Fatalf("%s %q: period %s is negative", k, spec, p)
		}

		// Build from the same spec, then ask what is due a while after its first run.
		when := nuvom.ScheduleSpec{Kind: k, Zone: sc.Zone, Misfire: nuvom.MisfireCatchUp, CatchUpLimit: 5}
		switch k {
		case nuvom.ScheduleCron:
			when.Cron = spec
		case nuvom.ScheduleInterval:
			when.Every, _ = time.ParseDuration(spec)
		case nuvom.ScheduleOnce:
			when.At, _ = time.Parse(time.RFC3339Nano, spec)
		}
		built, err := schedule.Build(nuvom.TaskSpec{Name: "t"}, nil, when, at)
		if err != nil {
			if k == nuvom.ScheduleOnce {
				return // a one-off at or before now is refused
			}
			t.Fatalf("%s %q parses but Build refuses it: %v", k, spec, err)
		}
		if built.NextRun.IsZero() {
			return // a cron spec with no fire time in the next years
		}
		if !built.NextRun.After(at) {
			t.Fatalf("%s %q: Build at %s gives first run %s, not later", k, spec, at, built.NextRun)
		}
		late := time.Duration(lag).Abs() // interval ticks due are computed, not walked: any lag
		if k != nuvom.ScheduleInterval {
			late = time.Duration(lag % int64(time.Hour)).Abs() // cron ticks are walked one by one
		}
		now := built.NextRun.Add(late)
		due, next := schedule.DueTimes(&built, tm, now, 0)
		if len(due) == 0 || len(due) > 5 {
			t.Fatalf("%s %q: %d ticks due at %s, want 1 to 5 (first run %s)", k, spec, len(due), now, built.NextRun)
		}
		for i, d := range due {
			if d.After(now) || d.Before(built.NextRun) || (i > 0 && !d.After(due[i-1])) {
				t.Fatalf("%s %q: due times %v at %s are not increasing within [%s, now]", k, spec, due, now, built.NextRun)
			}
		}
		if !next.IsZero() && !next.After(now) {
			t.Fatalf("%s %q: next run %s after the due ticks is not after now %s", k, spec, next, now)
		}
		if k == nuvom.ScheduleOnce && !next.IsZero() {
			t.Fatalf("one-off %q has a next run %s after firing", spec, next)
		}
	})
}
