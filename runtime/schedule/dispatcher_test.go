package schedule_test

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/memory"
	"github.com/nuvom/nuvom/runtime/nuvomimpl"
	"github.com/nuvom/nuvom/runtime/schedule"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type rig struct {
	clk   *clock
	be    nuvom.Backend
	store schedule.Store
	svc   *schedule.Service
	d     *schedule.Dispatcher
}

func newRig(t *testing.T, start time.Time) *rig {
	t.Helper()
	clk := &clock{t: start}
	be := memory.New()
	t.Cleanup(func() { be.Close() })
	store := schedule.NewMemoryStore()
	c := nuvom.NewClient(be, nuvom.WithClock(clk.Now))
	return &rig{clk: clk, be: be, store: store,
		svc: &schedule.Service{Store: store, Now: clk.Now},
		d:   &schedule.Dispatcher{Store: store, Client: c, Now: clk.Now, LeaseFor: -1}}
}

var task = nuvom.TaskSpec{Name: "shop.Report", Signature: "abc", Options: nuvom.TaskOptions{Queue: "reports", Retries: 1}}

func (r *rig) create(t *testing.T, when nuvom.ScheduleSpec) schedule.Schedule {
	t.Helper()
	sc, err := r.svc.Create(context.Background(), task, []byte{0x90}, when)
	if err != nil {
		t.Fatalf("create schedule: %v", err)
	}
	return sc
}

// tick ticks once and returns the fire times enqueued (not duplicates).
func (r *rig) tick(t *testing.T) []time.Time {
	t.Helper()
	fired, err := r.d.Tick(context.Background())
	if err != nil {
		t.Fatalf("tick at %s: %v", r.clk.Now(), err)
	}
	var out []time.Time
	for _, f := range fired {
		if !f.Duplicate {
			out = append(out, f.FireTime)
		}
	}
	return out
}

// jobs returns every job in the queue, oldest run-at first.
func (r *rig) jobs(t *testing.T) []*nuvom.Job {
	t.Helper()
	js, err := r.be.List(context.Background(), nuvom.ListFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(js, func(i, j int) bool { return js[i].RunAt.Before(js[j].RunAt) })
	return js
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func fmtTimes(ts []time.Time) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.UTC().Format(time.RFC3339))
	}
	return strings.Join(s, " ")
}

func TestIntervalTicksAndMisfires(t *testing.T) {
	start := ts("2026-01-01T00:00:00Z")
	cases := []struct {
		name  string
		when  nuvom.ScheduleSpec
		steps []time.Duration // clock moves before each tick
		want  []string        // fire times enqueued by each tick, space-separated
	}{
		{"on time", nuvom.Every(10 * time.Second), []time.Duration{5 * time.Second, 5 * time.Second, 0, 10 * time.Second},
			[]string{"", "2026-01-01T00:00:10Z", "", "2026-01-01T00:00:20Z"}},
		{"skip runs the latest missed tick once", nuvom.Every(10 * time.Second), []time.Duration{45 * time.Second, 5 * time.Second},
			[]string{"2026-01-01T00:00:40Z", "2026-01-01T00:00:50Z"}},
		{"catch_up enqueues each missed tick, bounded", nuvom.Every(10 * time.Second).CatchUp(3), []time.Duration{65 * time.Second, 5 * time.Second},
			[]string{"2026-01-01T00:00:40Z 2026-01-01T00:00:50Z 2026-01-01T00:01:00Z", "2026-01-01T00:01:10Z"}},
		{"catch_up below the bound", nuvom.Every(10 * time.Second).CatchUp(0), []time.Duration{25 * time.Second},
			[]string{"2026-01-01T00:00:10Z 2026-01-01T00:00:20Z"}},
		{"starting at", nuvom.Every(time.Hour).StartingAt(start.Add(time.Minute)), []time.Duration{time.Minute, time.Hour},
			[]string{"2026-01-01T00:01:00Z", "2026-01-01T01:01:00Z"}},
		{"cron skip", nuvom.Cron("*/15 * * * *", ""), []time.Duration{50 * time.Minute},
			[]string{"2026-01-01T00:45:00Z"}},
		{"cron catch_up bounded", nuvom.Cron("*/15 * * * *", "").CatchUp(2), []time.Duration{50 * time.Minute, 10 * time.Minute},
			[]string{"2026-01-01T00:30:00Z 2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z"}},
		{"seconds field", nuvom.Cron("*/20 * * * * *", ""), []time.Duration{20 * time.Second, 20 * time.Second},
			[]string{"2026-01-01T00:00:20Z", "2026-01-01T00:00:40Z"}},
		{"one-off fires once", nuvom.OnceIn(time.Minute), []time.Duration{time.Minute, time.Hour},
			[]string{"2026-01-01T00:01:00Z", ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, start)
			sc := r.create(t, c.when)
			var all []time.Time
			for i, step := range c.steps {
				r.clk.Add(step)
				got := r.tick(t)
				if fmtTimes(got) != c.want[i] {
					t.Errorf("tick %d at %s enqueued [%s], want [%s]", i, r.clk.Now().Format(time.RFC3339), fmtTimes(got), c.want[i])
				}
				all = append(all, got...)
			}
			jobs := r.jobs(t)
			if len(jobs) != len(all) {
				t.Fatalf("%d jobs in the queue, want %d", len(jobs), len(all))
			}
			for i, j := range jobs {
				if !j.RunAt.Equal(all[i]) || j.UniqueKey != schedule.TickKey(sc.ID, all[i]) || j.Task != task.Name || j.Queue != "reports" || j.MaxAttempts != 2 {
					t.Errorf("job %d: run at %s key %s task %s queue %s attempts %d", i, j.RunAt, j.UniqueKey, j.Task, j.Queue, j.MaxAttempts)
				}
			}
			got, _ := r.store.Get(context.Background(), sc.ID)
			if len(all) > 0 && (!got.LastRun.Equal(all[len(all)-1]) || got.LastJobID != jobs[len(jobs)-1].ID) {
				t.Errorf("last run %s job %s, want %s %s", got.LastRun, got.LastJobID, all[len(all)-1], jobs[len(jobs)-1].ID)
			}
		})
	}
}

