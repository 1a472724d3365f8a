package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/nuvom/nuvom"
)

// Defaults of Dispatcher.
const (
	// DefaultLeaseFor is short so that when the elected dispatcher dies (kill
	// -9, a lost machine) another takes over within about LeaseFor plus a
	// quarter of it; the holder renews it every quarter.
	DefaultLeaseFor = 2 * time.Second
	DefaultMaxSleep = time.Second
	// DefaultMisfireGrace is how late a tick may be enqueued and still not
	// count as missed: a failover or a busy machine delays ticks by seconds,
	// and those are enqueued even under MisfireSkip.
	DefaultMisfireGrace = 10 * time.Second
	// MinUniqueWindow is the shortest unique-key window of a tick's job.
	MinUniqueWindow = 24 * time.Hour
	// maxCronSteps bounds the fire times a tick walks through for one schedule.
	maxCronSteps = 100_000
)

// Fired is one tick a dispatcher enqueued.
type Fired struct {
	ScheduleID string
	FireTime   time.Time
	JobID      string
	// Duplicate is true when another dispatcher had already enqueued this tick.
	Duplicate bool
}

// Dispatcher enqueues the due ticks of the schedules in Store through Client.
type Dispatcher struct {
	Store  Store
	Client *nuvom.Client
	// Now is the clock; default time.Now. The client should stamp jobs with the same clock.
	Now func() time.Time
	// Owner names this dispatcher in the lease; default host-pid-random.
	Owner string
	// LeaseFor is how long an elected dispatcher holds the lease between ticks;
	// default DefaultLeaseFor. Every dispatcher tries to take or renew it each
	// LeaseFor/4 (at most every MaxSleep), so a dead leader is replaced within
	// about 1.25 LeaseFor. Negative turns the election off: every dispatcher
	// ticks (still one job per tick, thanks to the unique keys).
	LeaseFor time.Duration
	// MisfireGrace is how late a tick may be and still be enqueued under
	// MisfireSkip (which otherwise enqueues only the latest missed tick);
	// default DefaultMisfireGrace, negative for none.
	MisfireGrace time.Duration
	// MaxSleep is the longest Run waits before looking at the store again (new
	// schedules, a lost leader); default DefaultMaxSleep.
	MaxSleep time.Duration
	// Logger receives one line per enqueued tick (debug) and per problem; default slog.Default().
	Logger *slog.Logger
	// OnTick, when set, is called with every due tick the dispatcher handles
	// (enqueued, duplicate or failed), on the dispatcher's goroutine: it must
	// not block (the worker hands the events to its plugins' buffers).
	OnTick func(TickEvent)
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Dispatcher) grace() time.Duration {
	switch {
	case d.MisfireGrace < 0:
		return 0
	case d.MisfireGrace == 0:
		return DefaultMisfireGrace
	}
	return d.MisfireGrace
}

func (d *Dispatcher) log() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

// Tick enqueues the due ticks of every unpaused schedule and advances each
// one's next run by compare-and-set. It returns the ticks it enqueued
// (including duplicates another dispatcher had already enqueued) and the
// problems of individual schedules, joined.
func (d *Dispatcher) Tick(ctx context.Context) ([]Fired, error) {
	fired, _, err := d.tick(ctx)
	return fired, err
}

// tick is Tick that also returns the earliest next run of an unpaused schedule.
func (d *Dispatcher) tick(ctx context.Context) ([]Fired, time.Time, error) {
	if d.Store == nil || d.Client == nil {
		return nil, time.Time{}, errors.New("dispatcher: Store and Client are required")
	}
	scheds, err := d.Store.List(ctx)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("dispatcher: list schedules: %w", err)
	}
	now := d.now()
	var (
		all      []Fired
		earliest time.Time
		errs     []error
	)
	for i := range scheds {
		sc := &scheds[i]
		if sc.Paused || sc.NextRun.IsZero() {
			continue
		}
		next := sc.NextRun
		if !sc.NextRun.After(now) {
			fired, n, err := d.fire(ctx, sc, now)
			all = append(all, fired...)
			if err != nil {
				errs = append(errs, err)
				d.log().Warn("schedule tick failed", "schedule", sc.ID, "task", sc.Task.Name, "err", err)
				continue
			}
			next = n
		}
		if !next.IsZero() && (earliest.IsZero() || next.Before(earliest)) {
			earliest = next
		}
	}
	return all, earliest, errors.Join(errs...)
}

// fire enqueues the due ticks of one schedule and advances it; it returns the
// ticks and the schedule's new next run.
func (d *Dispatcher) fire(ctx context.Context, sc *Schedule, now time.Time) ([]Fired, time.Time, error) {
	tm, err := TimingOf(sc)
	if err != nil {
		d.onTick(TickEvent{ScheduleID: sc.ID, Task: sc.Task.Name, FireTime: sc.NextRun, Outcome: TickFailed, Err: err})
		return nil, time.Time{}, err
	}
	due, next := DueTimes(sc, tm, now, d.grace())
	window := max(MinUniqueWindow, 2*tm.Period(now))
	var fired []Fired
	for _, f := range due {
		key := TickKey(sc.ID, f)
		runAt := f.Add(jitter(key, sc.Jitter))
		res, err := d.Client.Enqueue(ctx, sc.Task, argsOrEmpty(sc.Args), nuvom.At(runAt), nuvom.Unique(key, window))
		if err != nil {
			err = fmt.Errorf("schedule %s: enqueue tick %s: %w", sc.ID, f.Format(time.RFC3339), err)
			d.onTick(TickEvent{ScheduleID: sc.ID, Task: sc.Task.Name, FireTime: f, Outcome: TickFailed, Err: err})
			return fired, time.Time{}, err
		}
		fired = append(fired, Fired{ScheduleID: sc.ID, FireTime: f, JobID: res.ID, Duplicate: res.Duplicate})
		outcome := TickEnqueued
		if res.Duplicate {
			outcome = TickDuplicate
		}
		d.onTick(TickEvent{ScheduleID: sc.ID, Task: sc.Task.Name, FireTime: f, JobID: res.ID, Outcome: outcome})
		d.log().Debug("schedule tick", "schedule", sc.ID, "task", sc.Task.Name, "fire_time", f, "job", res.ID, "duplicate", res.Duplicate)
	}
	a := Advance{From: sc.NextRun, NextRun: next, Now: now}
	if len(fired) > 0 {
		last := fired[len(fired)-1]
		a.LastRun, a.LastJobID = last.FireTime, last.JobID
	}
	if _, err := d.Store.Advance(ctx, sc.ID, a); err != nil {
		return fired, time.Time{}, fmt.Errorf("schedule %s: advance: %w", sc.ID, err)
	}
	// Lost the compare-and-set: another dispatcher advanced it; its ticks were
	// the same keys, so nothing was enqueued twice.
	return fired, next, nil
}

