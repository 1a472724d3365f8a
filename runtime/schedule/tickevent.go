package schedule

import "time"

// The outcomes of a tick (TickEvent.Outcome).
const (
	// TickEnqueued: the tick's job was enqueued.
	TickEnqueued = "enqueued"
	// TickDuplicate: another dispatcher had already enqueued this tick's job.
	TickDuplicate = "duplicate"
	// TickFailed: the tick's job could not be enqueued (or the schedule's
	// timing could not be read); the tick is tried again at the next pass.
	TickFailed = "failed"
)

// TickEvent is one due tick a dispatcher handled, as Dispatcher.OnTick
// receives it.
type TickEvent struct {
	ScheduleID string
	Task       string
	// FireTime is the tick's fire time (the schedule's next run when its
	// timing could not be read).
	FireTime time.Time
	// JobID is the job enqueued for the tick (the earlier one for a
	// duplicate); empty when it failed.
	JobID string
	// Outcome is TickEnqueued, TickDuplicate or TickFailed.
	Outcome string
	// Err is why it failed.
	Err error
}

// onTick reports e to d.OnTick, if set.
func (d *Dispatcher) onTick(e TickEvent) {
	if d.OnTick != nil {
		d.OnTick(e)
	}
}
