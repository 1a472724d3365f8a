package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// leased reads running/<id> with the job's lock held and returns it when the
// lease with token still holds it; ok is false otherwise (gone, not running,
// another token, or undecodable, which is quarantined).
func (b *Backend) leased(l backend.Lease) (j *backend.Job, path string, ok bool, err error) {
	path = b.path(runningDir, l.JobID)
	j, err = readJob(path, l.JobID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, path, false, nil
	case errors.Is(err, ErrCorrupt):
		b.quarantine(path, path, l.JobID, err)
		return nil, path, false, nil
	case err != nil:
		return nil, path, false, err
	}
	if j.State != backend.StateRunning || j.LeaseToken != l.Token {
		return nil, path, false, nil
	}
	return j, path, true, nil
}

// Extend moves the deadline of the leases still held with their tokens.
func (b *Backend) Extend(ctx context.Context, leases []backend.Lease, until time.Time) ([]string, error) {
	var lost []string
	for _, l := range leases {
		ok, err := b.extendOne(ctx, l, until)
		if err != nil {
			return lost, fmt.Errorf("file backend extend: %w", err)
		}
		if !ok {
			lost = append(lost, l.JobID)
		}
	}
	return lost, nil
}

func (b *Backend) extendOne(ctx context.Context, l backend.Lease, until time.Time) (bool, error) {
	if checkID(l.JobID) != nil {
		return false, nil
	}
	unlock, err := b.lock(ctx, jobLock(l.JobID))
	if err != nil {
		return false, err
	}
	defer unlock()
	j, path, ok, err := b.leased(l)
	if err != nil || !ok {
		return false, err
	}
	j.LeaseUntil = backend.ClampTime(until)
	return true, b.save(path, j)
}

// Complete records each outcome whose lease still holds; others get ErrLeaseLost.
func (b *Backend) Complete(ctx context.Context, outcomes []backend.Outcome) ([]error, error) {
	errs := make([]error, len(outcomes))
	wake := false
	var minutes minuteBatch
	defer func() { b.addMinutes(ctx, minutes) }()
	for i, o := range outcomes {
		switch o.State {
		case backend.StateSucceeded, backend.StateFailed, backend.StateRetrying,
			backend.StateCancelled, backend.StateQuarantined:
		default:
			errs[i] = fmt.Errorf("complete job %s with state %q: %w", o.Lease.JobID, o.State, backend.ErrWrongState)
			continue
		}
		ok, err := b.completeOne(ctx, o, &minutes)
		if err != nil {
			return errs, fmt.Errorf("file backend complete: %w", err)
		}
		if !ok {
			errs[i] = fmt.Errorf("complete job %s with token %d: %w", o.Lease.JobID, o.Lease.Token, backend.ErrLeaseLost)
		} else if o.State.Final() {
			if err := b.settleChildren(ctx, o.Lease.JobID, backend.ClampTime(o.FinishedAt)); err != nil {
				return errs, fmt.Errorf("file backend complete: %w", err)
			}
		}
		wake = wake || o.State == backend.StateRetrying
	}
	if wake {
		b.signal()
	}
	return errs, nil
}

func (b *Backend) completeOne(ctx context.Context, o backend.Outcome, minutes *minuteBatch) (bool, error) {
	if checkID(o.Lease.JobID) != nil {
		return false, nil
	}
	unlock, err := b.lock(ctx, jobLock(o.Lease.JobID))
	if err != nil {
		return false, err
	}
	defer unlock()
	j, path, ok, err := b.leased(o.Lease)
	if err != nil || !ok {
		return false, err
	}
	j.State = o.State
	j.FinishedAt = backend.ClampTime(o.FinishedAt)
	if o.State == backend.StateRetrying {
		j.RunAt = backend.ClampTime(o.RunAt)
	}
	j.Result = o.Result
	j.Error = o.Error
	j.ErrorChain = o.ErrorChain
	j.PanicStack = o.PanicStack
	a := o.Attempt
	a.StartedAt, a.FinishedAt = backend.ClampTime(a.StartedAt), backend.ClampTime(a.FinishedAt)
	j.Attempts = append(j.Attempts, a)
	if o.Refund {
		j.MaxAttempts++
	}
	j.LeaseOwner = ""
	j.LeaseUntil = time.Time{}
	now := o.FinishedAt
	if now.IsZero() {
		now = time.Now()
	}
	// Content first: a crash before the move leaves a finished job in
	// running/, which RecoverExpired moves on without recording a lost attempt.
	if err := b.saveThenMove(path, j, now); err != nil {
		return true, err
	}
	minutes.add(backend.MinuteOf(j.Queue, j.Task, &o))
	return true, nil
}

