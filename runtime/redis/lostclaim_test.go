package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/internal/redistest"
	"github.com/nuvom/nuvom/runtime/backend"
)

// TestLostReplyClaim: a claim whose reply is lost or whose command is dropped before Redis read it returns
// the jobs it leased, once. Sent again blindly (as go-redis did), a second
// claim found the jobs taken by the first, which waited, unknown to the
// worker, until their leases expired, their attempt counted as lost.
func TestLostReplyClaim(t *testing.T) {
	be, px, _ := proxied(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	for _, queues := range [][]string{{"default"}, {"default", "second"}} {
		for _, lost := range []string{"reply", "request"} {
			t.Run(fmt.Sprintf("%d queues/%s", len(queues), lost), func(t *testing.T) {
				// A first claim reads what a claim reads once (the task
				// limits), so that the reply lost below is the script's.
				if got, err := be.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Queues: queues, Now: now, LeaseFor: time.Hour}); err != nil || len(got) != 0 {
					t.Fatalf("claim of empty queues = %d jobs, %v", len(got), err)
				}
				jobs := benchJobs(3, now)
				for i := range jobs {
					jobs[i].Queue = queues[i%len(queues)]
				}
				if _, err := be.Enqueue(ctx, jobs); err != nil {
					t.Fatal(err)
				}
				if lost == "request" {
					px.loseReq.Store(1)
				} else {
					px.lose.Store(1)
				}
				got, err := be.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Queues: queues, Now: now, LeaseFor: time.Hour})
				if px.lose.Load()+px.loseReq.Load() != 0 {
					t.Fatal("the proxy dropped nothing")
				}
				px.lose.Store(0)
				px.loseReq.Store(0)
				if err != nil {
					t.Fatalf("Claim: %v", err)
				}
				wantClaimed(t, be, jobs, got, now)
			})
		}
	}
}

// TestLostReplyClaimPipeline: on a Cluster a claim over several queues is
// one script per queue, pipelined; a pipeline whose replies are lost after
// the scripts ran returns every job they leased, once.
func TestLostReplyClaimPipeline(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		be := open()
		ctx := context.Background()
		now := time.Now().Truncate(time.Microsecond)
		queues := []string{"default", "second", "third"}
		jobs := benchJobs(6, now)
		for i := range jobs {
			jobs[i].Queue = queues[i%len(queues)]
		}
		if _, err := be.Enqueue(ctx, jobs); err != nil {
			t.Fatal(err)
		}
		h := &loseAfterRun{n: 1}
		be.c.AddHook(h)
		got, err := be.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Queues: queues, Now: now, LeaseFor: time.Hour})
		if h.n != 0 {
			t.Fatal("no claim script was sent")
		}
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		wantClaimed(t, be, jobs, got, now)
	})
}

// loseAfterRun lets the n-th command, or pipeline, holding the claim script
// run, then replaces its replies by a connection error: replies lost after
// Redis ran the commands.
type loseAfterRun struct{ n int }

// isClaim reports whether cmd runs the claim script.
func isClaim(cmd goredis.Cmder) bool {
	args := cmd.Args()
	return cmd.Name() == "evalsha" && len(args) > 1 && args[1] == claimScript.Hash()
}

func (h *loseAfterRun) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *loseAfterRun) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if h.n > 0 && isClaim(cmd) {
			if h.n--; h.n == 0 {
				cmd.SetErr(io.ErrUnexpectedEOF)
				return io.ErrUnexpectedEOF
			}
		}
		return err
	}
}

func (h *loseAfterRun) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		if h.n > 0 && len(cmds) > 0 && isClaim(cmds[0]) {
			if h.n--; h.n == 0 {
				for _, c := range cmds {
					c.SetErr(io.ErrUnexpectedEOF)
				}
				return io.ErrUnexpectedEOF
			}
		}
		return err
	}
}

// wantClaimed checks that got holds each of jobs once, running under
// worker "w" from now, with a lease Complete accepts.
func wantClaimed(t *testing.T, be *Backend, jobs, got []*backend.Job, now time.Time) {
	t.Helper()
	seen := map[string]int{}
	for _, j := range got {
		seen[j.ID]++
		if j.State != backend.StateRunning || j.LeaseOwner != "w" || !j.StartedAt.Equal(now) || j.Attempt != 1 {
			t.Errorf("claimed job %s: state %s owner %q started %s attempt %d; want running under w from %s, attempt 1",
				j.ID, j.State, j.LeaseOwner, j.StartedAt, j.Attempt, now)
		}
	}
	for _, j := range jobs {
		if seen[j.ID] != 1 {
			t.Errorf("job %s claimed %d times, want once (claimed %d of %d jobs)", j.ID, seen[j.ID], len(got), len(jobs))
		}
	}
	if len(got) != len(jobs) {
		return
	}
	errs, err := be.Complete(t.Context(), outcomesOf(got, backend.StateSucceeded, now, now))
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	for i, e := range errs {
		if e != nil {
			t.Errorf("completing claimed job %s: %v", got[i].ID, e)
		}
	}
}

