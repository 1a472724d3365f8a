// Package faulty wraps a backend so that chosen operations fail on demand:
// tests use it to show how a worker (or a plugin) behaves when its store
// misbehaves, for example a write that keeps failing with SQLITE_BUSY.
//
//	f := faulty.Wrap(memory.New())
//	f.Fail(faulty.Complete, errors.New("database is locked"), 3) // the next 3 calls fail
//	f.Fail(faulty.Claim, errBoom, faulty.Always)                 // until Heal(faulty.Claim)
//
// A failing call does nothing to the wrapped backend.
package faulty

import (
	"context"
	"sync"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Op names an operation of the storage contract that can be made to fail.
type Op string

// The operations that can fail.
const (
	Enqueue        Op = "enqueue"
	Claim          Op = "claim"
	Extend         Op = "extend"
	Complete       Op = "complete"
	Release        Op = "release"
	RecoverExpired Op = "recover"
	Get            Op = "get"
	List           Op = "list"
	Cancel         Op = "cancel"
)

// Always, as the count given to Fail, makes an operation fail until Heal.
const Always = -1

type rule struct {
	err   error
	times int // calls left to fail; Always for no end
}

// Backend is a backend.Backend whose operations fail on demand. It is safe
// for concurrent use.
type Backend struct {
	backend.Backend
	mu       sync.Mutex
	rules    map[Op]*rule
	calls    map[Op]int
	failures map[Op]int
}

// Wrap returns a Backend that forwards to b until told to fail.
func Wrap(b backend.Backend) *Backend {
	return &Backend{Backend: b, rules: map[Op]*rule{}, calls: map[Op]int{}, failures: map[Op]int{}}
}

// Fail makes the next times calls of op fail with err (Always: every call until Heal).
func (f *Backend) Fail(op Op, err error, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules[op] = &rule{err: err, times: times}
}

// Heal makes op succeed again.
func (f *Backend) Heal(op Op) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rules, op)
}

// Calls returns how many times op was called, failed or not.
func (f *Backend) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Failures returns how many calls of op failed on purpose.
func (f *Backend) Failures(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failures[op]
}

// check counts a call of op and returns the error it must fail with, or nil.
func (f *Backend) check(op Op) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	r := f.rules[op]
	if r == nil || r.times == 0 {
		return nil
	}
	if r.times > 0 {
		r.times--
	}
	f.failures[op]++
	return r.err
}

// Enqueue implements backend.Backend.
func (f *Backend) Enqueue(ctx context.Context, jobs []*backend.Job) ([]backend.EnqueueResult, error) {
	if err := f.check(Enqueue); err != nil {
		return nil, err
	}
	return f.Backend.Enqueue(ctx, jobs)
}

// Claim implements backend.Backend.
func (f *Backend) Claim(ctx context.Context, req backend.ClaimRequest) ([]*backend.Job, error) {
	if err := f.check(Claim); err != nil {
		return nil, err
	}
	return f.Backend.Claim(ctx, req)
}

// Extend implements backend.Backend.
func (f *Backend) Extend(ctx context.Context, leases []backend.Lease, until time.Time) ([]string, error) {
	if err := f.check(Extend); err != nil {
		return nil, err
	}
	return f.Backend.Extend(ctx, leases, until)
}

// Complete implements backend.Backend.
func (f *Backend) Complete(ctx context.Context, outcomes []backend.Outcome) ([]error, error) {
	if err := f.check(Complete); err != nil {
		return nil, err
	}
	return f.Backend.Complete(ctx, outcomes)
}

// Release implements backend.Backend.
func (f *Backend) Release(ctx context.Context, leases []backend.Lease) error {
	if err := f.check(Release); err != nil {
		return err
	}
	return f.Backend.Release(ctx, leases)
}

// RecoverExpired implements backend.Backend.
func (f *Backend) RecoverExpired(ctx context.Context, now time.Time, maxLost int) (int, error) {
	if err := f.check(RecoverExpired); err != nil {
		return 0, err
	}
	return f.Backend.RecoverExpired(ctx, now, maxLost)
}

// Get implements backend.Backend.
func (f *Backend) Get(ctx context.Context, id string) (*backend.Job, error) {
	if err := f.check(Get); err != nil {
		return nil, err
	}
	return f.Backend.Get(ctx, id)
}

// List implements backend.Backend.
func (f *Backend) List(ctx context.Context, lf backend.ListFilter) ([]*backend.Job, error) {
	if err := f.check(List); err != nil {
		return nil, err
	}
	return f.Backend.List(ctx, lf)
}

// Cancel implements backend.Backend.
func (f *Backend) Cancel(ctx context.Context, id string, now time.Time) error {
	if err := f.check(Cancel); err != nil {
		return err
	}
	return f.Backend.Cancel(ctx, id, now)
}

// Unwrap returns the wrapped backend, so that backend.AdminOf finds its
// Admin methods (which never fail on demand).
func (f *Backend) Unwrap() backend.Backend { return f.Backend }
