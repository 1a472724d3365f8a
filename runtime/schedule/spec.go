package schedule

import (
	"errors"
	"fmt"
	"math/bits"
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
	return cronIn(expr, loc)
}

// cronIn is ParseCron in a loaded zone.
func cronIn(expr string, loc *time.Location) (Timing, error) {
	e := strings.TrimSpace(expr)
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

// MinInterval is the shortest interval of an interval schedule: each tick is
// a job in the queue, and shorter intervals would flood it.
const MinInterval = 100 * time.Millisecond

// IntervalTiming returns the timing of an interval schedule; d must be at
// least MinInterval.
func IntervalTiming(d time.Duration) (Timing, error) {
	if d <= 0 {
		return Timing{}, fmt.Errorf("interval %s must be positive", d)
	}
	if d < MinInterval {
		return Timing{}, fmt.Errorf("interval %s is below the minimum of %s: each tick enqueues a job", d, MinInterval)
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

// gapRuns and gapSpan bound the fire times ShortestGap looks at.
const (
	gapRuns = 1000
	gapSpan = 366 * 24 * time.Hour
)

// ShortestGap returns the shortest time between two consecutive fire times
// after t, among the next gapRuns fire times within a year of t (or the next
// two, when fewer fall in that year) and the fire times next to each change
// of the zone's offset in that year; 0 when there are not two. Cron
// schedules use it to bound their jitter: a jitter as long as the gap could
// start one tick's job after the next one's.
//
// A daylight-saving change brings the fire times next to it closer: "0 */2
// * * *" in America/New_York fires at 00:00, at 03:00 (for 02:00, which
// does not exist that day) and at 04:00, one hour apart, on the day clocks
// go forward, which the next gapRuns fire times (83 days) may not reach.
func (tm Timing) ShortestGap(t time.Time) time.Duration {
	end := t.Add(gapSpan)
	shortest := tm.shortestFrom(t, t, time.Time{}, gapRuns)
	if shortest == 0 || tm.loc == nil {
		return shortest
	}
	// Only fire times within the regular shortest gap plus the change of
	// the offset (and an hour) of the change can come closer because of it.
	for at := t; ; {
		_, change := at.In(tm.loc).ZoneBounds()
		if change.IsZero() || !change.After(at) || !change.Before(end) {
			break
		}
		_, before := change.Add(-time.Second).In(tm.loc).Zone()
		_, after := change.In(tm.loc).Zone()
		shift := time.Duration(after-before) * time.Second
		reach := shortest + max(shift, -shift) + time.Hour
		from := change.Add(-reach)
		if from.Before(t) {
			from = t
		}
		if g := tm.shortestFrom(t, from, change.Add(reach), 100*gapRuns); g > 0 && g < shortest {
			shortest = g
		}
		at = change
	}
	return shortest
}

// shortestFrom returns the shortest time between two consecutive fire
// times after from, looking at most at runs fire times; it stops at the
// first fire time more than gapSpan after t (the pair that crosses it
// counts) or after stop (when not zero).
func (tm Timing) shortestFrom(t, from, stop time.Time, runs int) time.Duration {
	prev := tm.Next(time.Time{}, from)
	if prev.IsZero() {
		return 0
	}
	var shortest time.Duration
	for i := 0; i < runs; i++ {
		next := tm.Next(time.Time{}, prev)
		if next.IsZero() {
			break
		}
		if gap := next.Sub(prev); shortest == 0 || gap < shortest {
			shortest = gap
		}
		if next.Sub(t) > gapSpan || (!stop.IsZero() && next.After(stop)) {
			break
		}
		prev = next
	}
	return shortest
}

// maxDSTGap is the longest gap whose wall times fire at its end; a longer one
// is a zone correcting its calendar (Pacific/Apia skipped 2011-12-30), not a
// daylight-saving change, and its wall times do not fire (as in Vixie cron,
// whose threshold this is).
const maxDSTGap = 3 * time.Hour

// maxZonePeriods bounds the time-zone periods nextCron walks through (a spec
// matching once in years crosses about two a year).
const maxZonePeriods = 1000

// nextCron returns the first fire time of a cron spec strictly after t. It
// works in local wall-clock terms, one run of constant UTC offset at a time,
// and does not use robfig/cron's own zone handling, which skips or repeats
// days across daylight-saving changes (30-minute ones in particular).
// Matching wall times are enumerated by wallSpec from robfig/cron's parsed
// fields.
//
// Across clock changes:
//   - A wall time that does not exist (skipped by a spring-forward) fires once,
//     at the first instant after the gap: a daily 02:30 fires at 03:00 on the
//     day Berlin skips 02:00-03:00. Wall times in a gap longer than
//     maxDSTGap do not fire.
//   - A wall time that occurs twice (a fall-back) fires once, at its first
//     occurrence.
//   - Except for specs whose hour field is "*" (every hour, @hourly, every N
//     minutes or seconds): they fire on the wall times that exist, through
//     both occurrences of a repeated hour, and skip those that do not exist,
//     so that "every 15 minutes" keeps firing every 15 minutes of real time.
//
// @every descriptors are fixed delays in real time, not wall times.
func (tm Timing) nextCron(t time.Time) time.Time {
	ss, ok := tm.cron.(*cron.SpecSchedule)
	if !ok {
		return tm.cron.Next(t).UTC()
	}
	walls := wallSpec{ss}
	frequent := ss.Hour&starBit != 0
	t = t.UTC()
	offSec := offsetAt(tm.loc, t)
	start, end := time.Time{}, runEnd(tm.loc, t, offSec)
	startKnown := false // the first run's start is looked up only when needed
	after := t          // this run's instants after this one are candidates
	for range maxZonePeriods {
		off := time.Duration(offSec) * time.Second
		if !frequent && !start.IsZero() && start.After(t) {
			// Wall times in the gap before this run fire at its start.
			if prev := time.Duration(offsetAt(tm.loc, start.Add(-time.Nanosecond))) * time.Second; prev < off && off-prev <= maxDSTGap {
				if w := walls.Next(start.Add(prev - time.Nanosecond)); !w.IsZero() && w.Before(start.Add(off)) {
					return start
				}
			}
		}
		// The wall times of this run are [start+off, end+off).
		w := walls.Next(after.Add(off))
		for ; !w.IsZero(); w = walls.Next(w) {
			if !end.IsZero() && !w.Before(end.Add(off)) {
				break // past this run
			}
			if frequent {
				return w.Add(-off)
			}
			if !startKnown {
				start, startKnown = runStart(tm.loc, t, offSec), true
			}
			if !tm.occurredBefore(w, start) {
				return w.Add(-off)
			}
		}
		if w.IsZero() || end.IsZero() {
			return time.Time{} // no match within robfig/cron's five-year horizon
		}
		start, startKnown, offSec = end, true, offsetAt(tm.loc, end)
		end = runEnd(tm.loc, start, offSec)
		after = start.Add(-time.Nanosecond)
	}
	return time.Time{}
}

// occurredBefore reports whether wall time w (a wall reading held as a UTC
// time) already occurred in one of the runs before the one starting at
// start: w is the second occurrence of a repeated wall time.
func (tm Timing) occurredBefore(w, start time.Time) bool {
	for range 3 {
		if start.IsZero() {
			return false
		}
		last := start.Add(-time.Nanosecond)
		offSec := offsetAt(tm.loc, last)
		off := time.Duration(offSec) * time.Second
		if !w.Before(start.Add(off)) {
			return false // after every wall time of the runs before
		}
		ps := runStart(tm.loc, last, offSec)
		if ps.IsZero() || !w.Before(ps.Add(off)) {
			return true
		}
		start = ps
	}
	return false
}

// wallSpec enumerates the wall times a cron spec matches, held as UTC times.
type wallSpec struct{ *cron.SpecSchedule }

// fieldMask keeps a field's value bits, without robfig/cron's star marker.
const fieldMask = 1<<62 - 1

// nextBit returns the smallest value >= from whose bit is set in mask, or -1.
func nextBit(mask uint64, from int) int {
	if from > 61 {
		return -1
	}
	m := mask & fieldMask >> uint(from) << uint(from)
	if m == 0 {
		return -1
	}
	return bits.TrailingZeros64(m)
}

// Next returns the first matching wall time after w at a whole second, or
// the zero time when there is none within five years (as robfig/cron).
func (ws wallSpec) Next(w time.Time) time.Time {
	w = w.UTC().Add(time.Second - time.Duration(w.Nanosecond()))
	y, mo, d := w.Date()
	h, mi, s := w.Clock()
	limit := y + 5
	for y <= limit {
		m := nextBit(ws.Month, int(mo))
		if m < 0 {
			y, mo, d, h, mi, s = y+1, 1, 1, 0, 0, 0
			continue
		}
		if time.Month(m) != mo {
			mo, d, h, mi, s = time.Month(m), 1, 0, 0, 0
		}
		if d > daysIn(y, mo) {
			mo, d, h, mi, s = mo+1, 1, 0, 0, 0
			if mo > 12 {
				y, mo = y+1, 1
			}
			continue
		}
		if !ws.dayMatches(y, mo, d) {
			d, h, mi, s = d+1, 0, 0, 0
			continue
		}
		nh := nextBit(ws.Hour, h)
		if nh < 0 || nh > 23 {
			d, h, mi, s = d+1, 0, 0, 0
			continue
		}
		if nh != h {
			h, mi, s = nh, 0, 0
		}
		nm := nextBit(ws.Minute, mi)
		if nm < 0 || nm > 59 {
			h, mi, s = h+1, 0, 0
			continue
		}
		if nm != mi {
			mi, s = nm, 0
		}
		ns := nextBit(ws.Second, s)
		if ns < 0 || ns > 59 {
			mi, s = mi+1, 0
			continue
		}
		return time.Date(y, mo, d, h, mi, ns, 0, time.UTC)
	}
	return time.Time{}
}

// dayMatches applies the day-of-month and day-of-week fields as robfig/cron
// does: both must match when either is "*", otherwise either may.
func (ws wallSpec) dayMatches(y int, mo time.Month, d int) bool {
	dom := ws.Dom&(1<<uint(d)) != 0
	dow := ws.Dow&(1<<uint(time.Date(y, mo, d, 12, 0, 0, 0, time.UTC).Weekday())) != 0
	if ws.Dom&starBit != 0 || ws.Dow&starBit != 0 {
		return dom && dow
	}
	return dom || dow
}

// daysIn is the number of days of month mo of year y.
func daysIn(y int, mo time.Month) int {
	return time.Date(y, mo+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// offsetAt is loc's UTC offset in seconds at instant x.
func offsetAt(loc *time.Location, x time.Time) int {
	_, off := x.In(loc).Zone()
	return off
}

// runEnd returns the first instant after x whose offset is not off (x's), or
// the zero time when the offset never changes again. time.Time.ZoneBounds
// gives the candidates, checked: in years whose rules come from a zone's
// POSIX TZ string it can end a span before the instant asked about (the last
// day of a leap year), and consecutive spans can have the same offset.
func runEnd(loc *time.Location, x time.Time, off int) time.Time {
	y := x
	for range maxZonePeriods {
		_, e := y.In(loc).ZoneBounds()
		if e.IsZero() {
			return time.Time{}
		}
		e = e.UTC()
		if !e.After(y) {
			e = y.Add(24 * time.Hour)
		}
		if offsetAt(loc, e) != off {
			if offsetAt(loc, e.Add(-time.Nanosecond)) == off {
				return e // the usual case: e is the change
			}
			return firstChange(loc, y, e, off)
		}
		y = e
	}
	return time.Time{}
}

// runStart returns the first instant of the run of offset off (x's) that
// contains x, or the zero time when it extends to the beginning of time.
func runStart(loc *time.Location, x time.Time, off int) time.Time {
	y := x
	for range maxZonePeriods {
		s, _ := y.In(loc).ZoneBounds()
		if s.IsZero() {
			return time.Time{}
		}
		s = s.UTC()
		if s.After(y) {
			s = y.Add(-24 * time.Hour)
		}
		b := s.Add(-time.Nanosecond)
		if bo := offsetAt(loc, b); bo != off {
			if offsetAt(loc, s) == off {
				return s // the usual case: s is the change
			}
			return firstChange(loc, b, y, bo)
		}
		y = b
	}
	return time.Time{}
}

// firstChange returns the first instant in (lo, hi] whose offset is not off,
// given that lo's offset is off and hi's is not. Zone changes fall on whole
// seconds.
func firstChange(loc *time.Location, lo, hi time.Time, off int) time.Time {
	l, h := lo.Unix(), hi.Unix()
	if !hi.Equal(time.Unix(h, 0)) {
		h++
	}
	for h-l > 1 {
		m := l + (h-l)/2
		if offsetAt(loc, time.Unix(m, 0)) == off {
			l = m
		} else {
			h = m
		}
	}
	return time.Unix(h, 0).UTC()
}
