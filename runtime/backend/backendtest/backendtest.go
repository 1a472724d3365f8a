// Package backendtest is the conformance suite every Nuvom backend runs: one
// set of tests that states the backend.Backend contract precisely.
//
// A backend package calls Run from its own tests:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backend.Backend {
//			b, err := Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { b.Close() })
//			return b
//		})
//	}
//
// Conventions the suite relies on, beyond the doc comments of backend.Backend:
//   - Time is controlled by the suite: every "now" is passed explicitly
//     (ClaimRequest.Now, RecoverExpired, Cancel, Retry, Stats); a backend never
//     reads the wall clock for job state. The suite never sleeps.
//   - Every time the suite stores is truncated to the microsecond and carries a
//     non-UTC zone, so a backend may store microseconds (e.g. Unix micros) and
//     return any location; times are compared with time.Time.Equal.
//   - Times outside [backend.MinTime, backend.MaxTime] (1677 to 2262) are
//     stored clamped to that range (backend.ClampTime), and compared clamped.
//   - Nil and empty slices are equal (Args, Result, ErrorChain, Attempts).
//   - Enqueue fails as a whole, inserting nothing, when a job's ID already
//     exists, and whenever it returns an error (a cancelled context at any
//     point included); a failed batch can be enqueued again.
//   - A job that is not running has no lease: LeaseOwner is empty and LeaseUntil
//     zero. LeaseToken survives so that the next claim's token is greater.
//   - Complete overwrites Result, Error, ErrorChain and PanicStack with the
//     outcome's and appends outcome.Attempt to Attempts; an outcome whose State
//     is not succeeded, failed, retrying, cancelled or quarantined is an error
//     (per item or for the call) and changes nothing.
//   - Release does not touch the attempt history. RecoverExpired appends one
//     attempt {Number: Attempt, StartedAt, FinishedAt: now, Worker: LeaseOwner,
//     Outcome: "lost"} and raises MaxAttempts by one (a lost attempt does not
//     count); a job it fails (its last maxLost attempts all lost) gets
//     FinishedAt = now and an Error starting "lost N times in a row: ".
//   - Claim with a Limit of 0 or less claims nothing; ClaimRequest.Tasks
//     limits a claim to those tasks, across every queue when Queues is empty.
//   - A lease ends "before now" strictly: RecoverExpired(now) leaves a job whose
//     LeaseUntil equals now alone.
//   - Claim's result slice may be in any order; the selection order is checked
//     by claiming one job at a time.
//   - Stats may list its rows in any order and may omit zero counts.
//   - A unique key dedupes against any earlier job of the same task with that
//     key whatever its state, while the earlier job's UniqueUntil is after the
//     new CreatedAt. Keys of different tasks never match.
package backendtest

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Epoch is the start of the suite's clock: a fixed instant with microsecond
// precision in a non-UTC zone, far from the wall clock so that a backend that
// reads time.Now instead of the given now fails.
func Epoch() time.Time {
	return time.Date(2030, time.March, 4, 5, 6, 7, 123456000, time.FixedZone("UTC+05:30", 5*3600+1800))
}

// ID returns the n-th id of a deterministic sequence of ULIDs that sort in n order.
func ID(n uint64) string {
	var u ulid.ULID
	if err := u.SetTime(ulid.Timestamp(Epoch())); err != nil {
		// Epoch is a constant well inside the ULID range.
		return ""
	}
	var entropy [10]byte
	binary.BigEndian.PutUint64(entropy[2:], n)
	if err := u.SetEntropy(entropy[:]); err != nil {
		return ""
	}
	return u.String()
}

// NewJob returns a complete queued job of task with the given id on queue
// "default", created and runnable at now (truncated to the microsecond), with
// three attempts and args of a few bytes.
func NewJob(id, task string, now time.Time) *backend.Job {
	now = now.Truncate(time.Microsecond)
	return &backend.Job{
		ID:            id,
		Task:          task,
		Signature:     "sig-" + task,
		Args:          []byte{0x91, 0x01},
		Queue:         "default",
		State:         backend.StateQueued,
		MaxAttempts:   3,
		RunAt:         now,
		TimeoutPolicy: backend.TimeoutFail,
		CreatedAt:     now,
		Attempts:      []backend.Attempt{},
	}
}

// Run runs every conformance test against fresh backends made by open: each
// subtest gets an empty backend; open registers its own cleanup with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) backend.Backend) {
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			if b == nil {
				t.Fatal("open returned a nil backend")
			}
			tc.fn(&suite{t: t, b: b})
		})
	}
}

type testCase struct {
	name string
	fn   func(s *suite)
}

// suite is one subtest's backend, its ids and helpers that fail the test on errors.
type suite struct {
	t  *testing.T
	b  backend.Backend
	mu sync.Mutex
	n  uint64
}

// FanIn returns a workflow of n steps on queue "flow", for benchmarks: n-1
// queued roots (of three tasks) and a pending fan-in of all their results.
// Ids are ULIDs of now.
func FanIn(n int, now time.Time) *backend.Workflow {
	steps := make([]backend.Step, 0, n)
	edges := make([]backend.Edge, 0, n-1)
	for i := range n - 1 {
		j := &backend.Job{ID: ulid.Make().String(), Task: fmt.Sprintf("t%d", i%3), Queue: "flow", State: backend.StateQueued,
			MaxAttempts: 1, RunAt: now, CreatedAt: now}
		steps = append(steps, backend.Step{Job: j})
		edges = append(edges, backend.Edge{Parent: j.ID})
	}
	in := &backend.Job{ID: ulid.Make().String(), Task: "merge", Queue: "flow", State: backend.StatePending,
		MaxAttempts: 1, RunAt: now, CreatedAt: now}
	steps = append(steps, backend.Step{Job: in, Parents: edges, Input: backend.InputResults})
	return &backend.Workflow{ID: ulid.Make().String(), Name: "fan-in", CreatedAt: now, Steps: steps}
}
