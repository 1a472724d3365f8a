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

// chain enqueues workflow n+2 of steps n (task a, root) and n+1 (task b,
// a's child) on queue "default"; it returns the workflow.
func chain(t *testing.T, b *Backend, n uint64, now time.Time) *backend.Workflow {
	t.Helper()
	a := backendtest.NewJob(backendtest.ID(n), "a", now)
	c := backendtest.NewJob(backendtest.ID(n+1), "b", now)
	c.State = backend.StatePending
	wf := &backend.Workflow{ID: backendtest.ID(n + 2), CreatedAt: now, Steps: []backend.Step{
		{Job: a}, {Job: c, Parents: []backend.Edge{{Parent: a.ID}}},
	}}
	if err := b.EnqueueWorkflow(t.Context(), wf); err != nil {
		t.Fatal(err)
	}
	return wf
}

// roots enqueues workflow id with one root step per id of steps (task r).
func roots(t *testing.T, b *Backend, id string, now time.Time, steps ...string) *backend.Workflow {
	t.Helper()
	wf := &backend.Workflow{ID: id, CreatedAt: now}
	for _, s := range steps {
		wf.Steps = append(wf.Steps, backend.Step{Job: backendtest.NewJob(s, "r", now)})
	}
	if err := b.EnqueueWorkflow(t.Context(), wf); err != nil {
		t.Fatal(err)
	}
	return wf
}

// wantWorkflowGone checks that nothing of workflow wf is left: not found by
// GetWorkflow and CancelWorkflow, and no graph, wfl, wfs member or wfstep
// entry of its steps.
func wantWorkflowGone(t *testing.T, b *Backend, wf *backend.Workflow, why string) {
	t.Helper()
	ctx := t.Context()
	if info, err := b.GetWorkflow(ctx, wf.ID); !errors.Is(err, backend.ErrWorkflowNotFound) {
		t.Fatalf("%s: GetWorkflow = %+v, %v; want ErrWorkflowNotFound", why, info, err)
	}
	if _, err := b.CancelWorkflow(ctx, wf.ID, wf.CreatedAt); !errors.Is(err, backend.ErrWorkflowNotFound) {
		t.Fatalf("%s: CancelWorkflow = %v; want ErrWorkflowNotFound", why, err)
	}
	for _, k := range []string{b.wfKey(wf.ID), b.wfLiveKey(wf.ID)} {
		if b.c.Exists(ctx, k).Val() != 0 {
			t.Fatalf("%s: key %s is left", why, k)
		}
	}
	if err := b.c.ZScore(ctx, b.wfListKey(), wf.ID).Err(); !errors.Is(err, goredis.Nil) {
		t.Fatalf("%s: workflow %s is still in wfs (%v)", why, wf.ID, err)
	}
	for _, s := range wf.Steps {
		if b.c.HExists(ctx, b.wfStepKey(), s.Job.ID).Val() {
			t.Fatalf("%s: wfstep still names step %s", why, s.Job.ID)
		}
	}
}

// wantSteps checks that GetWorkflow of wf lists exactly the steps ids.
func wantSteps(t *testing.T, b *Backend, wf *backend.Workflow, why string, ids ...string) {
	t.Helper()
	info, err := b.GetWorkflow(t.Context(), wf.ID)
	if err != nil {
		t.Fatalf("%s: GetWorkflow: %v", why, err)
	}
	var got []string
	for _, s := range info.Steps {
		got = append(got, s.Job.ID)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("%s: GetWorkflow lists steps %v, want %v", why, got, ids)
	}
}

