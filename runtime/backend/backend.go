// Package backend is the storage contract of Nuvom: the job record, its states
// and the Backend interface that every store (sqlite, file, memory, redis)
// implements. The conformance suite in backend/backendtest
// states the contract precisely; every backend passes it.
//
// Backends import this package and nothing of the user API (package nuvom);
// the user API aliases the types users meet (nuvom.Job, nuvom.State, ...).
package backend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Errors every backend returns for the same conditions (wrapped with context).
var (
	// ErrNotFound: no job with that id.
	ErrNotFound = errors.New("job not found")
	// ErrLeaseLost: the caller's fencing token no longer holds the job's lease.
	ErrLeaseLost = errors.New("lease lost")
	// ErrWrongState: the operation does not apply to the job's current state.
	ErrWrongState = errors.New("job is not in a state that allows this")
)

// Backend stores jobs: a queue with leases plus the result store with history.
// All methods are safe for concurrent use, across goroutines and, where the
// backend is shared storage, across processes. The conformance suite in
// backend/backendtest states the contract precisely; every backend passes it.
type Backend interface {
	// Enqueue inserts jobs all-or-nothing: when it returns an error (an invalid
	// job, an id that exists already or twice in the batch, a cancelled context,
	// a storage failure) none of the jobs is stored, and the same batch may be
	// enqueued again; an error caused by ctx ending wraps ctx.Err(). Jobs
	// arrive complete: ID, task, queue, state (queued or scheduled), run-at
	// and created times set.
	//
	// A job whose UniqueKey matches an earlier job of the same Task (in any
	// state, including an earlier job of the same batch) whose UniqueUntil is
	// after the new job's CreatedAt is not inserted: its result carries the
	// earlier job's id and Duplicate. Keys of different tasks never match.
	//
	// Times are stored clamped to [MinTime, MaxTime] (see ClampTime); every
	// comparison (run-at against a claim's now, lease deadlines, unique windows)
	// is made on the clamped times, and Get returns them.
	Enqueue(ctx context.Context, jobs []*Job) ([]EnqueueResult, error)

	// Claim leases up to req.Limit jobs that are ready (queued, scheduled or retrying,
	// with RunAt <= req.Now) in req.Queues (all queues when empty) and of
	// req.Tasks (all tasks when empty), highest priority first, then earliest
	// RunAt, then lowest ID. A Limit of 0 or less claims nothing. Each claimed job
	// is returned in state running with Attempt incremented, StartedAt = req.Now,
	// LeaseOwner = req.Worker, LeaseUntil = req.Now + req.LeaseFor and a LeaseToken
	// greater than any earlier token of that job (the first claim's token is above
	// 0). Jobs may come back in any order; RunAt is not changed. Two claimers never
	// receive the same job under one lease. A claimed job carries what a worker
	// runs it with and its Attempts; its Result, Error, ErrorChain, PanicStack,
	// UniqueKey and UniqueUntil may be left empty (Get returns them), so that a
	// claim need not read them. A job that is not running has no lease
	// (LeaseOwner empty, LeaseUntil zero) but keeps its LeaseToken.
	//
	// A selected job whose stored record cannot be read (a damaged row or file)
	// is not returned and does not fail the call: Claim moves it to quarantined
	// with an Error saying what could not be read (where the record is too
	// damaged to keep, it is set aside where List and Get still show it as
	// quarantined), reports its id through the backend's logger, and goes on
	// claiming other jobs up to Limit.
	Claim(ctx context.Context, req ClaimRequest) ([]*Job, error)

	// Extend moves the deadline of the given leases to until. It returns the ids of
	// jobs whose lease is no longer held with that token (not extended).
	Extend(ctx context.Context, leases []Lease, until time.Time) (lost []string, err error)

	// Complete records the outcome of attempts, in one transaction where the backend
	// has them. errs[i] is ErrLeaseLost (wrapped) when outcomes[i]'s token no longer
	// holds the lease (or the job does not exist); that outcome is not applied. The
	// outcome's Result, Error, ErrorChain and PanicStack replace the job's. A State other
	// than succeeded, failed, retrying, cancelled or quarantined is an error and changes
	// nothing. err is for failures of the whole call.
	Complete(ctx context.Context, outcomes []Outcome) (errs []error, err error)

	// Release hands leased jobs back to the queue without spending an attempt:
	// state queued, Attempt decremented, lease cleared, history untouched. Stale tokens
	// are ignored.
	Release(ctx context.Context, leases []Lease) error

	// RecoverExpired finds running jobs whose lease ended strictly before now
	// (the worker crashed or stalled) and appends a lost attempt {Number: Attempt,
	// StartedAt, FinishedAt: now, Worker: the lease owner, Outcome: "lost", Error:
	// what expired}. A lost attempt does not count against the job's attempt
	// limit: MaxAttempts is raised by one (so attempt numbers stay unique), and
	// the job is retrying again at once (RunAt = now) with Error saying whose
	// lease expired; Result, ErrorChain and PanicStack are cleared. Only when the
	// job's last maxLost attempts in a row, this one included, were all lost is
	// it failed as a poison pill instead: FinishedAt = now and an Error that
	// starts "lost N times in a row: ". maxLost <= 0 never fails a job for being
	// lost. It returns how many jobs it recovered (retried or failed).
	RecoverExpired(ctx context.Context, now time.Time, maxLost int) (int, error)

	// Get returns a job's full record, or ErrNotFound.
	Get(ctx context.Context, id string) (*Job, error)

	// List returns jobs matching f, newest (highest ID) first. A job whose
	// stored record cannot be read does not fail the call: it is listed as
	// quarantined, with what could be read and an Error saying what could not
	// (Get does the same).
	List(ctx context.Context, f ListFilter) ([]*Job, error)

	// Cancel moves a pending (see Workflows), scheduled, queued, retrying or running job to cancelled
	// with FinishedAt = now (ErrWrongState otherwise, ErrNotFound for an unknown
	// id). A running job's lease ends at once (owner and deadline cleared, token
	// kept, so its holder can no longer extend or complete it) and an attempt
	// {Number, StartedAt, FinishedAt: now, Worker: the lease owner, Outcome:
	// cancelled} is appended; subscribers are signalled, so that the worker
	// holding it looks at its leases.
	Cancel(ctx context.Context, id string, now time.Time) error

	// Retry makes a failed, cancelled or quarantined job queued again with run-at now,
	// its attempt limit raised by one if exhausted; history is kept (ErrWrongState otherwise).
	Retry(ctx context.Context, id string, now time.Time) error

	// Stats counts jobs per queue and state, in any order, omitting zero counts.
	// A job whose stored state cannot be read is counted as quarantined.
	Stats(ctx context.Context, now time.Time) ([]QueueStat, error)

	// Purge deletes jobs matching f that are not running and returns how many.
	Purge(ctx context.Context, f PurgeFilter) (int, error)

	// PurgeEnded deletes the jobs matching f that ended (succeeded, failed,
	// cancelled or quarantined) before before, and returns how many: retention
	// by age. An ended job without a FinishedAt counts as ended before. Times
	// are compared clamped (see ClampTime). A job that a pending workflow
	// step waits for (whose result it may take as input) is kept. A zero
	// before is an error. It is a method of its own, not a field of
	// PurgeFilter, so that a backend (or a plugin's server) that predates it
	// fails to build, or answers "unknown method", instead of ignoring the
	// age and deleting more.
	PurgeEnded(ctx context.Context, before time.Time, f PurgeFilter) (int, error)

	// TrimEnded deletes, queue by queue, the jobs matching f that ended
	// (succeeded, failed, cancelled or quarantined), all but the newest keep
	// of them, and returns how many: retention by count. Newest is by
	// FinishedAt (compared clamped; an ended job without one is the oldest),
	// then by ID (NewerEnded). A job that a pending workflow step waits for
	// is left out: neither deleted nor counted. keep 0 deletes every ended
	// job matching f; a negative keep is an error (ErrNegativeKeep). A method
	// of its own for the reason PurgeEnded is.
	TrimEnded(ctx context.Context, keep int, f PurgeFilter) (int, error)

	// Subscribe returns a channel that receives (without blocking the sender, so
	// signals coalesce) when new work may be ready (a job was enqueued, retried
	// or released, in this process or, where the store is shared, in another),
	// and a function that unsubscribes. A store that cannot tell returns a nil
	// channel: the worker then relies on its poll. It is part of the contract,
	// not an optional interface, so that a wrapper cannot silently drop it.
	Subscribe() (ch <-chan struct{}, cancel func())

	// Close releases the backend's resources.
	Close() error
}