// TestDST steps a fake clock through Europe/Berlin's 2026 changes every five
// minutes: a daily 02:30 job fires exactly once on each day, on the
// spring-forward day at 03:00 CEST, the first instant after the gap (02:30
// does not exist), and on the fall-back day at the first 02:30 only.
func TestDST(t *testing.T) {
	cases := []struct {
		name, spec string
		from, to   string
		want       string
		zone       string // default Europe/Berlin
	}{
		{"spring forward daily 02:30", "30 2 * * *", "2026-03-27T12:00:00Z", "2026-03-31T12:00:00Z",
			"2026-03-28T01:30:00Z 2026-03-29T01:00:00Z 2026-03-30T00:30:00Z 2026-03-31T00:30:00Z", ""},
		{"fall back daily 02:30", "30 2 * * *", "2026-10-23T12:00:00Z", "2026-10-27T12:00:00Z",
			"2026-10-24T00:30:00Z 2026-10-25T00:30:00Z 2026-10-26T01:30:00Z 2026-10-27T01:30:00Z", ""},
		{"fall back every 30 minutes fires through both hours", "*/30 * * * *", "2026-10-24T23:10:00Z", "2026-10-25T02:10:00Z",
			"2026-10-24T23:30:00Z 2026-10-25T00:00:00Z 2026-10-25T00:30:00Z 2026-10-25T01:00:00Z 2026-10-25T01:30:00Z 2026-10-25T02:00:00Z", ""},
		{"spring forward hourly at :15", "15 * * * *", "2026-03-28T23:50:00Z", "2026-03-29T02:00:00Z",
			"2026-03-29T00:15:00Z 2026-03-29T01:15:00Z", ""},
		// Australia/Lord_Howe shifts by 30 minutes at 02:00: on 2020-04-05
		// back to 01:30 (+11 to +10:30), on 2020-10-04 forward to 02:30.
		// robfig/cron skipped midnight of 2020-04-06 and fired 01:30 twice on
		// 2020-10-04.
		{"30-minute fall back, daily midnight", "0 0 * * *", "2020-04-03T12:00:00Z", "2020-04-07T12:00:00Z",
			"2020-04-03T13:00:00Z 2020-04-04T13:00:00Z 2020-04-05T13:30:00Z 2020-04-06T13:30:00Z", "Australia/Lord_Howe"},
		{"30-minute fall back, repeated 01:45", "45 1 * * *", "2020-04-03T12:00:00Z", "2020-04-06T12:00:00Z",
			"2020-04-03T14:45:00Z 2020-04-04T14:45:00Z 2020-04-05T15:15:00Z", "Australia/Lord_Howe"},
		{"30-minute spring forward, daily 01:30", "30 1 * * *", "2020-10-02T12:00:00Z", "2020-10-05T12:00:00Z",
			"2020-10-02T15:00:00Z 2020-10-03T15:00:00Z 2020-10-04T14:30:00Z", "Australia/Lord_Howe"},
		{"30-minute spring forward, skipped 02:15", "15 2 * * *", "2020-10-02T12:00:00Z", "2020-10-05T12:00:00Z",
			"2020-10-02T15:45:00Z 2020-10-03T15:30:00Z 2020-10-04T15:15:00Z", "Australia/Lord_Howe"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, ts(c.from))
			zone := c.zone
			if zone == "" {
				zone = "Europe/Berlin"
			}
			r.create(t, nuvom.Cron(c.spec, zone))
			var all []time.Time
			for r.clk.Now().Before(ts(c.to)) {
				r.clk.Add(5 * time.Minute)
				all = append(all, r.tick(t)...)
			}
			if got := fmtTimes(all); got != c.want {
				t.Errorf("fired\n  %s\nwant\n  %s", got, c.want)
			}
			if len(r.jobs(t)) != len(all) {
				t.Errorf("%d jobs, want %d", len(r.jobs(t)), len(all))
			}
		})
	}
}