// TestRetentionDeletesWorkflowWithLastStep: with at-completion retention
// keeping one finished job per queue, the chain's root goes when its
// child ends (the unpark's retention) while the workflow keeps its record
// and its other step; the child goes with the completion of a plain job
// (the completion script's retention), and the workflow with it.
func TestRetentionDeletesWorkflowWithLastStep(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		b := open(WithRetention(1, 0))
		ctx := t.Context()
		t0 := backendtest.Epoch()
		wf := chain(t, b, 1, t0)
		a, c := wf.Steps[0].Job, wf.Steps[1].Job
		other := roots(t, b, backendtest.ID(10), t0, backendtest.ID(11)) // stays queued: on task r
		finishTask(t, b, "a", t0.Add(time.Second), backend.StateSucceeded, []byte{1})
		finishTask(t, b, "b", t0.Add(2*time.Second), backend.StateSucceeded, nil)
		if exists(t, b, a.ID) || !exists(t, b, c.ID) {
			t.Fatal("after the chain ended, retention (keep 1) should have deleted the root and kept the child")
		}
		wantSteps(t, b, wf, "after its root was deleted", c.ID)
		if b.c.HExists(ctx, b.wfStepKey(), a.ID).Val() {
			t.Fatal("wfstep still names the deleted root")
		}
		if _, err := b.Enqueue(ctx, []*backend.Job{backendtest.NewJob(backendtest.ID(20), "x", t0)}); err != nil {
			t.Fatal(err)
		}
		finishTask(t, b, "x", t0.Add(3*time.Second), backend.StateSucceeded, nil)
		if exists(t, b, c.ID) {
			t.Fatal("retention (keep 1) kept the child after a newer job finished")
		}
		wantWorkflowGone(t, b, wf, "after retention deleted its last step")
		list, err := b.ListWorkflows(ctx, 0)
		if err != nil || len(list) != 1 || list[0].ID != other.ID {
			t.Fatalf("ListWorkflows = %+v, %v; want only %s", list, err, other.ID)
		}
		wantSteps(t, b, other, "the other workflow", backendtest.ID(11))
	})
}

// crashPurge deletes the jobs ids of queue q as Purge's script does, without
// what the client does after it: a crash between a step's deletion and its
// workflow's.
func crashPurge(t *testing.T, b *Backend, q string, ids ...string) {
	t.Helper()
	a := append([]any{b.qp(q), "", "", 0, len(ids)}, toAny(ids)...)
	if _, err := b.run(t.Context(), purgeScript, b.meta(q), a...); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if exists(t, b, id) {
			t.Fatalf("job %s outlived the purge script", id)
		}
	}
}

