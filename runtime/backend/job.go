package backend

import "time"

// State is where a job is in its life.
type State string

// The states of a job. Succeeded, Failed and Cancelled are final.
const (
	StateScheduled   State = "scheduled"   // waiting for its run-at time
	StateQueued      State = "queued"      // ready to run
	StateRunning     State = "running"     // leased by a worker
	StateRetrying    State = "retrying"    // failed an attempt, waiting for the next
	StateSucceeded   State = "succeeded"   // final
	StateFailed      State = "failed"      // final: attempts exhausted or not retryable
	StateCancelled   State = "cancelled"   // final
	StateQuarantined State = "quarantined" // its payload cannot be decoded; kept for inspection
)

// AllStates returns every state, in life order.
func AllStates() []State {
	return []State{StatePending, StateScheduled, StateQueued, StateRunning, StateRetrying,
		StateSucceeded, StateFailed, StateCancelled, StateQuarantined}
}

// Final reports whether no further attempt will happen without a manual retry.
func (s State) Final() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled || s == StateQuarantined
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	for _, v := range AllStates() {
		if v == s {
			return true
		}
	}
	return false
}

// TimeoutPolicy says what happens to an attempt that runs past its timeout.
type TimeoutPolicy string

// The timeout policies.
const (
	TimeoutRetry  TimeoutPolicy = "retry"  // count a failed attempt and retry if attempts remain
	TimeoutFail   TimeoutPolicy = "fail"   // fail the job at once
	TimeoutIgnore TimeoutPolicy = "ignore" // mark the job succeeded with an empty result, recording the timeout
)

// Outcomes recorded in an attempt.
const (
	OutcomeSucceeded  = "succeeded"
	OutcomeFailed     = "failed"
	OutcomeTimedOut   = "timed_out"
	OutcomeAbandoned  = "abandoned" // timed out and did not return within the grace period
	OutcomePanicked   = "panicked"
	OutcomeLost       = "lost" // the worker's lease expired (crash or stall)
	OutcomeReleased   = "released"
	OutcomeRejected   = "rejected"    // unknown task, signature mismatch or undecodable payload
	OutcomeCancelled  = "cancelled"   // the job was cancelled while it ran
	OutcomeHandedBack = "handed_back" // another deploy's job (signature mismatch), left for a worker that has its signature
)

// Job is a job's full record.
type Job struct {
	ID        string `json:"id" msgpack:"id"`
	Task      string `json:"task" msgpack:"task"`
	Signature string `json:"signature" msgpack:"signature"`
	Args      []byte `json:"args" msgpack:"args"`
	Queue     string `json:"queue" msgpack:"queue"`
	Priority  int    `json:"priority" msgpack:"priority"`
	State     State  `json:"state" msgpack:"state"`
	// Attempt is the number of attempts started so far (the current one while running).
	Attempt     int       `json:"attempt" msgpack:"attempt"`
	MaxAttempts int       `json:"max_attempts" msgpack:"max_attempts"`
	RunAt       time.Time `json:"run_at" msgpack:"run_at"`
	// Timeout is the per-attempt timeout; zero means none.
	Timeout       time.Duration `json:"timeout" msgpack:"timeout"`
	TimeoutPolicy TimeoutPolicy `json:"timeout_policy" msgpack:"timeout_policy"`
	StoreResult   bool          `json:"store_result" msgpack:"store_result"`
	// UniqueKey, when set, makes a second enqueue with the same key before UniqueUntil return this job.
	UniqueKey   string    `json:"unique_key,omitempty" msgpack:"unique_key"`
	UniqueUntil time.Time `json:"unique_until,omitzero" msgpack:"unique_until"`
	// Meta is the job's metadata: string pairs set at enqueue (by enqueue
	// options and hooks, for example a trace context) and never changed
	// after; see meta.go. Nil and empty are the same.
	Meta map[string]string `json:"meta,omitempty" msgpack:"meta,omitempty"`

	CreatedAt  time.Time `json:"created_at" msgpack:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero" msgpack:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero" msgpack:"finished_at"`

	Result     []byte    `json:"result,omitempty" msgpack:"result"`
	Error      string    `json:"error,omitempty" msgpack:"error"`
	ErrorChain []string  `json:"error_chain,omitempty" msgpack:"error_chain"`
	PanicStack string    `json:"panic_stack,omitempty" msgpack:"panic_stack"`
	Attempts   []Attempt `json:"attempts" msgpack:"attempts"`

	// Lease: who holds the job while it runs, until when, and the fencing token of that claim.
	LeaseOwner string    `json:"lease_owner,omitempty" msgpack:"lease_owner"`
	LeaseToken int64     `json:"lease_token" msgpack:"lease_token"`
	LeaseUntil time.Time `json:"lease_until,omitzero" msgpack:"lease_until"`
}

// Attempt is the record of one run of a job.
type Attempt struct {
	Number     int       `json:"number" msgpack:"number"`
	StartedAt  time.Time `json:"started_at" msgpack:"started_at"`
	FinishedAt time.Time `json:"finished_at" msgpack:"finished_at"`
	Worker     string    `json:"worker" msgpack:"worker"`
	Outcome    string    `json:"outcome" msgpack:"outcome"`
	Error      string    `json:"error,omitempty" msgpack:"error"`
}

// Lease identifies one claim of a job: only the holder of the current token may
// extend, complete or release it.
type Lease struct {
	JobID string
	Token int64
}

// Lease returns the job's current lease.
func (j *Job) Lease() Lease { return Lease{JobID: j.ID, Token: j.LeaseToken} }
