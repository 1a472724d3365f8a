package nuvom

import (
	"context"
	"errors"
	"io"
	"time"
)

// ScheduleKind says how a schedule's fire times are computed.
type ScheduleKind string

// The kinds of schedule.
const (
	ScheduleOnce     ScheduleKind = "once"     // one fire time
	ScheduleInterval ScheduleKind = "interval" // every fixed duration
	ScheduleCron     ScheduleKind = "cron"     // a cron expression in a time zone
)

// MisfirePolicy says what a dispatcher does with ticks that fell due while no
// dispatcher was running.
type MisfirePolicy string

// The misfire policies.
const (
	// MisfireSkip enqueues only the latest missed tick, once (the default).
	MisfireSkip MisfirePolicy = "skip"
	// MisfireCatchUp enqueues every missed tick, up to the schedule's catch-up limit.
	MisfireCatchUp MisfirePolicy = "catch_up"
)

// DefaultCatchUpLimit bounds the missed ticks a catch_up schedule enqueues at once.
const DefaultCatchUpLimit = 100

// ScheduleSpec says when a schedule fires. Build one with Cron, Every, OnceAt
// or OnceIn and refine it with its methods:
//
//	ResizeTask.Schedule(ctx, client, nuvom.Cron("0 3 * * *", "Europe/Berlin"), "a.png", 128)
type ScheduleSpec struct {
	Kind ScheduleKind
	// Cron is the expression of a cron schedule: 5 fields, an optional leading
	// seconds field, or a descriptor such as @hourly or @every 90s.
	Cron string
	// Zone is the IANA time zone a cron expression is read in; empty means UTC.
	Zone string
	// Every is an interval schedule's period.
	Every time.Duration
	// At is a one-off's fire time, or an interval schedule's first fire time
	// (zero: one period from now).
	At time.Time
	// In is a one-off's delay from now, used when At is zero.
	In time.Duration
	// Misfire is the misfire policy; empty means MisfireSkip.
	Misfire MisfirePolicy
	// CatchUpLimit bounds the missed ticks enqueued under MisfireCatchUp; 0 means DefaultCatchUpLimit.
	CatchUpLimit int
	// Jitter, when positive, delays each tick's job by a pseudo-random duration below it.
	Jitter time.Duration
	// ID, when set, names the schedule; creating a schedule with an existing ID replaces it.
	ID string
}

// Cron returns a spec that fires on a cron expression read in the IANA time
// zone zone ("" for UTC), for example Cron("0 3 * * *", "Europe/Berlin").
func Cron(expr, zone string) ScheduleSpec {
	return ScheduleSpec{Kind: ScheduleCron, Cron: expr, Zone: zone}
}

// Every returns a spec that fires every d, first one d from now (see StartingAt).
func Every(d time.Duration) ScheduleSpec { return ScheduleSpec{Kind: ScheduleInterval, Every: d} }

// OnceAt returns a spec that fires once, at t.
func OnceAt(t time.Time) ScheduleSpec { return ScheduleSpec{Kind: ScheduleOnce, At: t} }

// OnceIn returns a spec that fires once, d from when the schedule is created.
func OnceIn(d time.Duration) ScheduleSpec { return ScheduleSpec{Kind: ScheduleOnce, In: d} }

// StartingAt sets an interval schedule's first fire time.
func (s ScheduleSpec) StartingAt(t time.Time) ScheduleSpec { s.At = t; return s }

// CatchUp makes the schedule enqueue every missed tick, at most limit at once (0: DefaultCatchUpLimit).
func (s ScheduleSpec) CatchUp(limit int) ScheduleSpec {
	s.Misfire, s.CatchUpLimit = MisfireCatchUp, limit
	return s
}

// WithJitter delays each tick's job by a pseudo-random duration below d; d
// must be shorter than the time between two runs (an interval schedule's
// interval; a cron schedule's shortest gap between runs in the coming year).
func (s ScheduleSpec) WithJitter(d time.Duration) ScheduleSpec { s.Jitter = d; return s }

// WithID names the schedule, so that creating it again replaces it instead of adding another.
func (s ScheduleSpec) WithID(id string) ScheduleSpec { s.ID = id; return s }

// Scheduler stores schedules. Package runtime/schedule implements it over its
// stores; runtime/config attaches one to the clients it opens.
type Scheduler interface {
	// CreateSchedule validates when and stores a schedule that enqueues task
	// with the encoded args at each fire time; it returns the schedule's id.
	CreateSchedule(ctx context.Context, task TaskSpec, args []byte, when ScheduleSpec) (id string, err error)
}

// ErrNoScheduler is returned by Client.Schedule on a client opened without one.
var ErrNoScheduler = errors.New("client has no scheduler: open it with runtime/config or runtime.WithScheduler")

// WithScheduler gives the client a scheduler for Schedule. When s is an
// io.Closer, closing the client closes it.
func WithScheduler(s Scheduler) ClientOption {
	return func(c *Client) { c.scheduler = s }
}

// Scheduler returns the client's scheduler, or nil.
func (c *Client) Scheduler() Scheduler { return c.scheduler }

// Schedule stores a schedule that enqueues task with the encoded args at each
// fire time of when, and returns its id. Generated Schedule methods call it.
func (c *Client) Schedule(ctx context.Context, task TaskSpec, args []byte, when ScheduleSpec) (string, error) {
	if c.scheduler == nil {
		return "", ErrNoScheduler
	}
	return c.scheduler.CreateSchedule(ctx, task, args, when)
}

// closeScheduler closes the client's scheduler when it is an io.Closer.
func (c *Client) closeScheduler() error {
	if cl, ok := c.scheduler.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}