// EnqueueResult is the outcome of enqueueing one job.
type EnqueueResult struct {
	ID string
	// Duplicate is true when a unique key matched an existing job, whose ID this is.
	Duplicate bool
}

// ClaimRequest asks for ready jobs.
type ClaimRequest struct {
	// Queues, when not empty, limits the claim to jobs of these queues.
	Queues []string
	// Tasks, when not empty, limits the claim to jobs of these tasks (in any of
	// Queues, or in any queue when Queues is empty).
	Tasks []string
	// Limit is the most jobs to claim; 0 or less claims none.
	Limit int
	// Worker becomes the claimed jobs' LeaseOwner.
	Worker string
	// Now is the claim time: jobs with RunAt <= Now are ready; it becomes StartedAt.
	Now time.Time
	// LeaseFor is how long the lease lasts: LeaseUntil = Now + LeaseFor.
	LeaseFor time.Duration
}

// Outcome is the result of one attempt, given to Backend.Complete.
type Outcome struct {
	Lease Lease
	// State is the job's next state: succeeded, failed, retrying, cancelled or quarantined.
	State State
	// RunAt is when a retrying job becomes ready again.
	RunAt      time.Time
	FinishedAt time.Time
	Result     []byte
	Error      string
	ErrorChain []string
	PanicStack string
	// Attempt is appended to the job's history.
	Attempt Attempt
	// Queue and Task, when set, must be the claimed job's (the worker copies
	// them from the job it ran): a store may count the outcome in its
	// statistics under them without reading the job's record. They never
	// change the job; a store that reads the record anyway may ignore them.
	Queue, Task string
	// Refund makes the attempt not count against the job's attempt limit:
	// MaxAttempts is raised by one (as for a lost attempt). A worker that hands
	// back a job it cannot run yet (another deploy's signature) sets it.
	Refund bool
}