// TickKey is the unique key of the job a schedule enqueues for fire time f:
// sched:<id>:<unix seconds>, with the nanoseconds after a decimal point when
// f is not on a whole second (sched:<id>:1767225600.250000000), so that the
// ticks of an interval under a second have distinct keys while whole-second
// ticks keep the key earlier versions gave them.
func TickKey(id string, f time.Time) string {
	key := "sched:" + id + ":" + strconv.FormatInt(f.Unix(), 10)
	if ns := f.Nanosecond(); ns != 0 {
		key += fmt.Sprintf(".%09d", ns)
	}
	return key
}

// DueTimes returns the fire times of sc that are due at now (NextRun at or
// before now), oldest first, and the next run after them. Those no more than
// grace before now are all due; of the older ones (missed ticks), only the
// latest under MisfireSkip when no tick is within grace, the latest
// CatchUpLimit under MisfireCatchUp.
func DueTimes(sc *Schedule, tm Timing, now time.Time, grace time.Duration) (due []time.Time, next time.Time) {
	if sc.NextRun.IsZero() || sc.NextRun.After(now) {
		return nil, sc.NextRun
	}
	limit := 1
	if sc.Misfire == nuvom.MisfireCatchUp {
		limit = sc.CatchUpLimit
		if limit <= 0 {
			limit = nuvom.DefaultCatchUpLimit
		}
	}
	switch sc.Kind {
	case nuvom.ScheduleOnce:
		return []time.Time{sc.NextRun}, time.Time{}
	case nuvom.ScheduleInterval:
		every := tm.every
		k := int64(now.Sub(sc.NextRun) / every) // ticks after NextRun that are due too
		from := max(0, k-int64(limit)+1)
		if grace > 0 && !sc.NextRun.Before(now.Add(-grace)) {
			from = 0 // all within grace
		} else if grace > 0 {
			// The first tick at or after now-grace.
			lag := now.Add(-grace).Sub(sc.NextRun)
			late := int64(lag / every)
			if lag%every != 0 {
				late++
			}
			from = max(0, min(from, late))
		}
		for i := from; i <= k; i++ {
			due = append(due, sc.NextRun.Add(time.Duration(i)*every).UTC())
		}
		return due, sc.NextRun.Add(time.Duration(k) * every).Add(every).UTC() // (k+1)*every may overflow
	}
	f := sc.NextRun
	for steps := 0; !f.IsZero() && !f.After(now); steps++ {
		if steps == maxCronSteps {
			// Down for very long: keep what we have and go on from now.
			return due, tm.Next(sc.Anchor, now)
		}
		due = append(due, f)
		for len(due) > limit && due[0].Before(now.Add(-grace)) {
			due = due[1:]
		}
		f = tm.Next(sc.Anchor, f)
	}
	return due, f
}

// jitter is a pseudo-random delay below max, the same for the same key (so
// racing dispatchers agree).
func jitter(key string, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(max))
}

// Run ticks until ctx is cancelled: it waits until the earliest next run (at
// most MaxSleep), takes or renews the lease, and ticks while it holds it. It
// releases the lease when it returns. Problems of a tick are logged, not fatal.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.Store == nil || d.Client == nil {
		return errors.New("dispatcher: Store and Client are required")
	}
	owner := d.Owner
	if owner == "" {
		owner = defaultOwner()
	}
	leaseFor := d.LeaseFor
	if leaseFor == 0 {
		leaseFor = DefaultLeaseFor
	}
	maxSleep := d.MaxSleep
	if maxSleep <= 0 {
		maxSleep = DefaultMaxSleep
	}
	if leaseFor > 0 {
		maxSleep = min(maxSleep, max(leaseFor/4, time.Millisecond))
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := d.Store.ReleaseLease(rctx, owner); err != nil {
				d.log().Warn("scheduler: release lease", "err", err)
			}
		}()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		wait := maxSleep
		leader := true
		if leaseFor > 0 {
			ok, err := d.Store.AcquireLease(ctx, owner, d.now(), leaseFor)
			if err != nil && ctx.Err() == nil {
				d.log().Warn("scheduler: acquire lease", "err", err)
			}
			leader = ok && err == nil
		}
		if leader {
			_, earliest, err := d.tick(ctx)
			if err != nil && ctx.Err() == nil {
				d.log().Warn("scheduler: tick", "err", err)
			}
			if !earliest.IsZero() {
				wait = min(wait, max(earliest.Sub(d.now()), 0)+time.Millisecond)
			}
		}
		timer.Reset(wait)
	}
}

func defaultOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