// TestLostReplyClaimAfterLeaseLost: a job this process claimed before, whose
// lease it lost (another worker recovered it after it expired: this
// process never completed it), is claimed again by a claim whose reply is
// lost. The settling read must return it: a claim that leased it is this
// claim, not the old one, whose lease token it no longer holds. Skipped as
// "already handed out", it waited, unknown to the worker, for its new lease
// to expire, a second attempt counted as lost.
func TestLostReplyClaimAfterLeaseLost(t *testing.T) {
	be, px, srv := proxied(t)
	other, err := Open("redis://" + srv.Addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	jobs := benchJobs(1, now)
	if _, err := be.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	first, err := be.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Now: now, LeaseFor: time.Minute})
	if err != nil || len(first) != 1 {
		t.Fatalf("first claim = %d jobs, %v; want 1", len(first), err)
	}
	// The lease expires; another worker's recovery makes the job ready.
	later := now.Add(2 * time.Minute)
	if n, err := other.RecoverExpired(ctx, later, 10); err != nil || n != 1 {
		t.Fatalf("RecoverExpired = %d, %v; want 1", n, err)
	}
	px.lose.Store(1)
	got, err := be.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Now: later, LeaseFor: time.Hour})
	if px.lose.Load() != 0 {
		t.Fatal("the proxy dropped nothing")
	}
	px.lose.Store(0)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	if len(got) != 1 || got[0].ID != jobs[0].ID || got[0].LeaseToken == first[0].LeaseToken {
		j, _ := other.Get(ctx, jobs[0].ID)
		t.Fatalf("claim after a lost reply = %d jobs; want the recovered job under a new lease (stored: state %s, owner %q, lease until %s)",
			len(got), j.State, j.LeaseOwner, j.LeaseUntil)
	}
	errs, err := be.Complete(ctx, outcomesOf(got, backend.StateSucceeded, later, later))
	if err != nil || errs[0] != nil {
		t.Fatalf("Complete: %v, %v", err, errs)
	}
}

// TestLostReplyClaimLimitedTask: a Claim that takes a task with limits
// claims the other tasks first, then the limited one, at the same now, over
// the same queues. When the limited task's claim loses its reply, the
// settling read must not return the jobs the first claim handed out, even
// when this process no longer remembers them (it remembers at most 1<<16
// leases, and the ones of jobs cancelled while running or recovered by
// another worker stay behind): it hands out only jobs of the tasks the
// claim asked for. Returned again, they ran twice in the worker.
func TestLostReplyClaimLimitedTask(t *testing.T) {
	be, _, _ := proxied(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	if err := be.DeclareLimits(ctx, map[string]backend.Limit{"lim.T": {MaxConcurrency: 10}}); err != nil {
		t.Fatal(err)
	}
	jobs := benchJobs(2, now)
	jobs[1].Task = "lim.T"
	if _, err := be.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	// The map of remembered leases is full.
	stale := make([]*backend.Job, 1<<16)
	for i := range stale {
		stale[i] = &backend.Job{ID: fmt.Sprintf("stale%d", i), Queue: "default", LeaseToken: 1}
	}
	be.remember(stale)
	h := &loseAfterRun{n: 2} // the first claim script is the free tasks', the second the limited task's
	be.c.AddHook(h)
	got, err := be.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Now: now, LeaseFor: time.Hour})
	if h.n != 0 {
		t.Fatalf("%d claim scripts short of the one whose reply is lost", h.n)
	}
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	wantClaimed(t, be, jobs, got, now)
}