// ListFilter selects jobs for List. Zero fields match everything.
type ListFilter struct {
	States []State
	Task   string
	Queue  string
	// Since keeps jobs created at or after it.
	Since time.Time
	// Limit caps the number of jobs returned; 0 means 100.
	Limit int
}

// PurgeFilter selects jobs for Purge. Zero fields match everything not running.
type PurgeFilter struct {
	// IDs, when not empty, limits the purge to these jobs.
	IDs    []string
	Queue  string
	States []State
}

// EndedBefore is PurgeEnded's rule: whether a job in state that finished at
// finishedAt ended before before. A zero before selects every job (Purge's
// rule); times are compared clamped (see ClampTime).
func EndedBefore(before time.Time, state State, finishedAt time.Time) bool {
	if before.IsZero() {
		return true
	}
	return state.Final() && (finishedAt.IsZero() || ClampTime(finishedAt).Before(ClampTime(before)))
}

// ErrNoCutoff is PurgeEnded's error for a zero before.
var ErrNoCutoff = errors.New("the time the jobs must have ended before is zero")

// ErrNegativeKeep is TrimEnded's error for a negative keep.
var ErrNegativeKeep = errors.New("the number of ended jobs to keep is negative")

// EndedJob is what TrimEnded orders an ended job by.
type EndedJob struct {
	ID, Queue  string
	FinishedAt time.Time
}

// NewerEnded orders ended jobs newest first: by FinishedAt, later first
// (compared clamped; a zero FinishedAt is the oldest), then by ID, greater
// first. It is TrimEnded's order.
func NewerEnded(a, b EndedJob) int {
	at, bt := ClampTime(a.FinishedAt), ClampTime(b.FinishedAt)
	switch {
	case at.IsZero() != bt.IsZero():
		if at.IsZero() {
			return 1
		}
		return -1
	case !at.Equal(bt):
		return bt.Compare(at)
	}
	return strings.Compare(b.ID, a.ID)
}

// BeyondNewest returns the jobs of ended that TrimEnded deletes: in each
// queue, all but the newest keep (NewerEnded). It sorts ended in place.
func BeyondNewest(ended []EndedJob, keep int) []EndedJob {
	slices.SortFunc(ended, func(a, b EndedJob) int {
		return cmp.Or(strings.Compare(a.Queue, b.Queue), NewerEnded(a, b))
	})
	var out []EndedJob
	for i := 0; i < len(ended); {
		end := i + 1
		for end < len(ended) && ended[end].Queue == ended[i].Queue {
			end++
		}
		if end-i > keep {
			out = append(out, ended[i+keep:end]...)
		}
		i = end
	}
	return out
}

// QueueStat counts the jobs of one queue in one state.
type QueueStat struct {
	Queue string `json:"queue"`
	State State  `json:"state"`
	Count int    `json:"count"`
	// OldestRunAt is the earliest RunAt among the jobs counted (ready age for
	// queued jobs). Only queued jobs must have it: a backend may leave it
	// zero for the other states (the SQLite backend does, see its counts.go).
	OldestRunAt time.Time `json:"oldest_run_at,omitzero"`
}

// RecoverLost is the RecoverExpired rule for one running job j whose lease
// ended before now, shared by the backends: the lost attempt to append to
// its history, and whether the job is failed (its last maxLost attempts, this
// one included, were all lost) rather than retried, with the job's Error.
func RecoverLost(j *Job, now time.Time, maxLost int) (lost Attempt, fail bool, errMsg string) {
	msg := fmt.Sprintf("lease of worker %q expired at %s", j.LeaseOwner, j.LeaseUntil.UTC().Format(time.RFC3339Nano))
	lost = Attempt{Number: j.Attempt, StartedAt: j.StartedAt, FinishedAt: now,
		Worker: j.LeaseOwner, Outcome: OutcomeLost, Error: msg}
	n := 1
	for i := len(j.Attempts) - 1; i >= 0 && j.Attempts[i].Outcome == OutcomeLost; i-- {
		n++
	}
	if maxLost > 0 && n >= maxLost {
		return lost, true, fmt.Sprintf("lost %d times in a row: %s", n, msg)
	}
	return lost, false, msg
}