func TestPauseResume(t *testing.T) {
	r := newRig(t, ts("2026-01-01T00:00:00Z"))
	ctx := context.Background()
	sc := r.create(t, nuvom.Every(time.Minute))
	if err := r.svc.Pause(ctx, sc.ID); err != nil {
		t.Fatal(err)
	}
	r.clk.Add(5*time.Minute + 30*time.Second)
	if got := r.tick(t); len(got) != 0 {
		t.Fatalf("paused schedule fired %s", fmtTimes(got))
	}
	if err := r.svc.Resume(ctx, sc.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := r.store.Get(ctx, sc.ID)
	if want := ts("2026-01-01T00:06:00Z"); got.Paused || !got.NextRun.Equal(want) {
		t.Fatalf("after resume: paused %v next %s, want false %s (ticks missed while paused are dropped)", got.Paused, got.NextRun, want)
	}
	if got := r.tick(t); len(got) != 0 {
		t.Fatalf("resumed schedule fired paused ticks %s", fmtTimes(got))
	}
	r.clk.Add(30 * time.Second)
	if got := fmtTimes(r.tick(t)); got != "2026-01-01T00:06:00Z" {
		t.Fatalf("after resume fired [%s], want the 00:06 tick", got)
	}
}

func TestRunNow(t *testing.T) {
	r := newRig(t, ts("2026-01-01T00:00:00Z"))
	ctx := context.Background()
	sc := r.create(t, nuvom.Cron("0 3 * * *", "Europe/Berlin"))
	id, err := r.svc.RunNow(ctx, r.d.Client, sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	j, err := r.be.Get(ctx, id)
	if err != nil || j.State != nuvom.StateQueued || j.Task != task.Name || j.UniqueKey != "" {
		t.Fatalf("run-now job = %+v, %v", j, err)
	}
	got, _ := r.store.Get(ctx, sc.ID)
	if got.LastJobID != id || !got.NextRun.Equal(sc.NextRun) {
		t.Errorf("after run-now: last job %s next %s, want %s %s", got.LastJobID, got.NextRun, id, sc.NextRun)
	}
	if _, err := r.svc.RunNow(ctx, r.d.Client, "missing"); !errors.Is(err, schedule.ErrNotFound) {
		t.Errorf("run-now of a missing schedule: %v", err)
	}
}

// failingAdvance makes the first Advance fail, as a dispatcher that crashed
// between enqueueing a tick and recording it.
type failingAdvance struct {
	schedule.Store
	failed bool
}

func (f *failingAdvance) Advance(ctx context.Context, id string, a schedule.Advance) (bool, error) {
	if !f.failed {
		f.failed = true
		return false, errors.New("crashed")
	}
	return f.Store.Advance(ctx, id, a)
}

func TestCrashMidTickEnqueuesOnce(t *testing.T) {
	r := newRig(t, ts("2026-01-01T00:00:00Z"))
	r.create(t, nuvom.Every(time.Minute))
	r.clk.Add(time.Minute)
	crashing := *r.d
	crashing.Store = &failingAdvance{Store: r.store}
	if _, err := crashing.Tick(context.Background()); err == nil {
		t.Fatal("crashing tick: no error")
	}
	fired, err := r.d.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(fired) != 1 || !fired[0].Duplicate {
		t.Fatalf("second dispatcher fired %+v, want the same tick as a duplicate", fired)
	}
	if n := len(r.jobs(t)); n != 1 {
		t.Fatalf("%d jobs, want 1", n)
	}
	if got := r.tick(t); len(got) != 0 {
		t.Fatalf("fired again: %s", fmtTimes(got))
	}
}

func TestRacingDispatchersInProcess(t *testing.T) {
	r := newRig(t, ts("2026-01-01T00:00:00Z"))
	r.create(t, nuvom.Every(time.Second))
	for i := 0; i < 50; i++ {
		r.clk.Add(time.Second)
		var wg sync.WaitGroup
		for k := 0; k < 4; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.d.Tick(context.Background()); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	jobs := r.jobs(t)
	keys := map[string]int{}
	for _, j := range jobs {
		keys[j.UniqueKey]++
	}
	if len(jobs) != 50 || len(keys) != 50 {
		t.Fatalf("%d jobs with %d distinct keys, want 50 and 50", len(jobs), len(keys))
	}
}

func TestJitter(t *testing.T) {
	r := newRig(t, ts("2026-01-01T00:00:00Z"))
	r.create(t, nuvom.Every(time.Minute).WithJitter(20*time.Second).CatchUp(10))
	r.clk.Add(10 * time.Minute)
	r.tick(t)
	jobs := r.jobs(t)
	if len(jobs) != 10 {
		t.Fatalf("%d jobs, want 10", len(jobs))
	}
	spread := map[time.Duration]bool{}
	for _, j := range jobs {
		off := j.RunAt.Sub(j.RunAt.Truncate(time.Minute))
		if off < 0 || off >= 20*time.Second {
			t.Errorf("job run at %s: jitter %s outside [0, 20s)", j.RunAt, off)
		}
		spread[off] = true
	}
	if len(spread) < 3 {
		t.Errorf("jitter took only %d distinct values over 10 ticks", len(spread))
	}
}

// TestCronJitterBelowShortestGap: a cron schedule's jitter may come up to,
// not including, the shortest time between two of its runs; a spec that
// fires rarely, or only a few more times, is not refused.
func TestCronJitterBelowShortestGap(t *testing.T) {
	now := ts("2026-01-01T00:00:00Z")
	task := nuvom.TaskSpec{Name: "t.T", Signature: "s", Options: nuvom.TaskOptions{Queue: "default"}}
	for _, when := range []nuvom.ScheduleSpec{
		nuvom.Cron("0 9,10 * * 1-5", "").WithJitter(time.Hour - time.Second),
		nuvom.Cron("0 0 29 2 *", "").WithJitter(24 * time.Hour),
		nuvom.Cron("0 0 1 1 *", "UTC").WithJitter(30 * 24 * time.Hour),
	} {
		if _, err := schedule.Build(task, nil, when, now); err != nil {
			t.Errorf("Build(%q, jitter %s): %v", when.Cron, when.Jitter, err)
		}
	}
}

// TestCronJitterBelowDSTGap: the shortest gap of a cron schedule counts the
// day clocks go forward, months ahead: "0 */2 * * *" in America/New_York
// fires at 03:00 (for 02:00) and at 04:00 on 2027-03-14, one hour apart, so
// a jitter of 90 minutes could start those ticks' jobs out of order. The
// next 1000 fire times (83 days from late November) end before that day.
func TestCronJitterBelowDSTGap(t *testing.T) {
	now := ts("2026-11-27T00:00:00Z")
	for _, c := range []struct{ spec, zone string }{
		{"0 */2 * * *", "America/New_York"},
		{"0 1-23/2 * * *", "Europe/Berlin"},
	} {
		tm, err := schedule.ParseCron(c.spec, c.zone)
		if err != nil {
			t.Fatal(err)
		}
		if got := tm.ShortestGap(now); got != time.Hour {
			t.Errorf("ShortestGap(%q in %s) = %s, want 1h (the day clocks go forward)", c.spec, c.zone, got)
		}
		task := nuvom.TaskSpec{Name: "t.T", Signature: "s", Options: nuvom.TaskOptions{Queue: "default"}}
		if _, err := schedule.Build(task, nil, nuvom.Cron(c.spec, c.zone).WithJitter(90*time.Minute), now); err == nil {
			t.Errorf("Build(%q in %s, jitter 90m) succeeded; want the 1h gap refused", c.spec, c.zone)
		}
	}
	// Away from a change, the gap stays what it is: every minute, in a zone
	// with daylight saving, is one minute apart all year.
	tm, err := schedule.ParseCron("* * * * *", "America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	if got := tm.ShortestGap(now); got != time.Minute {
		t.Errorf("ShortestGap(every minute) = %s, want 1m", got)
	}
}

func TestBuildRejectsBadInput(t *testing.T) {
	now := ts("2026-01-01T00:00:00Z")
	cases := []struct {
		name string
		when nuvom.ScheduleSpec
		want string
	}{
		{"bad cron", nuvom.Cron("61 * * * *", ""), `invalid cron spec "61 * * * *"`},
		{"too few fields", nuvom.Cron("* *", ""), `invalid cron spec "* *"`},
		{"unknown zone", nuvom.Cron("0 3 * * *", "Mars/Olympus"), `unknown time zone "Mars/Olympus"`},
		{"zero interval", nuvom.Every(0), "interval 0s must be positive"},
		{"negative interval", nuvom.Every(-time.Second), "interval -1s must be positive"},
		{"1ns interval", nuvom.Every(time.Nanosecond), "interval 1ns is below the minimum of 100ms"},
		{"99ms interval", nuvom.Every(99 * time.Millisecond), "interval 99ms is below the minimum of 100ms"},
		{"one-off in the past", nuvom.OnceAt(now.Add(-time.Minute)), "one-off time 2025-12-31T23:59:00Z is in the past"},
		{"one-off zero delay", nuvom.OnceIn(0), "one-off delay 0s must be positive"},
		{"no kind", nuvom.ScheduleSpec{}, "no kind"},
		{"zone in spec", nuvom.Cron("CRON_TZ=UTC 0 3 * * *", ""), "give the time zone separately"},
		{"bad misfire", nuvom.ScheduleSpec{Kind: nuvom.ScheduleInterval, Every: time.Second, Misfire: "later"}, `misfire policy "later"`},
		{"jitter of a minutely cron", nuvom.Cron("* * * * *", "").WithJitter(time.Minute), `jitter 1m0s is not shorter than 1m0s, the shortest time between two runs of cron "* * * * *"`},
		{"jitter of an uneven cron", nuvom.Cron("0 9,10 * * 1-5", "").WithJitter(90 * time.Minute), `jitter 1h30m0s is not shorter than 1h0m0s`},
		{"jitter across a DST change", nuvom.Cron("0 1,3 * * *", "Europe/Berlin").WithJitter(90 * time.Minute), `jitter 1h30m0s is not shorter than 1h0m0s`},
		{"jitter of the interval", nuvom.Every(time.Minute).WithJitter(time.Minute), "jitter 1m0s is not shorter than the interval 1m0s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := schedule.Build(task, nil, c.when, now)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Build error = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestSyncAnnotations(t *testing.T) {
	ctx := context.Background()
	now := ts("2026-01-01T00:00:00Z")
	store := schedule.NewMemoryStore()
	withCron := func(name, spec string) nuvom.TaskSpec {
		return nuvom.TaskSpec{Name: name, Signature: "s", Options: nuvom.TaskOptions{Queue: "default", Cron: spec, Zone: "Europe/Berlin"}}
	}
	user, err := (&schedule.Service{Store: store, Now: func() time.Time { return now }}).Create(ctx, withCron("a.User", ""), nil, nuvom.Every(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tasks := []nuvom.TaskSpec{withCron("a.Nightly", "0 3 * * *"), withCron("a.Plain", ""),
		{Name: "a.Often", Options: nuvom.TaskOptions{Every: time.Minute}}}
	if _, err := schedule.SyncAnnotations(ctx, store, tasks, now); err != nil {
		t.Fatal(err)
	}
	list, _ := store.List(ctx)
	if got := idsOf(list); got != user.ID+" task:a.Nightly task:a.Often" {
		t.Fatalf("after first sync: %s", got)
	}
	nightly, _ := store.Get(ctx, "task:a.Nightly")
	if want := ts("2026-01-01T02:00:00Z"); nightly.Source != schedule.SourceAnnotation || !nightly.NextRun.Equal(want) {
		t.Errorf("nightly: source %s next %s, want annotation %s", nightly.Source, nightly.NextRun, want)
	}
	// Pause survives an unchanged sync; a changed spec replaces the schedule; a
	// removed annotation (renamed task) deletes it; the user schedule stays.
	if err := store.Pause(ctx, "task:a.Nightly", now); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Hour)
	tasks = []nuvom.TaskSpec{withCron("a.Nightly", "0 4 * * *"), withCron("a.Renamed", "@hourly")}
	if _, err := schedule.SyncAnnotations(ctx, store, tasks, later); err != nil {
		t.Fatal(err)
	}
	list, _ = store.List(ctx)
	if got := idsOf(list); got != user.ID+" task:a.Nightly task:a.Renamed" {
		t.Fatalf("after second sync: %s", got)
	}
	nightly, _ = store.Get(ctx, "task:a.Nightly")
	if nightly.Spec != "0 4 * * *" || !nightly.Paused || !nightly.CreatedAt.Equal(now) {
		t.Errorf("changed nightly: spec %q paused %v created %s", nightly.Spec, nightly.Paused, nightly.CreatedAt)
	}
	bad := []nuvom.TaskSpec{withCron("a.Bad", "nope")}
	if _, err := schedule.SyncAnnotations(ctx, store, bad, later); err == nil || !strings.Contains(err.Error(), "a.Bad") {
		t.Errorf("sync of a bad spec: %v", err)
	}
}

func idsOf(l []schedule.Schedule) string {
	var s []string
	for _, sc := range l {
		s = append(s, sc.ID)
	}
	return strings.Join(s, " ")
}

// TestSubSecondInterval: a 250ms interval enqueues one job per fire time, each
// with its own unique key (whole-second keys merged four ticks into one).
func TestSubSecondInterval(t *testing.T) {
	r := newRig(t, ts("2026-01-01T00:00:00Z"))
	sc := r.create(t, nuvom.Every(250*time.Millisecond))
	var all []time.Time
	for i := 0; i < 40; i++ {
		r.clk.Add(250 * time.Millisecond)
		all = append(all, r.tick(t)...)
	}
	jobs := r.jobs(t)
	if len(all) != 40 || len(jobs) != 40 {
		t.Fatalf("%d fire times and %d jobs over 10s, want 40 and 40", len(all), len(jobs))
	}
	keys := map[string]bool{}
	for i, j := range jobs {
		keys[j.UniqueKey] = true
		if !j.RunAt.Equal(all[i]) || j.UniqueKey != schedule.TickKey(sc.ID, all[i]) {
			t.Errorf("job %d: run at %s key %s, want %s %s", i, j.RunAt, j.UniqueKey, all[i], schedule.TickKey(sc.ID, all[i]))
		}
	}
	if len(keys) != 40 {
		t.Errorf("%d distinct unique keys, want 40", len(keys))
	}
}

func TestTickKey(t *testing.T) {
	// Whole seconds keep the key earlier versions gave (a rolling upgrade
	// must not enqueue a tick twice); anything finer gets its nanoseconds.
	cases := map[string]string{
		"2026-01-01T00:00:00Z":           "sched:s1:1767225600",
		"2026-01-01T00:00:00.25Z":        "sched:s1:1767225600.250000000",
		"2026-01-01T00:00:00.000000001Z": "sched:s1:1767225600.000000001",
	}
	for in, want := range cases {
		f, err := time.Parse(time.RFC3339Nano, in)
		if err != nil {
			t.Fatal(err)
		}
		if got := schedule.TickKey("s1", f); got != want {
			t.Errorf("TickKey(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestZeroParamTaskArgs: schedules of a task without parameters store the
// empty argument list (0x90), whether declared in an annotation or built by
// hand with no args, and a row stored without args (by earlier versions)
// enqueues ticks whose args decode as the empty list, not as EOF.
func TestZeroParamTaskArgs(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, ts("2026-01-01T00:00:00Z"))
	cleanup := nuvom.TaskSpec{Name: "app.Cleanup", Signature: "z", Options: nuvom.TaskOptions{Queue: "default", Cron: "0 3 * * *"}}
	if _, err := schedule.SyncAnnotations(ctx, r.store, []nuvom.TaskSpec{cleanup}, r.clk.Now()); err != nil {
		t.Fatal(err)
	}
	built, err := r.svc.Create(ctx, cleanup, nil, nuvom.Every(time.Hour).WithID("by-hand"))
	if err != nil {
		t.Fatal(err)
	}
	legacy := built
	legacy.ID, legacy.Args = "legacy", nil
	if err := r.store.Upsert(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{schedule.AnnotationID("app.Cleanup"), "by-hand"} {
		sc, err := r.store.Get(ctx, id)
		if err != nil || !bytes.Equal(sc.Args, []byte{0x90}) {
			t.Errorf("schedule %s stores args %x (%v), want 90", id, sc.Args, err)
		}
	}
	r.clk.Add(4 * time.Hour)
	r.tick(t)
	jobs := r.jobs(t)
	if len(jobs) != 3 {
		t.Fatalf("%d jobs, want 3 (annotation, by hand, legacy)", len(jobs))
	}
	for _, j := range jobs {
		if err := nuvomimpl.NewArgReader(j.Task, j.Args, 0).Err(); err != nil || !bytes.Equal(j.Args, []byte{0x90}) {
			t.Errorf("job %s (%s): args %x: %v", j.ID, j.UniqueKey, j.Args, err)
		}
	}
	id, err := r.svc.RunNow(ctx, r.d.Client, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if j, err := r.be.Get(ctx, id); err != nil || !bytes.Equal(j.Args, []byte{0x90}) {
		t.Errorf("run-now job of the legacy schedule: args %x, %v", j.Args, err)
	}
}

// rollingStore runs hook once, right after the first List that follows a
// RegisterAnnotationSet: between a sync's registration and its writes.
type rollingStore struct {
	schedule.Store
	registered bool
	hook       func()
}

func (s *rollingStore) RegisterAnnotationSet(ctx context.Context, fp string, now time.Time) (schedule.AnnotationSet, int64, error) {
	s.registered = true
	return s.Store.RegisterAnnotationSet(ctx, fp, now)
}

func (s *rollingStore) List(ctx context.Context) ([]schedule.Schedule, error) {
	l, err := s.Store.List(ctx)
	if s.registered && s.hook != nil {
		h := s.hook
		s.hook = nil
		h()
	}
	return l, err
}

// TestSyncAnnotationsNewestSetWins: during a rolling deploy, workers of the
// old and the new build sync their annotation schedules in any order; the
// new build's set (first seen after the old one) wins: an old worker
// restarting changes nothing, deletes nothing, and an old sync racing a new
// one cannot overwrite what the new one wrote.
func TestSyncAnnotationsNewestSetWins(t *testing.T) {
	ctx := context.Background()
	now := ts("2026-01-01T00:00:00Z")
	spec := func(name, sig, cron string, every time.Duration) nuvom.TaskSpec {
		return nuvom.TaskSpec{Name: name, Signature: sig, Options: nuvom.TaskOptions{Queue: "default", Cron: cron, Every: every}}
	}
	oldSet := []nuvom.TaskSpec{spec("a.Nightly", "s1", "0 3 * * *", 0), spec("a.Legacy", "s1", "", time.Hour), spec("a.Plain", "s1", "", 0)}
	newSet := []nuvom.TaskSpec{spec("a.Nightly", "s2", "0 4 * * *", 0), spec("a.Fresh", "s1", "@hourly", 0), spec("a.Plain", "s1", "", 0)}
	wantNew := func(t *testing.T, store schedule.Store) {
		t.Helper()
		list, _ := store.List(ctx)
		if got := idsOf(list); got != "task:a.Fresh task:a.Nightly" {
			t.Fatalf("annotation schedules %s, want the new set's: task:a.Fresh task:a.Nightly", got)
		}
		n, _ := store.Get(ctx, "task:a.Nightly")
		if n.Spec != "0 4 * * *" || n.Task.Signature != "s2" || n.SetGeneration != 2 || n.SetFingerprint != schedule.AnnotationFingerprint(newSet) {
			t.Errorf("nightly %q signature %s written by generation %d (%s), want the new set's", n.Spec, n.Task.Signature, n.SetGeneration, n.SetFingerprint)
		}
	}
	sync := func(t *testing.T, store schedule.Store, tasks []nuvom.TaskSpec, at time.Time) schedule.SyncResult {
		t.Helper()
		res, err := schedule.SyncAnnotations(ctx, store, tasks, at)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// The old build ran first (generation 1); then the deploy interleaves.
	for _, order := range []string{"old,new,old", "new,old", "new,old,new,old"} {
		t.Run(order, func(t *testing.T) {
			store := schedule.NewMemoryStore()
			if res := sync(t, store, oldSet, now); res.Set.Generation != 1 || res.Stale {
				t.Fatalf("first sync: %+v", res)
			}
			for i, who := range strings.Split(order, ",") {
				at := now.Add(time.Duration(i+1) * time.Minute)
				if who == "new" {
					if res := sync(t, store, newSet, at); res.Stale || res.Set.Generation != 2 {
						t.Fatalf("new sync %d: %+v", i, res)
					}
					continue
				}
				res := sync(t, store, oldSet, at)
				if i > 0 || order != "old,new,old" {
					// The new set is registered: the old one changes nothing.
					if !res.Stale || res.Set.Generation != 1 || res.Newest != 2 || len(res.Written)+len(res.Deleted) != 0 {
						t.Fatalf("old sync %d after the new set: %+v, want stale and no change", i, res)
					}
				}
			}
			wantNew(t, store)
		})
	}
	t.Run("race", func(t *testing.T) {
		// The old worker registers first, then the new one syncs completely
		// before the old one writes: its writes and deletes are refused.
		mem := schedule.NewMemoryStore()
		sync(t, mem, oldSet, now)
		rs := &rollingStore{Store: mem}
		rs.hook = func() { sync(t, mem, newSet, now.Add(time.Minute)) }
		res := sync(t, rs, oldSet, now.Add(2*time.Minute))
		if !res.Stale || len(res.Written)+len(res.Deleted) != 0 {
			t.Errorf("racing old sync: %+v, want stale and no change", res)
		}
		wantNew(t, mem)
	})
	t.Run("changed set is newer", func(t *testing.T) {
		store := schedule.NewMemoryStore()
		sync(t, store, oldSet, now)
		sync(t, store, newSet, now)
		third := append([]nuvom.TaskSpec{spec("a.Third", "s1", "", 2*time.Hour)}, newSet...)
		if res := sync(t, store, third, now); res.Stale || res.Set.Generation != 3 {
			t.Fatalf("third set: %+v", res)
		}
		if _, err := store.Get(ctx, "task:a.Third"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestMisfireGrace: ticks late by no more than the dispatcher's misfire grace
// are all enqueued, even under skip (a failover delays ticks by seconds);
// only older ones are misfires, of which skip enqueues none when a tick
// within the grace is due, else the latest.
func TestMisfireGrace(t *testing.T) {
	cases := []struct {
		name  string
		when  nuvom.ScheduleSpec
		grace time.Duration
		step  time.Duration
		want  string
	}{
		{"interval late 2.5s", nuvom.Every(time.Second), 0, 3500 * time.Millisecond,
			"2026-01-01T00:00:01Z 2026-01-01T00:00:02Z 2026-01-01T00:00:03Z"},
		{"cron late 2.5s", nuvom.Cron("* * * * * *", "Europe/Berlin"), 0, 3500 * time.Millisecond,
			"2026-01-01T00:00:01Z 2026-01-01T00:00:02Z 2026-01-01T00:00:03Z"},
		{"interval down 30s keeps the last 10s", nuvom.Every(time.Second), 0, 30500 * time.Millisecond,
			"2026-01-01T00:00:21Z 2026-01-01T00:00:22Z 2026-01-01T00:00:23Z 2026-01-01T00:00:24Z 2026-01-01T00:00:25Z " +
				"2026-01-01T00:00:26Z 2026-01-01T00:00:27Z 2026-01-01T00:00:28Z 2026-01-01T00:00:29Z 2026-01-01T00:00:30Z"},
		{"cron down 30s keeps the last 10s", nuvom.Cron("* * * * * *", ""), 0, 30500 * time.Millisecond,
			"2026-01-01T00:00:21Z 2026-01-01T00:00:22Z 2026-01-01T00:00:23Z 2026-01-01T00:00:24Z 2026-01-01T00:00:25Z " +
				"2026-01-01T00:00:26Z 2026-01-01T00:00:27Z 2026-01-01T00:00:28Z 2026-01-01T00:00:29Z 2026-01-01T00:00:30Z"},
		{"no grace: skip enqueues the latest", nuvom.Every(time.Second), -1, 3500 * time.Millisecond, "2026-01-01T00:00:03Z"},
		{"hourly late 2h: the latest only", nuvom.Every(time.Hour), 0, 3 * time.Hour, "2026-01-01T03:00:00Z"},
		{"catch_up bound and grace together", nuvom.Every(time.Second).CatchUp(2), 3 * time.Second, 10500 * time.Millisecond,
			"2026-01-01T00:00:08Z 2026-01-01T00:00:09Z 2026-01-01T00:00:10Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, ts("2026-01-01T00:00:00Z"))
			r.d.MisfireGrace = c.grace
			r.create(t, c.when)
			r.clk.Add(c.step)
			if got := fmtTimes(r.tick(t)); got != c.want {
				t.Errorf("enqueued\n  %s\nwant\n  %s", got, c.want)
			}
		})
	}
}

// TestSyncRepairsEmptyArgs: an annotation schedule stored by an earlier
// version without args is rewritten with the empty argument list by the next
// sync, keeping its timing (the next run is not moved).
func TestSyncRepairsEmptyArgs(t *testing.T) {
	ctx := context.Background()
	now := ts("2026-01-01T00:00:00Z")
	store := schedule.NewMemoryStore()
	cleanup := nuvom.TaskSpec{Name: "app.Cleanup", Signature: "z", Options: nuvom.TaskOptions{Queue: "default", Every: time.Hour}}
	if _, err := schedule.SyncAnnotations(ctx, store, []nuvom.TaskSpec{cleanup}, now); err != nil {
		t.Fatal(err)
	}
	old, _ := store.Get(ctx, schedule.AnnotationID("app.Cleanup"))
	old.Args, old.SetGeneration, old.SetFingerprint = nil, 0, "" // as earlier versions stored it
	if err := store.Upsert(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := schedule.SyncAnnotations(ctx, store, []nuvom.TaskSpec{cleanup}, now.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, _ := store.Get(ctx, schedule.AnnotationID("app.Cleanup"))
	if !bytes.Equal(got.Args, []byte{0x90}) || !got.NextRun.Equal(old.NextRun) || got.SetGeneration != 1 {
		t.Errorf("after sync: args %x next run %s generation %d; want 90, %s, 1", got.Args, got.NextRun, got.SetGeneration, old.NextRun)
	}
}
