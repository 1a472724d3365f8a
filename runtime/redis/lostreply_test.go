package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
)

// TestLostReplyEnqueue: the connection drops while an enqueue is under way,
// either after Redis ran it (the reply is lost) or before Redis read it.
// Enqueue must succeed with the jobs stored once, or fail with nothing
// stored; never fail with the jobs stored (a caller that enqueues again
// would run them twice), and never overwrite a job that held the id.
func TestLostReplyEnqueue(t *testing.T) {
	be, px, _ := proxied(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	if _, err := be.Enqueue(ctx, benchJobs(1, now)); err != nil { // registers the queue and task
		t.Fatal(err)
	}
	held := benchJobs(1, now)[0]
	held.UniqueKey, held.UniqueUntil = "k", now.Add(time.Hour)
	if _, err := be.Enqueue(ctx, []*backend.Job{held}); err != nil {
		t.Fatal(err)
	}
	unique := func(n int) []*backend.Job { // the last job is a duplicate of held
		jobs := benchJobs(n, now)
		for i, j := range jobs {
			j.UniqueKey, j.UniqueUntil = "u"+j.ID, now.Add(time.Hour)
			if i == n-1 {
				j.UniqueKey = "k"
			}
		}
		return jobs
	}
	withPriority := func(n int) []*backend.Job {
		jobs := benchJobs(n, now)
		jobs[0].Attempts = []backend.Attempt{{Number: 1, StartedAt: now, FinishedAt: now, Outcome: "failed"}}
		jobs[0].Attempt = 1
		return jobs
	}
	cases := []struct {
		name string
		jobs []*backend.Job
	}{
		{"single", benchJobs(1, now)},
		{"batch", benchJobs(3, now)},
		{"single not plain", withPriority(1)},
		{"batch not plain", withPriority(3)},
		{"single duplicate", unique(1)},
		{"batch with a duplicate", unique(3)},
	}
	for _, c := range cases {
		for _, where := range []string{"reply", "command"} {
			t.Run(c.name+"/"+where, func(t *testing.T) {
				jobs := make([]*backend.Job, len(c.jobs))
				for i, j := range c.jobs {
					cp := *j
					cp.ID = benchJobs(1, now)[0].ID
					if cp.UniqueKey != "" && cp.UniqueKey != "k" {
						cp.UniqueKey = "u" + cp.ID
					}
					jobs[i] = &cp
				}
				if where == "reply" {
					px.lose.Store(1)
				} else {
					px.loseReq.Store(1)
				}
				res, err := be.Enqueue(ctx, jobs)
				if px.lose.Load()+px.loseReq.Load() != 0 {
					t.Fatal("the proxy dropped nothing")
				}
				if err != nil {
					t.Fatalf("Enqueue: %v", err)
				}
				for i, j := range jobs {
					dup := j.UniqueKey == "k"
					if res[i].Duplicate != dup || (dup && res[i].ID != held.ID) || (!dup && res[i].ID != j.ID) {
						t.Errorf("result %d = %+v, want id %s duplicate %v", i, res[i], map[bool]string{true: held.ID, false: j.ID}[dup], dup)
					}
					_, gerr := be.Get(ctx, j.ID)
					if stored := gerr == nil; stored == dup {
						t.Errorf("job %s (duplicate %v): Get = %v", j.ID, dup, gerr)
					}
				}
			})
		}
	}
	// A batch holding an id that exists fails, its reply lost or not, and
	// leaves the job that held the id as it was.
	t.Run("existing id", func(t *testing.T) {
		other := benchJobs(2, now)
		other[1].ID, other[1].Task = held.ID, "other"
		px.lose.Store(1)
		if _, err := be.Enqueue(ctx, other); err == nil || !strings.Contains(err.Error(), "EXISTS") {
			t.Fatalf("Enqueue of an existing id: %v, want EXISTS", err)
		}
		if got, err := be.Get(ctx, held.ID); err != nil || got.Task != held.Task {
			t.Fatalf("the job that held the id: %v, task %q", err, got.Task)
		}
		if _, err := be.Get(ctx, other[0].ID); err == nil {
			t.Fatal("a failed batch stored a job")
		}
	})
}

// TestLostReplyEnqueueWorkflow loses each reply of an EnqueueWorkflow in
// turn (the k-th one the proxy passes): every command is either safe to send
// again or settled when its reply is lost, so the call succeeds and stores
// the whole workflow, once.
func TestLostReplyEnqueueWorkflow(t *testing.T) {
	be, px, _ := proxied(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	for k := range 8 {
		jobs := benchJobs(3, now)
		jobs[1].State, jobs[2].State = backend.StatePending, backend.StatePending
		jobs[2].Queue = fmt.Sprintf("other%d", k) // a queue not registered yet
		wf := &backend.Workflow{ID: benchJobs(1, now)[0].ID, CreatedAt: now, Steps: []backend.Step{
			{Job: jobs[0]},
			{Job: jobs[1], Parents: []backend.Edge{{Parent: jobs[0].ID}}},
			{Job: jobs[2], Parents: []backend.Edge{{Parent: jobs[0].ID}, {Parent: jobs[1].ID}}},
		}}
		px.skip.Store(int32(k))
		px.lose.Store(1)
		err := be.EnqueueWorkflow(ctx, wf)
		px.lose.Store(0)
		if err != nil {
			t.Fatalf("reply %d lost: EnqueueWorkflow: %v", k, err)
		}
		info, err := be.GetWorkflow(ctx, wf.ID)
		if err != nil || len(info.Steps) != 3 {
			t.Fatalf("reply %d lost: GetWorkflow = %+v, %v; want 3 steps", k, info, err)
		}
		list, err := be.ListWorkflows(ctx, 100)
		if err != nil || !slices.ContainsFunc(list, func(w backend.WorkflowSummary) bool { return w.ID == wf.ID }) {
			t.Fatalf("reply %d lost: ListWorkflows = %v, %v; want workflow %s", k, list, err, wf.ID)
		}
	}
}

// TestLostReplyComplete: a Complete whose reply is lost reports what the
// store holds: stored outcomes as stored (not as leases lost, which would
// skip OnStored hooks and the release of workflow steps), a lease that was
// not held as lost; over one queue (one script) and two (a pipeline); the
// k-th reply of the call lost, in turn.
func TestLostReplyComplete(t *testing.T) {
	be, px, _ := proxied(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	for _, queues := range [][]string{{"default"}, {"default", "second"}} {
		for _, state := range []backend.State{backend.StateSucceeded, backend.StateRetrying} {
			for k := range 3 {
				t.Run(fmt.Sprintf("%d queues/%s/reply %d", len(queues), state, k), func(t *testing.T) {
					got := claimOn(t, be, queues, 1, now)
					outs := outcomesOf(got, state, now, now.Add(time.Hour))
					outs[0].Lease.Token++ // a lease this worker does not hold
					px.skip.Store(int32(k))
					px.lose.Store(1)
					errs, err := be.Complete(ctx, outs)
					if k == 0 && px.lose.Load() != 0 {
						t.Fatal("the proxy dropped nothing")
					}
					px.lose.Store(0)
					if err != nil {
						t.Fatalf("Complete: %v", err)
					}
					if !errors.Is(errs[0], backend.ErrLeaseLost) {
						t.Errorf("outcome with a lease not held: %v, want ErrLeaseLost", errs[0])
					}
					wantStored(t, be, got[1:], errs[1:], state)
				})
			}
		}
	}
}

// TestLostReplyCancelRetry: Cancel and Retry whose replies are lost (the
// k-th one, in turn) succeed as they would have, rather than reporting the
// state they set as a wrong one.
func TestLostReplyCancelRetry(t *testing.T) {
	be, px, _ := proxied(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	for k := range 4 {
		j := benchJobs(1, now)[0]
		if _, err := be.Enqueue(ctx, []*backend.Job{j}); err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			name string
			call func() error
			want backend.State
		}{
			{"cancel", func() error { return be.Cancel(ctx, j.ID, now) }, backend.StateCancelled},
			{"retry", func() error { return be.Retry(ctx, j.ID, now) }, backend.StateQueued},
		} {
			px.skip.Store(int32(k))
			px.lose.Store(1)
			err := step.call()
			px.lose.Store(0)
			if err != nil {
				t.Fatalf("reply %d lost: %s: %v", k, step.name, err)
			}
			if got, err := be.Get(ctx, j.ID); err != nil || got.State != step.want {
				t.Fatalf("reply %d lost: after %s: %v, %v; want %s", k, step.name, got.State, err, step.want)
			}
		}
	}
}

// TestLostRequestComplete: the connection drops while a Complete is under
// way, before Redis read it (a dead pooled connection, a reset on the way):
// the completion never ran and the leases are still held, so it must be
// stored, as go-redis's own retry did before completions were sent once;
// reported as a lease lost, the worker drops the outcome and the job runs
// again once its lease expires. Over one queue (one script) and two (a
// pipeline).
func TestLostRequestComplete(t *testing.T) {
	be, px, _ := proxied(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	for _, queues := range [][]string{{"default"}, {"default", "second"}} {
		for _, state := range []backend.State{backend.StateSucceeded, backend.StateRetrying} {
			t.Run(fmt.Sprintf("%d queues/%s", len(queues), state), func(t *testing.T) {
				got := claimOn(t, be, queues, 0, now)
				outs := outcomesOf(got, state, now, now.Add(time.Hour))
				px.loseReq.Store(1)
				errs, err := be.Complete(ctx, outs)
				if px.loseReq.Load() != 0 {
					t.Fatal("the proxy dropped nothing")
				}
				if err != nil {
					t.Fatalf("Complete: %v", err)
				}
				wantStored(t, be, got, errs, state)
			})
		}
	}
}

// TestLostRequestsComplete drops 1 to 8 commands of a Complete in a row
// (its sends and the reads that settle them): the call either stores every
// outcome and says so, or fails as a whole with nothing stored and the
// leases still held, so that the caller's next try stores them.
func TestLostRequestsComplete(t *testing.T) {
	be, px, _ := proxied(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	for drops := 1; drops <= 8; drops++ {
		jobs := benchJobs(2, now)
		jobs[1].Queue = "second"
		if _, err := be.Enqueue(ctx, jobs); err != nil {
			t.Fatal(err)
		}
		got, err := be.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Queues: []string{"default", "second"}, Now: now, LeaseFor: time.Hour})
		if err != nil || len(got) != 2 {
			t.Fatalf("claim = %d jobs, %v; want 2", len(got), err)
		}
		outs := outcomesOf(got, backend.StateSucceeded, now, now)
		px.loseReq.Store(int32(drops))
		errs, err := be.Complete(ctx, outs)
		px.loseReq.Store(0)
		want := backend.StateSucceeded
		if err != nil {
			want = backend.StateRunning
		}
		for i, j := range got {
			if err == nil && errs[i] != nil {
				t.Errorf("%d commands dropped: job %s: %v, want stored", drops, j.ID, errs[i])
			}
			if g, gerr := be.Get(ctx, j.ID); gerr != nil || g.State != want {
				t.Errorf("%d commands dropped: Complete = %v; job %s: %v, %v; want %s", drops, err, j.ID, g.State, gerr, want)
			}
		}
		if err != nil { // the caller's next try
			if errs, err := be.Complete(ctx, outs); err != nil || errs[0] != nil || errs[1] != nil {
				t.Fatalf("%d commands dropped: Complete again = %v, %v; want both stored", drops, errs, err)
			}
		}
	}
}

// beforeRead runs fn once, before the first pipeline holding an HMGET (or,
// with single, the first HMGET command; the first cmd command when cmd is
// set) that the armed flag lets through: the moment a lost reply is being
// settled; after, when set, runs once that command has run.
type beforeRead struct {
	armed     atomic.Bool
	single    bool
	cmd       string
	fn, after func()
}

func (h *beforeRead) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *beforeRead) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if h.single && cmd.Name() == cmp.Or(h.cmd, "hmget") && h.armed.CompareAndSwap(true, false) {
			h.fn()
			if h.after != nil {
				defer h.after()
			}
		}
		return next(ctx, cmd)
	}
}

