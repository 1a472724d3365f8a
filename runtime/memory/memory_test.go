package memory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
	"github.com/nuvom/nuvom/runtime/memory"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		b := memory.New()
		t.Cleanup(func() { b.Close() })
		return b
	})
}

func newJob(id string, now time.Time) *backend.Job {
	return backendtest.NewJob(id, "t", now)
}

func TestClosedBackendRefusesCalls(t *testing.T) {
	ctx := t.Context()
	b := memory.New()
	now := backendtest.Epoch()
	if _, err := b.Enqueue(ctx, []*backend.Job{newJob(backendtest.ID(1), now)}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	calls := map[string]func() error{
		"Enqueue": func() error { _, err := b.Enqueue(ctx, []*backend.Job{newJob(backendtest.ID(2), now)}); return err },
		"Claim":   func() error { _, err := b.Claim(ctx, backend.ClaimRequest{Limit: 1, Now: now}); return err },
		"Extend":  func() error { _, err := b.Extend(ctx, nil, now); return err },
		"Complete": func() error {
			_, err := b.Complete(ctx, nil)
			return err
		},
		"Release":        func() error { return b.Release(ctx, nil) },
		"RecoverExpired": func() error { _, err := b.RecoverExpired(ctx, now, 5); return err },
		"Get":            func() error { _, err := b.Get(ctx, backendtest.ID(1)); return err },
		"List":           func() error { _, err := b.List(ctx, backend.ListFilter{}); return err },
		"Cancel":         func() error { return b.Cancel(ctx, backendtest.ID(1), now) },
		"Retry":          func() error { return b.Retry(ctx, backendtest.ID(1), now) },
		"Stats":          func() error { _, err := b.Stats(ctx, now); return err },
		"Purge":          func() error { _, err := b.Purge(ctx, backend.PurgeFilter{}); return err },
		"PurgeEnded":     func() error { _, err := b.PurgeEnded(ctx, time.Now(), backend.PurgeFilter{}); return err },
	}
	names := make([]string, 0, len(calls))
	for n := range calls {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := calls[n](); !errors.Is(err, memory.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", n, err)
		}
	}
	ch, cancel := b.Subscribe()
	defer cancel()
	select {
	case <-ch:
		t.Error("a subscription made after Close was signalled")
	default:
	}
}

func TestCancelledContext(t *testing.T) {
	b := memory.New()
	defer b.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.Enqueue(ctx, []*backend.Job{newJob(backendtest.ID(1), backendtest.Epoch())}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Enqueue with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := b.Get(t.Context(), backendtest.ID(1)); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Enqueue with a cancelled context stored the job: %v", err)
	}
}

// TestNotifications checks every event that must wake a worker, and that
// signals coalesce without blocking and stop after cancel.
func TestNotifications(t *testing.T) {
	ctx := t.Context()
	b := memory.New()
	defer b.Close()
	now := backendtest.Epoch()
	ch, cancel := b.Subscribe()
	other, cancelOther := b.Subscribe()
	defer cancelOther()
	signalled := func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	expect := func(what string, want bool) {
		t.Helper()
		if got := signalled(); got != want {
			t.Fatalf("%s: signalled = %v, want %v", what, got, want)
		}
	}
	jobs := []*backend.Job{newJob(backendtest.ID(1), now), newJob(backendtest.ID(2), now), newJob(backendtest.ID(3), now)}
	jobs[2].MaxAttempts = 1
	if _, err := b.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	expect("Enqueue", true)
	expect("a second read with no new event", false)
	claimed, err := b.Claim(ctx, backend.ClaimRequest{Limit: 3, Worker: "w", Now: now, LeaseFor: time.Minute})
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	expect("Claim", false)
	byID := map[string]*backend.Job{}
	for _, j := range claimed {
		byID[j.ID] = j
	}
	if err := b.Release(ctx, []backend.Lease{byID[backendtest.ID(1)].Lease()}); err != nil {
		t.Fatal(err)
	}
	expect("Release", true)
	if err := b.Release(ctx, []backend.Lease{byID[backendtest.ID(1)].Lease()}); err != nil {
		t.Fatal(err)
	}
	expect("Release of a stale lease", false)
	j2 := byID[backendtest.ID(2)]
	if _, err := b.Complete(ctx, []backend.Outcome{{Lease: j2.Lease(), State: backend.StateRetrying, RunAt: now.Add(time.Minute), FinishedAt: now}}); err != nil {
		t.Fatal(err)
	}
	expect("Complete retrying", true)
	// maxLost 1: the lost lease fails job 3, so that Retry applies below.
	if n, err := b.RecoverExpired(ctx, now.Add(2*time.Minute), 1); err != nil || n != 1 {
		t.Fatalf("RecoverExpired = %d, %v; want 1", n, err)
	}
	expect("RecoverExpired", true)
	if err := b.Retry(ctx, backendtest.ID(3), now); err != nil {
		t.Fatal(err)
	}
	expect("Retry", true)
	// Many events while nobody reads never block and leave one signal.
	for i := range 100 {
		if _, err := b.Enqueue(ctx, []*backend.Job{newJob(backendtest.ID(uint64(100+i)), now)}); err != nil {
			t.Fatal(err)
		}
	}
	expect("100 enqueues", true)
	expect("100 enqueues, second read", false)
	select {
	case <-other:
	default:
		t.Fatal("a second subscriber was not signalled")
	}
	cancel()
	if _, err := b.Enqueue(ctx, []*backend.Job{newJob(backendtest.ID(999), now)}); err != nil {
		t.Fatal(err)
	}
	expect("Enqueue after unsubscribing", false)
}

// TestConcurrentMixedOps runs every operation from many goroutines at once
// (for the race detector) and checks that all jobs end succeeded.
func TestConcurrentMixedOps(t *testing.T) {
	ctx := t.Context()
	b := memory.New()
	defer b.Close()
	now := backendtest.Epoch()
	const total = 3000
	jobs := make([]*backend.Job, total)
	for i := range jobs {
		jobs[i] = newJob(backendtest.ID(uint64(i+1)), now)
		jobs[i].MaxAttempts = 1000
		jobs[i].Queue = []string{"a", "b", "c"}[i%3]
		jobs[i].Priority = i % 5
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < total; i += 100 {
			if _, err := b.Enqueue(ctx, jobs[i:i+100]); err != nil {
				t.Error(err)
				return
			}
		}
	})
	done := make(chan struct{})
	var released sync.Map // each job is released at most once, so the run ends
	for w := range 6 {
		wg.Go(func() {
			worker := fmt.Sprintf("w%d", w)
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := b.Claim(ctx, backend.ClaimRequest{Limit: 8, Worker: worker, Now: now, LeaseFor: time.Hour})
				if err != nil {
					t.Error(err)
					return
				}
				var outs []backend.Outcome
				var back []backend.Lease
				for k, j := range got {
					switch {
					case j.Attempt > 2:
						outs = append(outs, backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: now})
					case k%4 == 0:
						if _, again := released.LoadOrStore(j.ID, true); again {
							outs = append(outs, backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: now})
						} else {
							back = append(back, j.Lease())
						}
					case k%4 == 1:
						outs = append(outs, backend.Outcome{Lease: j.Lease(), State: backend.StateRetrying, RunAt: now})
					default:
						outs = append(outs, backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: now})
					}
				}
				if lost, err := b.Extend(ctx, append(slices.Clone(back), backend.Lease{JobID: "x", Token: 1}), now.Add(2*time.Hour)); err != nil || len(lost) != 1 {
					t.Errorf("extend: lost %v, %v", lost, err)
				}
				if err := b.Release(ctx, back); err != nil {
					t.Error(err)
				}
				errs, err := b.Complete(ctx, outs)
				if err != nil {
					t.Error(err)
				}
				for _, e := range errs {
					if e != nil {
						t.Error(e)
					}
				}
				if _, err := b.RecoverExpired(ctx, now, 5); err != nil {
					t.Error(err)
				}
				if _, err := b.Stats(ctx, now); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for {
		stats, err := b.Stats(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		succeeded := 0
		for _, s := range stats {
			if s.State == backend.StateSucceeded {
				succeeded += s.Count
			}
		}
		if succeeded == total {
			break
		}
		if t.Failed() {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(done)
	wg.Wait()
	list, err := b.List(ctx, backend.ListFilter{States: []backend.State{backend.StateSucceeded}, Limit: total})
	if err != nil || len(list) != total {
		t.Fatalf("List succeeded = %d jobs, %v; want %d", len(list), err, total)
	}
}

func TestAdminConformance(t *testing.T) {
	backendtest.RunAdmin(t, func(t *testing.T) backend.Backend {
		b := memory.New()
		t.Cleanup(func() { b.Close() })
		return b
	})
}
