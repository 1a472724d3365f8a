// Package schedule is Nuvom's scheduler: persistent one-off, interval and cron
// schedules, the Store interface their storage implements (memory here; SQLite
// and files in sqlitestore and filestore), and the Dispatcher that enqueues
// each schedule's due ticks.
//
// Exactly one job per (schedule, fire time): the dispatcher enqueues each tick
// with the unique key sched:<id>:<fire time> (TickKey), and every backend returns the
// existing job for a duplicate key, so several dispatchers racing, or one
// crashing between enqueueing a tick and recording it, never enqueue a tick
// twice. The store's lease elects one dispatcher at a time only to save work.
package schedule

import (
	"context"
	"errors"
	"time"

	"github.com/nuvom/nuvom"
)

// Sources of a schedule.
const (
	SourceUser       = "user"       // created through the API or the CLI
	SourceAnnotation = "annotation" // declared with cron= or every= in a //nuvom:task annotation
)

// Errors stores return (wrapped with context).
var (
	// ErrNotFound: no schedule with that id.
	ErrNotFound = errors.New("schedule not found")
)

// Schedule is one stored schedule.
type Schedule struct {
	ID string `json:"id"`
	// Task is what each tick enqueues: the task's name, signature and options.
	Task nuvom.TaskSpec `json:"task"`
	// Args are the task's encoded arguments.
	Args []byte             `json:"args"`
	Kind nuvom.ScheduleKind `json:"kind"`
	// Spec is the cron expression, the interval as a Go duration, or the one-off's RFC 3339 time.
	Spec string `json:"spec"`
	// Zone is the IANA time zone of a cron spec ("" for UTC).
	Zone string `json:"zone,omitempty"`
	// Anchor is an interval schedule's first fire time; its fire times are Anchor + k*interval.
	Anchor time.Time `json:"anchor,omitzero"`
	// NextRun is the next fire time not yet enqueued; zero when none is left.
	NextRun   time.Time           `json:"next_run,omitzero"`
	LastRun   time.Time           `json:"last_run,omitzero"`
	LastJobID string              `json:"last_job_id,omitempty"`
	Paused    bool                `json:"paused"`
	Misfire   nuvom.MisfirePolicy `json:"misfire"`
	// CatchUpLimit bounds the missed ticks enqueued at once under catch_up.
	CatchUpLimit int           `json:"catch_up_limit,omitempty"`
	Jitter       time.Duration `json:"jitter,omitempty"`
	// Source is SourceUser or SourceAnnotation.
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Advance is what a dispatcher records after enqueueing a schedule's due ticks.
type Advance struct {
	// From is the NextRun the dispatcher read; the store applies the advance
	// only if NextRun still equals it (compare-and-set).
	From      time.Time
	NextRun   time.Time
	LastRun   time.Time
	LastJobID string
	Now       time.Time
}

// Store keeps schedules. All methods are safe for concurrent use, across
// processes where the storage is shared. storetest states the contract.
type Store interface {
	// List returns every schedule, sorted by ID.
	List(ctx context.Context) ([]Schedule, error)
	// Get returns one schedule, or ErrNotFound.
	Get(ctx context.Context, id string) (Schedule, error)
	// Upsert inserts s or replaces the schedule with its ID.
	Upsert(ctx context.Context, s Schedule) error
	// Delete removes a schedule, or returns ErrNotFound.
	Delete(ctx context.Context, id string) error
	// Pause marks a schedule paused (ErrNotFound if missing).
	Pause(ctx context.Context, id string, now time.Time) error
	// Resume clears paused and sets NextRun to next (ErrNotFound if missing).
	Resume(ctx context.Context, id string, next, now time.Time) error
	// Advance applies a to the schedule if its NextRun equals a.From, and
	// reports whether it did. Two dispatchers can never both advance from the
	// same NextRun.
	Advance(ctx context.Context, id string, a Advance) (bool, error)
	// AcquireLease makes owner the dispatcher lease holder until now+ttl if the
	// lease is free, expired or already owner's, and reports whether it did.
	AcquireLease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease frees the lease if owner holds it.
	ReleaseLease(ctx context.Context, owner string) error
	// Close releases the store's resources.
	Close() error
}

// Apply applies an advance to s (stores call it after their compare-and-set check).
func (a Advance) Apply(s *Schedule) {
	s.NextRun = a.NextRun.UTC()
	if !a.LastRun.IsZero() {
		s.LastRun = a.LastRun.UTC()
	}
	if a.LastJobID != "" {
		s.LastJobID = a.LastJobID
	}
	s.UpdatedAt = a.Now.UTC()
}

// The changes Pause, Resume and Advance make, shared by every store: each
// store applies them with its own atomic read-modify-write of one schedule.
// A change returns false when it does not apply (nothing is written).

// PauseChange marks a schedule paused at now.
func PauseChange(now time.Time) func(*Schedule) bool {
	return func(s *Schedule) bool { s.Paused, s.UpdatedAt = true, now; return true }
}

// ResumeChange clears paused and sets the next run.
func ResumeChange(next, now time.Time) func(*Schedule) bool {
	return func(s *Schedule) bool {
		s.Paused, s.NextRun, s.UpdatedAt = false, next, now
		return true
	}
}

// Change applies a only while the schedule's next run still equals a.From:
// the compare-and-set that keeps two dispatchers from both advancing it.
func (a Advance) Change() func(*Schedule) bool {
	return func(s *Schedule) bool {
		if !s.NextRun.Equal(a.From) {
			return false
		}
		a.Apply(s)
		return true
	}
}

// Normalize returns s with its times in UTC without monotonic readings, as
// every store keeps them.
func Normalize(s Schedule) Schedule {
	for _, t := range []*time.Time{&s.Anchor, &s.NextRun, &s.LastRun, &s.CreatedAt, &s.UpdatedAt} {
		if t.IsZero() {
			*t = time.Time{}
		} else {
			*t = t.UTC().Round(0)
		}
	}
	return s
}