// TestSweepDeletesLeftoverWorkflows: workflows whose steps' jobs were
// deleted without the client's follow-up (a crash), or by an older build
// (no wf field, no wfl set), are not found, left out of ListWorkflows
// (which still fills its limit with older workflows), and deleted by the
// sweep of TrimEnded, PurgeEnded and Prune; a workflow with a step left
// keeps its record.
func TestSweepDeletesLeftoverWorkflows(t *testing.T) {
	t0 := backendtest.Epoch()
	for name, run := range map[string]func(b *Backend) (int, error){
		"TrimEnded": func(b *Backend) (int, error) {
			return b.TrimEnded(t.Context(), 0, backend.PurgeFilter{})
		},
		"PurgeEnded": func(b *Backend) (int, error) {
			return b.PurgeEnded(t.Context(), t0.Add(time.Hour), backend.PurgeFilter{})
		},
		"Prune": func(b *Backend) (int, error) { return b.Prune(t.Context()) },
		// Workers call it every 250 ms by default: it sweeps once a minute.
		"RecoverExpired": func(b *Backend) (int, error) { return b.RecoverExpired(t.Context(), t0, 5) },
	} {
		t.Run(name, func(t *testing.T) {
			topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
				b := open()
				ctx := t.Context()
				kept1 := roots(t, b, backendtest.ID(1), t0, backendtest.ID(2))
				kept2 := roots(t, b, backendtest.ID(3), t0, backendtest.ID(4))
				partial := roots(t, b, backendtest.ID(5), t0, backendtest.ID(6), backendtest.ID(7))
				crashed := roots(t, b, backendtest.ID(8), t0, backendtest.ID(9), backendtest.ID(10))
				old := roots(t, b, backendtest.ID(11), t0, backendtest.ID(12))
				// An older build's workflow: no wfl set, no field wf on its records.
				b.c.Del(ctx, b.wfLiveKey(old.ID))
				b.c.HDel(ctx, b.qp("default")+"j:"+backendtest.ID(12), "wf")
				crashPurge(t, b, "default", backendtest.ID(6), backendtest.ID(9), backendtest.ID(10))
				if _, err := b.Purge(ctx, backend.PurgeFilter{IDs: []string{backendtest.ID(12)}}); err != nil {
					t.Fatal(err)
				}
				for _, wf := range []*backend.Workflow{crashed, old} {
					if _, err := b.GetWorkflow(ctx, wf.ID); !errors.Is(err, backend.ErrWorkflowNotFound) {
						t.Fatalf("GetWorkflow(%s) with no step left = %v; want ErrWorkflowNotFound", wf.ID, err)
					}
					if _, err := b.CancelWorkflow(ctx, wf.ID, t0); !errors.Is(err, backend.ErrWorkflowNotFound) {
						t.Fatalf("CancelWorkflow(%s) with no step left = %v; want ErrWorkflowNotFound", wf.ID, err)
					}
					if b.c.Exists(ctx, b.wfKey(wf.ID)).Val() != 1 {
						t.Fatalf("workflow %s's graph is gone before the sweep: the crash was not simulated", wf.ID)
					}
				}
				list, err := b.ListWorkflows(ctx, 2)
				if err != nil || len(list) != 2 || list[0].ID != partial.ID || list[1].ID != kept2.ID {
					t.Fatalf("ListWorkflows(2) = %+v, %v; want %s and %s", list, err, partial.ID, kept2.ID)
				}
				if _, err := run(b); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				wantWorkflowGone(t, b, crashed, "after the sweep")
				wantWorkflowGone(t, b, old, "after the sweep")
				wantSteps(t, b, partial, "a workflow with a step left, after the sweep", backendtest.ID(7))
				wantSteps(t, b, kept1, "an untouched workflow, after the sweep", backendtest.ID(2))
				if b.c.SIsMember(ctx, b.wfLiveKey(partial.ID), backendtest.ID(6)).Val() {
					t.Fatal("the sweep left the deleted step in its workflow's wfl")
				}
				// Its last step deleted by Purge: the workflow goes at once.
				if _, err := b.Purge(ctx, backend.PurgeFilter{IDs: []string{backendtest.ID(7)}}); err != nil {
					t.Fatal(err)
				}
				wantWorkflowGone(t, b, partial, "after Purge of its last step")
				list, err = b.ListWorkflows(ctx, 0)
				if err != nil || len(list) != 2 || list[0].ID != kept2.ID || list[1].ID != kept1.ID {
					t.Fatalf("ListWorkflows = %+v, %v; want %s and %s", list, err, kept2.ID, kept1.ID)
				}
			})
		})
	}
}

// cmdLog records the commands a client sends: each command's name and
// first key, lower case, and which of them went alone (not in a pipeline
// with others).
type cmdLog struct {
	mu          sync.Mutex
	cmds, alone []string
}

func (l *cmdLog) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (l *cmdLog) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		l.add([]goredis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (l *cmdLog) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		l.add(cmds)
		return next(ctx, cmds)
	}
}

func (l *cmdLog) add(cmds []goredis.Cmder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, cmd := range cmds {
		a := cmd.Args()
		s := strings.ToLower(fmt.Sprint(a[0]))
		if len(a) > 1 {
			s += " " + fmt.Sprint(a[1])
		}
		l.cmds = append(l.cmds, s)
		if len(cmds) == 1 {
			l.alone = append(l.alone, s)
		}
	}
}

// reset returns what was recorded and starts over.
func (l *cmdLog) reset() (cmds, alone []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cmds, alone = l.cmds, l.alone
	l.cmds, l.alone = nil, nil
	return cmds, alone
}

