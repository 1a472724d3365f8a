package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nuvom/nuvom"
)

// cronParser reads 5 fields, an optional leading seconds field, and descriptors
// such as @hourly and @every 90s.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// starBit is robfig/cron's marker of a field written as "*".
const starBit = 1 << 63

// Timing computes the fire times of one schedule spec.
type Timing struct {
	kind  nuvom.ScheduleKind
	cron  cron.Schedule
	loc   *time.Location
	every time.Duration
	at    time.Time
}

// LoadZone returns the IANA time zone name ("" and "UTC" mean UTC).
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, fmt.Errorf("time zone %q: name an IANA zone such as Europe/Berlin", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: want an IANA name such as Europe/Berlin or UTC", name)
	}
	return loc, nil
}

// ParseCron checks a cron expression read in zone and returns its timing.
func ParseCron(expr, zone string) (Timing, error) {
	e := strings.TrimSpace(expr)
	if e == "" {
		return Timing{}, errors.New("empty cron spec")
	}
	if strings.HasPrefix(e, "TZ=") || strings.HasPrefix(e, "CRON_TZ=") {
		return Timing{}, fmt.Errorf("cron spec %q: give the time zone separately (tz), not in the spec", expr)
	}
	loc, err := LoadZone(zone)
	if err != nil {
		return Timing{}, err
	}
	s, err := cronParser.Parse(e)
	if err != nil {
		return Timing{}, fmt.Errorf("invalid cron spec %q: %v (want 5 fields, an optional seconds field first, or @hourly, @daily, @every 1h...)", expr, err)
	}
	if cd, ok := s.(cron.ConstantDelaySchedule); ok && cd.Delay <= 0 {
		return Timing{}, fmt.Errorf("invalid cron spec %q: @every needs a positive duration", expr)
	}
	if ss, ok := s.(*cron.SpecSchedule); ok {
		ss.Location = loc
		if err := checkFires(ss, expr); err != nil {
			return Timing{}, err
		}
	}
	return Timing{kind: nuvom.ScheduleCron, cron: s, loc: loc}, nil
}

// checkFires refuses a cron spec that names no real date, such as "0 0 30 2 *"
// (February 30th): it would be stored and never fire. robfig/cron looks five
// years ahead, and every real date recurs within five years (29 February
// every four), so no fire time in that span means none ever.
func checkFires(ss *cron.SpecSchedule, expr string) error {
	if ss.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return fmt.Errorf("cron spec %q never fires: no date matches its day and month fields (such as 30 February)", expr)
	}
	return nil
}

// IntervalTiming returns the timing of an interval schedule; d must be positive.
func IntervalTiming(d time.Duration) (Timing, error) {
	if d <= 0 {
		return Timing{}, fmt.Errorf("interval %s must be positive", d)
	}
	return Timing{kind: nuvom.ScheduleInterval, every: d}, nil
}

// OnceTiming returns the timing of a one-off at t.
func OnceTiming(t time.Time) Timing {
	return Timing{kind: nuvom.ScheduleOnce, at: t.UTC()}
}

// TimingOf returns the timing of a stored schedule.
func TimingOf(s *Schedule) (Timing, error) {
	switch s.Kind {
	case nuvom.ScheduleCron:
		return ParseCron(s.Spec, s.Zone)
	case nuvom.ScheduleInterval:
		d, err := time.ParseDuration(s.Spec)
		if err != nil {
			return Timing{}, fmt.Errorf("schedule %s: interval %q: %w", s.ID, s.Spec, err)
		}
		return IntervalTiming(d)
	case nuvom.ScheduleOnce:
		t, err := time.Parse(time.RFC3339Nano, s.Spec)
		if err != nil {
			return Timing{}, fmt.Errorf("schedule %s: one-off time %q: %w", s.ID, s.Spec, err)
		}
		return OnceTiming(t), nil
	}
	return Timing{}, fmt.Errorf("schedule %s: unknown kind %q", s.ID, s.Kind)
}

// Next returns the first fire time strictly after t, in UTC, or the zero time
// when there is none (a one-off that is past). Interval schedules are anchored:
// their fire times are anchor + k*every.
func (tm Timing) Next(anchor, t time.Time) time.Time {
	switch tm.kind {
	case nuvom.ScheduleOnce:
		if tm.at.After(t) {
			return tm.at
		}
		return time.Time{}
	case nuvom.ScheduleInterval:
		if anchor.After(t) {
			return anchor.UTC()
		}
		// k*every <= t-anchor cannot overflow, where (k+1)*every could for a
		// long interval; the loop covers a t-anchor too long for a Duration.
		n := anchor
		for !n.After(t) {
			k := t.Sub(n) / tm.every
			n = n.Add(k * tm.every).Add(tm.every)
		}
		return n.UTC()
	case nuvom.ScheduleCron:
		return tm.nextCron(t)
	}
	return time.Time{}
}

// Period estimates the time between two fire times after t (for unique windows).
func (tm Timing) Period(t time.Time) time.Duration {
	switch tm.kind {
	case nuvom.ScheduleInterval:
		return tm.every
	case nuvom.ScheduleCron:
		a := tm.nextCron(t)
		if a.IsZero() {
			return 0
		}
		b := tm.nextCron(a)
		if b.IsZero() {
			return 0
		}
		return b.Sub(a)
	}
	return 0
}

// nextCron is robfig/cron's next time, corrected across daylight-saving
// changes: a wall time skipped by a spring-forward fires once at the same
// offset as before the change (02:30 becomes 03:30), and a wall time repeated
// by a fall-back fires once, not twice (unless the hour field is "*", where
// firing through both hours is what "every N minutes" means).
func (tm Timing) nextCron(t time.Time) time.Time {
	n := tm.cron.Next(t)
	ss, ok := tm.cron.(*cron.SpecSchedule)
	if !ok || n.IsZero() {
		return n.UTC()
	}
	// Spring forward between t and n: a match inside the gap fires at the old offset.
	_, offT := t.In(tm.loc).Zone()
	_, offN := n.In(tm.loc).Zone()
	if offN > offT {
		fixed := *ss
		fixed.Location = time.FixedZone("pre-dst", offT)
		if c := fixed.Next(t); !c.IsZero() && c.Before(n) && wall(c.In(tm.loc)) != wall(c.In(fixed.Location)) {
			return c.UTC()
		}
	}
	if ss.Hour&starBit != 0 {
		return n.UTC()
	}
	// Fall back: skip a match whose wall time already occurred at the earlier offset.
	for i := 0; i < 4 && !n.IsZero(); i++ {
		_, offN := n.In(tm.loc).Zone()
		_, offPrev := n.Add(-3 * time.Hour).In(tm.loc).Zone()
		if offPrev <= offN {
			break
		}
		twin := n.Add(-time.Duration(offPrev-offN) * time.Second)
		if wall(twin.In(tm.loc)) != wall(n.In(tm.loc)) {
			break
		}
		n = tm.cron.Next(n)
	}
	return n.UTC()
}

// wall is a time's wall clock reading, without its offset.
func wall(t time.Time) [6]int {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return [6]int{y, int(mo), d, h, mi, s}
}
