package schedule

import (
	"archive/zip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// zoneinfoZip finds Go's copy of the tz database: $ZONEINFO, else
// $GOROOT/lib/time/zoneinfo.zip of the go command (or of this binary's build).
func zoneinfoZip(t *testing.T) string {
	t.Helper()
	var cands []string
	if z := os.Getenv("ZONEINFO"); strings.HasSuffix(z, ".zip") {
		cands = append(cands, z)
	}
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		cands = append(cands, filepath.Join(strings.TrimSpace(string(out)), "lib", "time", "zoneinfo.zip"))
	}
	cands = append(cands, filepath.Join(runtime.GOROOT(), "lib", "time", "zoneinfo.zip"))
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	t.Fatalf("no zoneinfo.zip found (tried %v): every Go installation ships one in $GOROOT/lib/time", cands)
	return ""
}

type tzZone struct {
	name string
	loc  *time.Location
}

// allZones loads every zone of the tz database in Go's zoneinfo.zip, once
// per distinct data.
func allZones(t *testing.T) []tzZone {
	t.Helper()
	r, err := zip.OpenReader(zoneinfoZip(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var zones []tzZone
	seen := map[string]bool{}
	for _, f := range r.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(data)] {
			continue // a link (US/Pacific is America/Los_Angeles): the same data
		}
		seen[string(data)] = true
		loc, err := time.LoadLocationFromTZData(f.Name, data)
		if err != nil {
			t.Fatalf("zone %s: %v", f.Name, err)
		}
		zones = append(zones, tzZone{f.Name, loc})
	}
	if len(zones) < 300 {
		t.Fatalf("only %d zones in the tz database", len(zones))
	}
	return zones
}

// TestDailyCronEveryZone is a property test over every zone of the tz
// database: a daily cron spec fires exactly once on each local calendar day
// that exists (a day skipped whole, as Pacific/Apia's 2011-12-30, has none),
// at its wall time when that exists (at its first occurrence when it occurs
// twice), otherwise at the first instant after the gap that skipped it.
// Daily specs at 00:00, 01:30, 02:30 and 03:00 cover the usual
// daylight-saving hours, 30-minute shifts (Australia/Lord_Howe) included.
func TestDailyCronEveryZone(t *testing.T) {
	zones := allZones(t)
	specs := []struct {
		expr         string
		hour, minute int
	}{{"0 0 * * *", 0, 0}, {"30 1 * * *", 1, 30}, {"30 2 * * *", 2, 30}, {"0 3 * * *", 3, 0}}
	first, last := 1995, 2030 // covers many rule changes and the rules' extension past the data
	if testing.Short() {
		first, last = 2016, 2025
	}
	var (
		wg   sync.WaitGroup
		next = make(chan tzZone)
	)
	for range max(2, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for z := range next {
				for _, sp := range specs {
					if msg := checkDaily(z.loc, sp.expr, sp.hour, sp.minute, first, last); msg != "" {
						t.Errorf("zone %s, %q: %s", z.name, sp.expr, msg)
					}
				}
			}
		}()
	}
	for _, z := range zones {
		next <- z
	}
	close(next)
	wg.Wait()
	t.Logf("%d zones, %d specs, years %d-%d", len(zones), len(specs), first, last)
}

// sameWall reports whether a and b read the same on a wall clock.
func sameWall(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd && a.Hour() == b.Hour() && a.Minute() == b.Minute() && a.Second() == b.Second()
}

