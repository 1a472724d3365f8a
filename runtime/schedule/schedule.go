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
	"fmt"
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
	// Args are the task's encoded arguments, a msgpack array (0x90, the
	// empty array, for a task without parameters).
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
	Source string `json:"source"`
	// SetGeneration and SetFingerprint name the task set whose annotations
	// last wrote an annotation schedule, and SetWrittenAt when (see
	// SyncAnnotations); zero for user schedules and for annotation schedules
	// written before task sets were recorded.
	SetGeneration  int64     `json:"set_generation,omitempty"`
	SetFingerprint string    `json:"set_fingerprint,omitempty"`
	SetWrittenAt   time.Time `json:"set_written_at,omitzero"`
	// CreatedAt and UpdatedAt are when the schedule was created and last changed.
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

// Action is what an Update does with the schedule it read.
type Action int

// Actions of Update.
const (
	Keep   Action = iota // leave it as it is
	Put                  // store the schedule the function returned
	Remove               // delete it
)

// UpdateFunc decides what Store.Update does with the schedule it read.
type UpdateFunc func(cur Schedule, found bool, newestSet int64) (Schedule, Action)

// AnnotationSet is a task set that synchronised annotation schedules: the
// fingerprint of its declarations and the generation the store gave it when
// it first saw it. A set first seen later has a higher generation.
type AnnotationSet struct {
	Fingerprint string    `json:"fingerprint"`
	Generation  int64     `json:"generation"`
	FirstSeen   time.Time `json:"first_seen"`
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
	// Update reads the schedule id and calls fn with it (found false, and a
	// zero schedule, when there is none) and with the newest annotation-set
	// generation recorded (see RegisterAnnotationSet); what fn returns is
	// applied in the same atomic step: Put stores the schedule fn returned
	// (its ID must be id), Remove deletes it, Keep changes nothing. Update
	// returns the action applied (Keep for a Remove of a missing schedule).
	Update(ctx context.Context, id string, fn UpdateFunc) (Action, error)
	// RegisterAnnotationSet records the task set with fingerprint fp, giving
	// it the next generation when the store has not seen it before, and
	// returns it with the newest generation recorded, atomically.
	RegisterAnnotationSet(ctx context.Context, fp string, now time.Time) (set AnnotationSet, newest int64, err error)
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

// UpdateChange checks what fn returns for Update: a Put must keep the id.
func UpdateChange(id string, cur Schedule, found bool, newestSet int64, fn UpdateFunc) (Schedule, Action, error) {
	next, act := fn(cur, found, newestSet)
	switch act {
	case Put:
		if next.ID != id {
			return next, Keep, fmt.Errorf("update schedule %s: the new schedule has id %q", id, next.ID)
		}
		return Normalize(next), Put, nil
	case Remove:
		if !found {
			return next, Keep, nil
		}
		return next, Remove, nil
	}
	return next, Keep, nil
}

// argsOrEmpty returns args, or the encoding of an empty argument list (the
// msgpack empty array, 0x90) when args is empty: what a task without
// parameters decodes. Schedules of such tasks stored by earlier versions have
// no payload at all.
func argsOrEmpty(args []byte) []byte {
	if len(args) == 0 {
		return []byte{0x90}
	}
	return args
}

// Normalize returns s with its times in UTC without monotonic readings, as
// every store keeps them.
func Normalize(s Schedule) Schedule {
	for _, t := range []*time.Time{&s.Anchor, &s.NextRun, &s.LastRun, &s.SetWrittenAt, &s.CreatedAt, &s.UpdatedAt} {
		if t.IsZero() {
			*t = time.Time{}
		} else {
			*t = t.UTC().Round(0)
		}
	}
	return s
}