// TestLostReplyClaimAfterQuarantine: a Claim that quarantines a damaged
// record claims again at the same now to fill its batch; when that round
// loses its reply, the settling read must not return the job the first
// round handed out, even when this process's memory of leases is full.
func TestLostReplyClaimAfterQuarantine(t *testing.T) {
	be, _, _ := proxied(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var jobs []*backend.Job
	for _, id := range []string{"01J00000000000000000000001", "01J00000000000000000000002", "01J00000000000000000000003"} {
		jobs = append(jobs, &backend.Job{ID: id, Task: "t", Queue: "q", State: backend.StateQueued, MaxAttempts: 1, RunAt: now, CreatedAt: now})
	}
	if _, err := be.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	if err := be.c.HSet(ctx, be.qp("q")+"j:"+jobs[1].ID, "d", "\xc1garbage").Err(); err != nil {
		t.Fatal(err)
	}
	stale := make([]*backend.Job, 1<<16)
	for i := range stale {
		stale[i] = &backend.Job{ID: fmt.Sprintf("stale%d", i), Queue: "q", LeaseToken: 1}
	}
	be.remember(stale)
	h := &loseAfterRun{n: 2} // the second round's claim script
	be.c.AddHook(h)
	got, err := be.Claim(ctx, backend.ClaimRequest{Limit: 2, Worker: "w", Now: now, LeaseFor: time.Hour})
	if h.n != 0 {
		t.Fatalf("%d claim scripts short of the one whose reply is lost", h.n)
	}
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	if len(got) != 2 || got[0].ID != jobs[0].ID || got[1].ID != jobs[2].ID {
		ids := make([]string, len(got))
		for i, j := range got {
			ids[i] = j.ID
		}
		t.Fatalf("Claim = %v; want the intact jobs %s and %s once each", ids, jobs[0].ID, jobs[2].ID)
	}
}

// TestLeaseLostForgotten: a job cancelled while running, whose worker then
// completes it (its lease lost), is forgotten by the process that claimed
// it. Left behind, such entries filled the memory of leases (1<<16), after
// which claimed jobs were no longer remembered.
func TestLeaseLostForgotten(t *testing.T) {
	be, _, _ := proxied(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	jobs := benchJobs(1, now)
	if _, err := be.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	got, err := be.Claim(ctx, backend.ClaimRequest{Limit: 1, Worker: "w", Now: now, LeaseFor: time.Hour})
	if err != nil || len(got) != 1 {
		t.Fatalf("Claim = %d jobs, %v", len(got), err)
	}
	if err := be.Cancel(ctx, got[0].ID, now); err != nil {
		t.Fatal(err)
	}
	errs, err := be.Complete(ctx, outcomesOf(got, backend.StateSucceeded, now, now))
	if err != nil || !errors.Is(errs[0], backend.ErrLeaseLost) {
		t.Fatalf("Complete of a cancelled job = %v, %v; want ErrLeaseLost", errs, err)
	}
	be.leasedMu.Lock()
	_, kept := be.leased[got[0].ID]
	n := len(be.leased)
	be.leasedMu.Unlock()
	if kept {
		t.Fatalf("the lease of a job cancelled while running is still remembered (%d entries)", n)
	}
}

// TestClaimPipelineNoScriptOnOneNode: on a Cluster one node forgot the
// scripts (it restarted) while the others did not. A claim over queues on
// several nodes runs one script per queue in a pipeline; the node that
// forgot answers NOSCRIPT, the others run their claim. The claim must
// return the jobs they leased, once: sent again as a whole (as a pipeline
// answered NOSCRIPT was), their scripts ran a second time and found those
// jobs taken, which waited, unknown to the worker, for their leases to
// expire.
func TestClaimPipelineNoScriptOnOneNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node Redis Cluster")
	}
	cl := redistest.StartCluster(t)
	be, err := Open(cl.URL(), WithCluster(true), WithPrefix(fmt.Sprint("c", prefixes.Add(1))))
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ctx := context.Background()
	cc := be.c.(*goredis.ClusterClient)
	// Queues on at least two nodes.
	nodes := map[string][]string{}
	for i := 0; len(nodes) < 2 && i < 100; i++ {
		q := fmt.Sprint("q", i)
		m, err := cc.MasterForKey(ctx, be.qp(q)+"x")
		if err != nil {
			t.Fatal(err)
		}
		nodes[m.Options().Addr] = append(nodes[m.Options().Addr], q)
	}
	var queues []string
	var forgetful string
	for addr, qs := range nodes {
		queues = append(queues, qs[0])
		forgetful = addr
	}
	now := time.Now().Truncate(time.Microsecond)
	jobs := benchJobs(4, now)
	for i := range jobs {
		jobs[i].Queue = queues[i%len(queues)]
	}
	if _, err := be.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		if c.Options().Addr != forgetful {
			return nil
		}
		return c.ScriptFlush(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	got, err := be.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Queues: queues, Now: now, LeaseFor: time.Hour})
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	wantClaimed(t, be, jobs, got, now)
}