// TestPlainDeletionsTouchNoWorkflow: deleting plain jobs (the completion
// script's retention, Purge, PurgeEnded, TrimEnded, Prune) sends no
// command about workflows but the sweep's read of wfs, which goes in the
// pipeline of the parked sweep's ZCARDs: no round trip more.
func TestPlainDeletionsTouchNoWorkflow(t *testing.T) {
	srv := redistest.Start(t)
	b := openTest(t, srv, WithRetention(1, 0))
	ctx := t.Context()
	t0 := backendtest.Epoch()
	var jobs []*backend.Job
	for i := range 8 {
		jobs = append(jobs, backendtest.NewJob(backendtest.ID(uint64(i+1)), "x", t0))
	}
	if _, err := b.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		finishTask(t, b, "x", t0.Add(time.Duration(i)*time.Second), backend.StateSucceeded, nil)
	}
	log := &cmdLog{}
	b.c.AddHook(log)
	// Each call deletes one plain job.
	calls := map[string]func() (int, error){
		"complete": func() (int, error) {
			finishTask(t, b, "x", t0.Add(10*time.Second), backend.StateSucceeded, nil)
			return 1, nil
		},
		"Purge":      func() (int, error) { return b.Purge(ctx, backend.PurgeFilter{IDs: []string{jobs[7].ID}}) },
		"PurgeEnded": func() (int, error) { return b.PurgeEnded(ctx, t0.Add(time.Hour), backend.PurgeFilter{}) },
	}
	for _, name := range []string{"complete", "Purge", "PurgeEnded"} {
		log.reset()
		if n, err := calls[name](); err != nil || n != 1 {
			t.Fatalf("%s = %d, %v; want 1 job deleted", name, n, err)
		}
		cmds, _ := log.reset()
		for _, c := range cmds {
			if strings.Contains(c, ":wfl:") || strings.Contains(c, ":wf:") || strings.HasPrefix(c, "srem") ||
				strings.HasPrefix(c, "scard") || strings.HasPrefix(c, "exists") || c == "hdel "+b.wfStepKey() {
				t.Errorf("%s of a plain job sent %q", name, c)
			}
		}
	}
	// TrimEnded and Prune with no workflow: the sweep reads wfs in the
	// pipeline of the parked sweep's ZCARDs, and sends nothing more.
	for name, run := range map[string]func() (int, error){
		"TrimEnded": func() (int, error) { return b.TrimEnded(ctx, 0, backend.PurgeFilter{}) },
		"Prune":     func() (int, error) { return b.Prune(ctx) },
	} {
		log.reset()
		if _, err := run(); err != nil {
			t.Fatal(err)
		}
		cmds, alone := log.reset()
		read := "zrange " + b.wfListKey()
		if !slices.Contains(cmds, read) || slices.Contains(alone, read) {
			t.Errorf("%s: the sweep's read of wfs was not sent in a pipeline with others: %v (alone: %v)", name, cmds, alone)
		}
		for _, c := range cmds {
			if strings.Contains(c, ":wfl:") || strings.Contains(c, ":wf:") || strings.HasPrefix(c, "srandmember") {
				t.Errorf("%s with no workflow sent %q", name, c)
			}
		}
	}
}

// TestSweepWorkflowsInChunks: a sweep pass looks at wfSweepChunk workflows,
// the next goes on from there, and the one after the last starts over.
func TestSweepWorkflowsInChunks(t *testing.T) {
	topologies(t, func(t *testing.T, open func(opts ...Option) *Backend) {
		b := open()
		ctx := t.Context()
		t0 := backendtest.Epoch()
		n := wfSweepChunk + wfSweepChunk/4
		var steps []string
		for i := range n {
			id := uint64(2*i + 1)
			roots(t, b, backendtest.ID(id+1), t0, backendtest.ID(id))
			steps = append(steps, backendtest.ID(id))
		}
		crashPurge(t, b, "default", steps...)
		left := func() int64 { return b.c.ZCard(ctx, b.wfListKey()).Val() }
		for pass, want := range []int64{int64(n - wfSweepChunk), 0} {
			if _, err := b.Prune(ctx); err != nil {
				t.Fatal(err)
			}
			if got := left(); got != want {
				t.Fatalf("after sweep pass %d: %d workflows left, want %d", pass+1, got, want)
			}
		}
		if k := b.c.HLen(ctx, b.wfStepKey()).Val(); k != 0 {
			t.Fatalf("wfstep holds %d entries after every workflow was swept", k)
		}
		last := roots(t, b, backendtest.ID(uint64(2*n+2)), t0, backendtest.ID(uint64(2*n+1)))
		crashPurge(t, b, "default", last.Steps[0].Job.ID)
		if _, err := b.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		wantWorkflowGone(t, b, last, "after a pass that started over")
	})
}