// checkDaily walks a daily spec's fire times through the years first..last in
// loc and returns the first violation it finds, or "".
func checkDaily(loc *time.Location, expr string, hour, minute, first, last int) string {
	tm, err := cronIn(expr, loc)
	if err != nil {
		return err.Error()
	}
	from := time.Date(first, 1, 1, 0, 0, 0, 0, time.UTC).Add(-48 * time.Hour)
	to := time.Date(last+1, 1, 1, 0, 0, 0, 0, time.UTC).Add(48 * time.Hour)
	day0 := time.Date(first, 1, 1, 0, 0, 0, 0, time.UTC)
	counts := make([]int, (to.Sub(day0)/(24*time.Hour))+2)
	dayIndex := func(y int, m time.Month, d int) int {
		return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Sub(day0) / (24 * time.Hour))
	}
	for f := from; ; {
		n := tm.Next(time.Time{}, f)
		if n.IsZero() {
			return "no fire time after " + f.Format(time.RFC3339)
		}
		if !n.After(f) {
			return "fire time " + n.Format(time.RFC3339) + " is not after " + f.Format(time.RFC3339)
		}
		if !n.Before(to) {
			break
		}
		f = n
		l := n.In(loc)
		y, m, d := l.Date()
		if i := dayIndex(y, m, d); i >= 0 && i < len(counts) {
			counts[i]++
		}
		if l.Hour() != hour || l.Minute() != minute || l.Second() != 0 {
			// Allowed only when the wall time does not exist that day, and
			// then at the first instant after the gap.
			want := time.Date(y, m, d, hour, minute, 0, 0, loc)
			if wh, wm, _ := want.Clock(); wh == hour && wm == minute && want.Day() == d {
				return "fired at " + l.Format(time.RFC3339) + " though the wall time exists: " + want.Format(time.RFC3339)
			}
			before := n.Add(-time.Nanosecond).In(loc)
			if !wallBefore(before, y, m, d, hour, minute) {
				return "fired at " + l.Format(time.RFC3339) + ", not at the end of the gap (a second earlier it was " + before.Format(time.RFC3339) + ")"
			}
			continue
		}
		// At its wall time: it must be the first occurrence.
		if s, _ := l.ZoneBounds(); !s.IsZero() {
			_, off := l.Zone()
			_, prevOff := s.Add(-time.Nanosecond).In(loc).Zone()
			if prevOff > off {
				if twin := n.Add(-time.Duration(prevOff-off) * time.Second).In(loc); sameWall(twin, l) {
					return "fired at the second occurrence " + l.Format(time.RFC3339) + " of a repeated wall time (first " + twin.Format(time.RFC3339) + ")"
				}
			}
		}
	}
	for day := time.Date(first, 1, 1, 12, 0, 0, 0, time.UTC); day.Year() <= last; day = day.AddDate(0, 0, 1) {
		y, m, d := day.Date()
		c := counts[dayIndex(y, m, d)]
		if c == 1 || (c == 0 && !dayExists(loc, y, m, d)) {
			continue
		}
		return "local day " + day.Format(time.DateOnly) + " has " + strconv.Itoa(c) + " fire times, want 1"
	}
	return ""
}

// wallBefore reports whether l's wall reading is before y-m-d hour:minute.
func wallBefore(l time.Time, y int, m time.Month, d, hour, minute int) bool {
	ly, lm, ld := l.Date()
	a := time.Date(ly, lm, ld, l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
	return a.Before(time.Date(y, m, d, hour, minute, 0, 0, time.UTC))
}

// dayExists reports whether some instant has local date y-m-d in loc.
func dayExists(loc *time.Location, y int, m time.Month, d int) bool {
	for h := 0; h < 24; h++ {
		for _, mi := range []int{0, 30, 45, 59} {
			l := time.Date(y, m, d, h, mi, 0, 0, loc)
			if ly, lm, ld := l.Date(); ly == y && lm == m && ld == d {
				return true
			}
		}
	}
	return false
}

// TestWallSpecMatchesRobfig: wallSpec enumerates the same wall times as
// robfig/cron does in UTC (where no clock changes), for specs using every
// field form, from many starting points.
func TestWallSpecMatchesRobfig(t *testing.T) {
	specs := []string{"0 3 * * *", "30 2 * * *", "*/15 * * * *", "0 0 1 1 *", "0 0 29 2 *", "*/7 * * * * *",
		"0 30 1 * * SUN", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "0 0 29 2 MON", "5 4 * * 1-5",
		"0 0 ? * 1-5", "0 9-17/2 1,15 * *", "15 10 31 * *", "0 0 13 * FRI", "1-59/3 0 0 L-3 * *"}
	for _, e := range specs {
		s, err := cronParser.Parse(e)
		if err != nil {
			continue // a spec robfig/cron does not read
		}
		ss := s.(*cron.SpecSchedule)
		utc := *ss
		utc.Location = time.UTC
		ws := wallSpec{ss}
		at := time.Date(2023, 12, 31, 23, 59, 58, 500, time.UTC)
		for i := 0; i < 3000; i++ {
			want, got := utc.Next(at), ws.Next(at)
			if !got.Equal(want) {
				t.Fatalf("%q after %s: wallSpec %s, robfig/cron %s", e, at, got, want)
			}
			if want.IsZero() {
				break
			}
			at = want.Add(time.Duration(i%5) * 37 * time.Minute)
		}
	}
}
