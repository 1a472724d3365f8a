package backend

import (
	"math"
	"time"
)

// The stored time range in Unix nanoseconds: the int64 range rounded inwards
// to whole microseconds, so that a backend storing int64 Unix nanoseconds
// (SQLite) and one storing microseconds both hold its ends exactly.
const (
	minNanos = math.MinInt64 / 1000 * 1000
	maxNanos = math.MaxInt64 / 1000 * 1000
)

// MinTime is the earliest time a backend stores: about 1677-09-21 (UTC).
func MinTime() time.Time { return time.Unix(0, minNanos).UTC() }

// MaxTime is the latest time a backend stores: about 2262-04-11 (UTC).
func MaxTime() time.Time { return time.Unix(0, maxNanos).UTC() }

// ClampTime returns t limited to [MinTime, MaxTime]; the zero time ("not set")
// and times inside the range are returned unchanged.
//
// Every backend stores every time of a job (and of a ClaimRequest, Outcome,
// Extend, RecoverExpired, Cancel or Retry call) clamped, and compares clamped
// times: a job scheduled for the year 2300 is stored with RunAt = MaxTime and
// becomes ready at MaxTime; one scheduled for 1600 is stored with RunAt =
// MinTime and is ready at once; a unique window that ends after MaxTime
// lasts until MaxTime.
func ClampTime(t time.Time) time.Time {
	switch {
	case t.IsZero():
		return t
	case t.Before(MinTime()):
		return MinTime()
	case t.After(MaxTime()):
		return MaxTime()
	}
	return t
}

// ClampTimes clamps every time of j with ClampTime, in place: j's own times
// and those of the elements of j.Attempts (so call it on a copy whose
// Attempts slice is not shared with the caller's).
func (j *Job) ClampTimes() {
	for _, t := range []*time.Time{&j.RunAt, &j.UniqueUntil, &j.CreatedAt, &j.StartedAt, &j.FinishedAt, &j.LeaseUntil} {
		*t = ClampTime(*t)
	}
	for i := range j.Attempts {
		a := &j.Attempts[i]
		a.StartedAt, a.FinishedAt = ClampTime(a.StartedAt), ClampTime(a.FinishedAt)
	}
}
