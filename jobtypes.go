package nuvom

import "github.com/nuvom/nuvom/runtime/backend"

// The job model is defined by the storage contract (package runtime/backend)
// and named here for users: these are aliases, not copies.

// Job is a job's full record, as Client.Get and the Inspector return it.
type Job = backend.Job

// Attempt is the record of one run of a job.
type Attempt = backend.Attempt

// State is where a job is in its life.
type State = backend.State

// The states of a job. Succeeded, Failed, Cancelled and Quarantined are final.
const (
	StateScheduled   = backend.StateScheduled
	StateQueued      = backend.StateQueued
	StateRunning     = backend.StateRunning
	StateRetrying    = backend.StateRetrying
	StateSucceeded   = backend.StateSucceeded
	StateFailed      = backend.StateFailed
	StateCancelled   = backend.StateCancelled
	StateQuarantined = backend.StateQuarantined
)

// AllStates returns every state, in life order.
func AllStates() []State { return backend.AllStates() }

// TimeoutPolicy says what happens to an attempt that runs past its timeout.
type TimeoutPolicy = backend.TimeoutPolicy

// The timeout policies.
const (
	TimeoutRetry  = backend.TimeoutRetry  // count a failed attempt and retry if attempts remain
	TimeoutFail   = backend.TimeoutFail   // fail the job at once
	TimeoutIgnore = backend.TimeoutIgnore // mark the job succeeded with an empty result, recording the timeout
)

// Outcomes recorded in an attempt (Attempt.Outcome).
const (
	OutcomeSucceeded  = backend.OutcomeSucceeded
	OutcomeFailed     = backend.OutcomeFailed
	OutcomeTimedOut   = backend.OutcomeTimedOut
	OutcomeAbandoned  = backend.OutcomeAbandoned
	OutcomePanicked   = backend.OutcomePanicked
	OutcomeLost       = backend.OutcomeLost
	OutcomeReleased   = backend.OutcomeReleased
	OutcomeRejected   = backend.OutcomeRejected
	OutcomeCancelled  = backend.OutcomeCancelled
	OutcomeHandedBack = backend.OutcomeHandedBack
)

// Backend stores jobs; see package runtime/backend for the contract. Open one
// with runtime/config (what the CLI uses) or a driver package (runtime/sqlite,
// runtime/file, runtime/memory).
type Backend = backend.Backend

// EnqueueResult is the outcome of enqueueing one job.
type EnqueueResult = backend.EnqueueResult

// Outcome is the decided result of one attempt, as stored.
type Outcome = backend.Outcome

// Lease identifies one claim of a job.
type Lease = backend.Lease

// ListFilter selects jobs for Inspector.List.
type ListFilter = backend.ListFilter

// PurgeFilter selects jobs for Inspector.Purge.
type PurgeFilter = backend.PurgeFilter

// QueueStat counts the jobs of one queue in one state.
type QueueStat = backend.QueueStat

// Errors of job operations, for errors.Is.
var (
	// ErrNotFound: no job with that id.
	ErrNotFound = backend.ErrNotFound
	// ErrWrongState: the operation does not apply to the job's current state
	// (for example cancelling a job that already finished).
	ErrWrongState = backend.ErrWrongState
	// ErrLeaseLost is the cause (context.Cause) of an attempt's context that the
	// worker cancelled because it no longer holds the job's lease: the worker
	// stalled past the lease and the job was recovered. A job cancelled by a
	// user has the cause ErrJobCancelled instead.
	ErrLeaseLost = backend.ErrLeaseLost
)
