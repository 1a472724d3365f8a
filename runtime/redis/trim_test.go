package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// hookFunc is a go-redis hook around every command sent outside a pipeline.
type hookFunc func(ctx context.Context, cmd goredis.Cmder, next goredis.ProcessHook) error

func (h hookFunc) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h hookFunc) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error { return h(ctx, cmd, next) }
}

func (h hookFunc) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// runs reports whether cmd runs script s by its SHA.
func runs(cmd goredis.Cmder, s *goredis.Script) bool {
	a := cmd.Args()
	return len(a) > 1 && strings.EqualFold(fmt.Sprint(a[0]), "evalsha") && a[1] == s.Hash()
}

// TestTrimEndedPages checks retention by count over more ended jobs than
// one script call looks at (1,000): without a state filter (the cut is one
// member, the deletion takes several calls) and with one (the cut is found
// by walking the done index over several calls, counting only the jobs in
// the states), exactly the newest keep of the matching jobs stay
// (backend.BeyondNewest), the others go, and nothing else.
func TestTrimEndedPages(t *testing.T) {
	srv := redistest.Start(t)
	t0 := backendtest.Epoch()
	const n = 2600
	// Failed and succeeded alternate; finish times are scattered over 900
	// seconds, so about three jobs share each one (ties broken by id) and
	// the finish order is not the id order.
	end := func(i int) (backend.State, time.Time) {
		st := backend.StateSucceeded
		if i%2 == 0 {
			st = backend.StateFailed
		}
		return st, t0.Add(time.Duration(i*7919%900) * time.Second)
	}
	failed := []backend.State{backend.StateFailed}
	for _, tc := range []struct {
		keep   int
		states []backend.State
	}{
		{1500, nil},
		{700, failed},
		{700, []backend.State{backend.StateQueued, backend.StateFailed, backend.StateRunning}},
		{1, failed},
		{0, failed},
		{n, nil},
		{1299, failed},
	} {
		t.Run(fmt.Sprint(tc.keep, tc.states), func(t *testing.T) {
			b := openTest(t, srv)
			ctx := t.Context()
			ids := finishJobs(t, b, n, end)
			var ended []backend.EndedJob
			for i, id := range ids {
				if st, fin := end(i); len(tc.states) == 0 || slices.Contains(tc.states, st) {
					ended = append(ended, backend.EndedJob{ID: id, Queue: "default", FinishedAt: fin})
				}
			}
			want := map[string]bool{}
			for _, e := range backend.BeyondNewest(ended, tc.keep) {
				want[e.ID] = true
			}
			got, err := b.TrimEnded(ctx, tc.keep, backend.PurgeFilter{States: tc.states})
			if err != nil {
				t.Fatal(err)
			}
			if got != len(want) {
				t.Errorf("TrimEnded deleted %d jobs, want %d", got, len(want))
			}
			wrong := 0
			for _, id := range ids {
				_, err := b.Get(ctx, id)
				if gone := errors.Is(err, backend.ErrNotFound); gone != want[id] {
					if err != nil && !gone {
						t.Fatal(err)
					}
					wrong++
				}
			}
			if wrong > 0 {
				t.Errorf("%d of %d jobs deleted or kept wrongly", wrong, n)
			}
		})
	}
}

// TestTrimEndedSkipsChangedJobs checks that a job TrimEnded found to delete
// but retried before the deleting script ran is not deleted: found in the
// done index (it is queued again when the script runs), or named by id (it
// ran again and is now newer than the cut). The change is made by another
// client just before the first purge script reaches Redis.
func TestTrimEndedSkipsChangedJobs(t *testing.T) {
	srv := redistest.Start(t)
	t0 := backendtest.Epoch()
	end := func(i int) (backend.State, time.Time) {
		return backend.StateFailed, t0.Add(time.Duration(i+1) * time.Minute)
	}
	for _, byID := range []bool{false, true} {
		t.Run(fmt.Sprint("byID=", byID), func(t *testing.T) {
			b := openTest(t, srv)
			other, err := Open(srv.URL(0), WithPrefix(b.o.prefix))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			ctx := t.Context()
			ids := finishJobs(t, b, 5, end)
			changed := ids[0] // the oldest: beyond the newest keep
			var once sync.Once
			hookErr := errors.New("the purge script never ran")
			b.c.AddHook(hookFunc(func(ctx context.Context, cmd goredis.Cmder, next goredis.ProcessHook) error {
				if runs(cmd, purgeScript) {
					once.Do(func() { hookErr = retryAndFinish(ctx, other, changed, byID, t0.Add(time.Hour)) })
				}
				return next(ctx, cmd)
			}))
			f := backend.PurgeFilter{}
			if byID {
				f.IDs = ids
			}
			got, err := b.TrimEnded(ctx, 2, f)
			if err != nil {
				t.Fatal(err)
			}
			if hookErr != nil {
				t.Fatalf("changing job %s before the purge script: %v", changed, hookErr)
			}
			if got != 2 {
				t.Errorf("TrimEnded deleted %d jobs, want 2 (ids 1 and 2 of 0 to 4; 0 changed)", got)
			}
			j, err := b.Get(ctx, changed)
			if err != nil {
				t.Fatalf("job %s, retried after TrimEnded found it: %v", changed, err)
			}
			for i, id := range ids[1:3] {
				if _, err := b.Get(ctx, id); !errors.Is(err, backend.ErrNotFound) {
					t.Errorf("job %d (%s): Get = %v, want ErrNotFound", i+1, id, err)
				}
			}
			if want := map[bool]backend.State{false: backend.StateQueued, true: backend.StateFailed}[byID]; j.State != want {
				t.Errorf("the changed job is %s, want %s", j.State, want)
			}
		})
	}
}

// retryAndFinish retries the failed job id through be and, when finish is
// set, claims it and fails it again at at.
func retryAndFinish(ctx context.Context, be *Backend, id string, finish bool, at time.Time) error {
	if err := be.Retry(ctx, id, at); err != nil {
		return err
	}
	if !finish {
		return nil
	}
	claimed, err := be.Claim(ctx, backend.ClaimRequest{Limit: 1, Worker: "w2", Now: at, LeaseFor: time.Hour})
	if err != nil {
		return err
	}
	if len(claimed) != 1 || claimed[0].ID != id {
		return fmt.Errorf("claimed %v, want job %s", claimed, id)
	}
	errs, err := be.Complete(ctx, []backend.Outcome{{Lease: claimed[0].Lease(), State: backend.StateFailed, FinishedAt: at}})
	return errors.Join(append(errs, err)...)
}
