package plugin

import "time"

// Tick is one due tick of a schedule that the worker's scheduler handled, as
// Host.SubscribeTicks delivers it.
type Tick struct {
	// Schedule is the schedule's id.
	Schedule string
	// Task is the task the schedule enqueues.
	Task string
	// FireTime is the tick's fire time.
	FireTime time.Time
	// JobID is the job enqueued for the tick (the earlier one for a
	// duplicate); empty when it failed.
	JobID string
	// Outcome is "enqueued", "duplicate" (another worker's scheduler had
	// enqueued it already) or "failed".
	Outcome string
	// Error says why it failed.
	Error string
}