// Release hands leased jobs back without spending an attempt.
func (b *Backend) Release(ctx context.Context, leases []backend.Lease) error {
	released := false
	for _, l := range leases {
		ok, err := b.releaseOne(ctx, l)
		if err != nil {
			return fmt.Errorf("file backend release: %w", err)
		}
		released = released || ok
	}
	if released {
		b.signal()
	}
	return nil
}

func (b *Backend) releaseOne(ctx context.Context, l backend.Lease) (bool, error) {
	if checkID(l.JobID) != nil {
		return false, nil
	}
	unlock, err := b.lock(ctx, jobLock(l.JobID))
	if err != nil {
		return false, err
	}
	defer unlock()
	j, path, ok, err := b.leased(l)
	if err != nil || !ok {
		return false, err
	}
	j.State = backend.StateQueued
	if j.Attempt > 0 {
		j.Attempt--
	}
	j.LeaseOwner = ""
	j.LeaseUntil = time.Time{}
	return true, b.saveThenMove(path, j, time.Now())
}

// RecoverExpired records a lost attempt for every running job whose lease
// ended before now, which does not count against the job's attempt limit,
// and makes the job retrying at now, or failed when its last maxLost
// attempts were all lost. It also repairs files that a crash left in
// running/ with content of another state. Jobs whose lock is held are
// skipped this round. First it removes lock and temp files of processes that
// died (see sweep).
func (b *Backend) RecoverExpired(ctx context.Context, now time.Time, maxLost int) (int, error) {
	b.sweep()
	now = backend.ClampTime(now)
	ids, err := readNames(b.path(runningDir))
	if err != nil {
		return 0, fmt.Errorf("file backend recover: %w", err)
	}
	n := 0
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		ok, err := b.recoverOne(id, now, maxLost)
		if err != nil {
			return n, fmt.Errorf("file backend recover: %w", err)
		}
		if ok {
			n++
		}
	}
	if n > 0 {
		b.signal()
	}
	if err := b.settleAllPending(ctx, now); err != nil {
		return n, fmt.Errorf("file backend recover: %w", err)
	}
	return n, nil
}

func (b *Backend) recoverOne(id string, now time.Time, maxLost int) (bool, error) {
	if checkID(id) != nil {
		return false, nil
	}
	unlock, ok, err := b.tryLock(jobLock(id))
	if err != nil || !ok {
		return false, err
	}
	defer unlock()
	path := b.path(runningDir, id)
	j, ok, err := b.readOrQuarantine(path, path, id)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil || !ok {
		return false, err
	}
	if j.State != backend.StateRunning {
		to, err := b.home(j, now)
		if err == nil {
			err = rename(path, to)
		}
		b.logger().Warn("nuvom file backend: moved job file left in running/ by an interrupted change", "job", id, "state", j.State)
		return false, err
	}
	if !j.LeaseUntil.Before(now) {
		return false, nil
	}
	lost, fail, msg := backend.RecoverLost(j, now, maxLost)
	j.Attempts = append(j.Attempts, lost)
	j.MaxAttempts++
	j.Error, j.ErrorChain, j.PanicStack, j.Result = msg, nil, "", nil
	j.LeaseOwner = ""
	j.LeaseUntil = time.Time{}
	if fail {
		j.State = backend.StateFailed
		j.FinishedAt = now
	} else {
		j.State = backend.StateRetrying
		j.RunAt = now
	}
	return true, b.saveThenMove(path, j, now)
}