func (h *beforeRead) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "hmget" && h.armed.CompareAndSwap(true, false) {
			h.fn()
		}
		return next(ctx, cmds)
	}
}

// TestLostReplyCompleteRetryingClaimedAgain: a retrying outcome whose reply
// is lost, and whose job another worker claims again (the completion woke
// it) before the settling read: the outcome is stored, and must be reported
// so (OnStored), not as a lease lost.
func TestLostReplyCompleteRetryingClaimedAgain(t *testing.T) {
	srv := redistest.Start(t)
	px := startProxy(t, srv.Addr)
	other, err := Open(srv.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	hook := &beforeRead{}
	be := hooked(t, px, hook, 0)
	defer be.Close()
	for _, queues := range [][]string{{"default"}, {"default", "second"}} {
		t.Run(fmt.Sprintf("%d queues", len(queues)), func(t *testing.T) {
			got := claimOn(t, be, queues, 0, now)
			outs := make([]backend.Outcome, len(got))
			for i, j := range got {
				outs[i] = backend.Outcome{Lease: j.Lease(), State: backend.StateRetrying, FinishedAt: now, RunAt: now,
					Attempt: backend.Attempt{Number: j.Attempt, StartedAt: now, FinishedAt: now, Worker: "w", Outcome: "failed", Error: "boom"}}
			}
			var again []*backend.Job
			hook.fn = func() {
				var err error
				again, err = other.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w2", Queues: queues, Now: now, LeaseFor: time.Hour})
				if err != nil {
					t.Errorf("claim by the other worker: %v", err)
				}
			}
			hook.armed.Store(true)
			px.lose.Store(1)
			errs, err := be.Complete(ctx, outs)
			px.lose.Store(0)
			if hook.armed.Load() {
				t.Fatal("no reply was settled")
			}
			if len(again) != len(got) {
				t.Fatalf("the other worker claimed %d jobs, want %d", len(again), len(got))
			}
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			for i, j := range got {
				if errs[i] != nil {
					t.Errorf("job %s: %v, want stored (its retrying outcome is in its history)", j.ID, errs[i])
				}
				if g, err := be.Get(ctx, j.ID); err != nil || len(g.Attempts) != 1 || g.Attempts[0].Error != "boom" {
					t.Errorf("job %s: %v; attempts %+v, want the one stored", j.ID, err, g.Attempts)
				}
			}
		})
	}
}

// TestLostReplyCompleteTriedAgain: a Complete whose reply is lost, and whose
// settling read fails too (Redis unreachable for a while, e.g. restarting),
// fails as a whole; the worker sends the same outcomes again once Redis is
// back (worker.store). Those the first call stored must then be reported
// stored, not as leases lost (OnStored skipped, workflow steps released
// only by a later sweep).
func TestLostReplyCompleteTriedAgain(t *testing.T) {
	srv := redistest.Start(t)
	px := startProxy(t, srv.Addr)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	hook := &beforeRead{fn: px.Cut}
	be := hooked(t, px, hook, 1)
	defer be.Close()
	for _, queues := range [][]string{{"default"}, {"default", "second"}} {
		t.Run(fmt.Sprintf("%d queues", len(queues)), func(t *testing.T) {
			got := claimOn(t, be, queues, 0, now)
			outs := outcomesOf(got, backend.StateSucceeded, now, now)
			// Connections of both pools made now: the reply lost is the
			// completion's, not a new connection's handshake.
			if _, err := be.c.Pipelined(ctx, func(p goredis.Pipeliner) error { p.Ping(ctx); return nil }); err != nil {
				t.Fatal(err)
			}
			hook.armed.Store(true)
			px.lose.Store(1)
			if _, err := be.Complete(ctx, outs); err == nil {
				t.Fatal("Complete succeeded with Redis unreachable")
			}
			px.lose.Store(0)
			px.Restore()
			errs, err := be.Complete(ctx, outs)
			if err != nil {
				t.Fatalf("Complete again: %v", err)
			}
			for i, j := range got {
				if errs[i] != nil {
					t.Errorf("job %s: %v, want stored (the first call stored it)", j.ID, errs[i])
				}
				if g, err := be.Get(ctx, j.ID); err != nil || g.State != backend.StateSucceeded {
					t.Errorf("job %s: %v, %v; want succeeded", j.ID, g.State, err)
				}
			}
		})
	}
}

// TestLostReplyRetryClaimedAgain: a Retry whose reply is lost, and whose job
// a worker claims (the Retry woke it) before the settling read: the Retry
// was applied and must succeed, not fail with "job in state running".
func TestLostReplyRetryClaimedAgain(t *testing.T) {
	srv := redistest.Start(t)
	px := startProxy(t, srv.Addr)
	other, err := Open(srv.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	hook := &beforeRead{single: true}
	be := hooked(t, px, hook, 0)
	defer be.Close()
	j := benchJobs(1, now)[0]
	if _, err := be.Enqueue(ctx, []*backend.Job{j}); err != nil {
		t.Fatal(err)
	}
	if err := be.Cancel(ctx, j.ID, now); err != nil {
		t.Fatal(err)
	}
	var again []*backend.Job
	hook.fn = func() {
		var err error
		again, err = other.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w2", Queues: []string{j.Queue}, Now: now, LeaseFor: time.Hour})
		if err != nil {
			t.Errorf("claim by the other worker: %v", err)
		}
	}
	hook.armed.Store(true)
	px.skip.Store(2) // the replies of locate and load
	px.lose.Store(1)
	err = be.Retry(ctx, j.ID, now)
	px.lose.Store(0)
	if hook.armed.Load() {
		t.Fatal("no reply was settled")
	}
	if len(again) != 1 {
		t.Fatalf("the other worker claimed %d jobs, want 1", len(again))
	}
	if err != nil {
		t.Fatalf("Retry: %v; want applied (the job was queued, then claimed)", err)
	}
}

// TestRefusedUnrun: a script Redis refuses without running it (LOADING, as
// a replica loading its data answers) is sent again, as go-redis does with
// other commands, rather than failing the call.
func TestRefusedUnrun(t *testing.T) {
	be, px, _ := proxied(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	jobs := benchJobs(2, now)
	if _, err := be.Enqueue(ctx, jobs[:1]); err != nil { // registers the queue and task
		t.Fatal(err)
	}
	px.refuse.Store(1)
	if _, err := be.Enqueue(ctx, jobs[1:]); err != nil {
		t.Fatalf("Enqueue refused once: %v", err)
	}
	if px.refuse.Load() != 0 {
		t.Fatal("the proxy refused nothing")
	}
	got, err := be.Claim(ctx, backend.ClaimRequest{Limit: 2, Worker: "w", Now: now, LeaseFor: time.Hour})
	if err != nil || len(got) != 2 {
		t.Fatalf("claim = %d jobs, %v; want 2", len(got), err)
	}
	px.refuse.Store(1)
	if err := be.Cancel(ctx, got[0].ID, now); err != nil {
		t.Fatalf("Cancel refused once: %v", err)
	}
	px.refuse.Store(1)
	errs, err := be.Complete(ctx, []backend.Outcome{{Lease: got[1].Lease(), State: backend.StateSucceeded, FinishedAt: now,
		Attempt: backend.Attempt{Number: got[1].Attempt, StartedAt: now, FinishedAt: now, Worker: "w", Outcome: "succeeded"}}})
	if err != nil || errs[0] != nil {
		t.Fatalf("Complete refused once: %v, %v", errs, err)
	}
	for _, want := range []struct {
		id    string
		state backend.State
	}{{got[0].ID, backend.StateCancelled}, {got[1].ID, backend.StateSucceeded}} {
		if j, err := be.Get(ctx, want.id); err != nil || j.State != want.state {
			t.Fatalf("job %s: %v, %v; want %s", want.id, j.State, err, want.state)
		}
	}
}

// TestHeldEnqueueRunsLate: an enqueue still on its way when the call,
// having lost its connection, finds nothing stored, runs after the check;
// the call's second send then finds its own jobs (EXISTS) and succeeds
// rather than failing for jobs that are stored.
func TestHeldEnqueueRunsLate(t *testing.T) {
	be, px, _ := proxied(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	if _, err := be.Enqueue(ctx, benchJobs(1, now)); err != nil { // registers the queue and task
		t.Fatal(err)
	}
	// Idle pooled connections, so that the check after the lost connection
	// needs no new one (whose handshake reply would release the held command first).
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { be.c.Ping(ctx) })
	}
	wg.Wait()
	for _, n := range []int{1, 3} {
		jobs := benchJobs(n, now)
		px.hold.Store(1)
		res, err := be.Enqueue(ctx, jobs)
		if px.hold.Load() != 0 {
			t.Fatal("the proxy held nothing")
		}
		if err != nil {
			t.Fatalf("batch of %d: Enqueue whose first send ran late: %v", n, err)
		}
		for i, j := range jobs {
			if res[i].ID != j.ID || res[i].Duplicate {
				t.Errorf("result %d = %+v, want %s", i, res[i], j.ID)
			}
			if _, err := be.Get(ctx, j.ID); err != nil {
				t.Errorf("job %s: %v", j.ID, err)
			}
		}
	}
}

// proxied starts a Redis and a proxy to it (fault_test.go) and opens a
// backend through the proxy.
func proxied(t *testing.T) (*Backend, *proxy, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	px := startProxy(t, srv.Addr)
	be, err := Open("redis://" + px.addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be, px, srv
}

// hooked opens a backend through px on a client with hook and maxRetries
// (0: go-redis's default).
func hooked(t *testing.T, px *proxy, hook goredis.Hook, maxRetries int) *Backend {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: px.addr(), Protocol: 2, MaxRetries: maxRetries})
	c.AddHook(hook)
	t.Cleanup(func() { c.Close() })
	be, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// outcomesOf returns outcomes of state for the claimed jobs, finished at
// now, to run again at runAt (a retrying outcome).
func outcomesOf(jobs []*backend.Job, state backend.State, now, runAt time.Time) []backend.Outcome {
	outs := make([]backend.Outcome, len(jobs))
	for i, j := range jobs {
		outs[i] = backend.Outcome{Lease: j.Lease(), State: state, FinishedAt: now, RunAt: runAt,
			Attempt: backend.Attempt{Number: j.Attempt, StartedAt: now, FinishedAt: now, Worker: "w", Outcome: "succeeded"}}
	}
	return outs
}

// claimOn enqueues a job on each of queues (and extra more on the first)
// and claims them all.
func claimOn(t *testing.T, be *Backend, queues []string, extra int, now time.Time) []*backend.Job {
	t.Helper()
	jobs := benchJobs(len(queues)+extra, now)
	for i := range jobs {
		jobs[i].Queue = queues[0]
	}
	for i, q := range queues {
		jobs[i].Queue = q
	}
	if _, err := be.Enqueue(t.Context(), jobs); err != nil {
		t.Fatal(err)
	}
	got, err := be.Claim(t.Context(), backend.ClaimRequest{Limit: 10, Worker: "w", Queues: queues, Now: now, LeaseFor: time.Hour})
	if err != nil || len(got) != len(jobs) {
		t.Fatalf("claim = %d jobs, %v; want %d", len(got), err, len(jobs))
	}
	return got
}

// wantStored checks that Complete stored the outcomes of jobs, in state:
// no error in errs, and the jobs in state.
func wantStored(t *testing.T, be *Backend, jobs []*backend.Job, errs []error, state backend.State) {
	t.Helper()
	for i, j := range jobs {
		if errs[i] != nil {
			t.Errorf("job %s: %v, want stored", j.ID, errs[i])
		}
		if g, err := be.Get(t.Context(), j.ID); err != nil || g.State != state {
			t.Errorf("job %s: %v, %v; want %s", j.ID, g.State, err, state)
		}
	}
}

// TestLostGraphReplyUnsettled: EnqueueWorkflow's graph is stored but the
// reply is lost, and Redis is out of reach for the read that would settle
// it (and only for it): the call fails, and the workflow's wfnew member
// stays, so that the
// repair deletes the graph once the grace period has passed (forgetting the
// member would leave the graph where no sweep reaches it).
func TestLostGraphReplyUnsettled(t *testing.T) {
	srv := redistest.Start(t)
	px := startProxy(t, srv.Addr)
	hook := &beforeRead{single: true, cmd: "get", fn: px.Cut, after: px.Restore}
	be := hooked(t, px, hook, 1)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	if err := be.c.Ping(ctx).Err(); err != nil { // a connection made before the drops
		t.Fatal(err)
	}
	wf := &backend.Workflow{ID: benchJobs(1, now)[0].ID, CreatedAt: now, Steps: []backend.Step{{Job: benchJobs(1, now)[0]}}}
	hook.armed.Store(true)
	px.skip.Store(1) // the wfnew member's reply passes, the graph's is lost
	px.lose.Store(1)
	if err := be.EnqueueWorkflow(ctx, wf); err == nil {
		t.Fatal("EnqueueWorkflow succeeded with Redis out of reach")
	}
	px.lose.Store(0)
	later, err := Open(srv.URL(0), WithClock(func() time.Time { return time.Now().Add(wfNewGrace + time.Minute) }))
	if err != nil {
		t.Fatal(err)
	}
	defer later.Close()
	if later.c.Exists(ctx, later.wfKey(wf.ID)).Val() != 1 {
		t.Fatal("the graph was not stored: the lost reply was not simulated")
	}
	if _, err := later.Enqueue(ctx, benchJobs(1, now)); err != nil { // a queue, for Prune's sweep
		t.Fatal(err)
	}
	if _, err := later.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if later.c.Exists(ctx, later.wfKey(wf.ID)).Val() != 0 {
		t.Fatal("the graph outlived the repair: nothing recorded it")
	}
	if n := later.c.ZCard(ctx, later.wfNewKey()).Val(); n != 0 {
		t.Fatalf("wfnew holds %d members after the repair", n)
	}
}
