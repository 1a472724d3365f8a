package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/internal/safemsgpack"
	"github.com/nuvom/nuvom/runtime/backend"
)

// Workflows on Redis. Keys (outside the queues' hash tags: a workflow spans
// queues):
//
//	<prefix>:wf:<id>   string: msgpack of the graph (steps, parents, inputs); never changes
//	<prefix>:wfstep    hash: job id -> workflow id, for the steps of every workflow
//	<prefix>:wfs       zset (lex): workflow ids, for ListWorkflows
//	<prefix>:wfl:<id>  set: the steps whose jobs may still exist (wfgc.go)
//	<prefix>:wfnew     zset: workflows being enqueued, by start (Unix seconds):
//	                   what a crash during EnqueueWorkflow left is found there
//	                   (repairEnqueues, wfgc.go)
//
// Each step's record carries field wf, its workflow's id (wfgc.go). A
// workflow goes with the last of its steps' jobs (wfgc.go); a step whose
// job is gone is left out of GetWorkflow, a workflow with none left is not
// found.
//
// A step waiting for its parents is a job in state pending: only its state
// index (s:pending) holds it, never a ready or waiting set, so no claim sees
// it. A step is released or cancelled by a compare-and-set on its record
// (casScript) made only while it is pending, so at most once; its parents'
// records decide. Complete, Cancel and RecoverExpired settle the children of
// the jobs they end; RecoverExpired also settles every pending step, which
// repairs a release that a crash between a parent's end and the release left
// undone. (The release is therefore not inside the parent's completion
// script: on a Cluster the child's keys are in another slot.)

var _ backend.Workflows = (*Backend)(nil)

func (b *Backend) wfKey(id string) string { return b.o.prefix + ":wf:" + id }
func (b *Backend) wfStepKey() string      { return b.o.prefix + ":wfstep" }
func (b *Backend) wfListKey() string      { return b.o.prefix + ":wfs" }
func (b *Backend) wfNewKey() string       { return b.o.prefix + ":wfnew" }

// errUnchanged ends a compare-and-set that has nothing to write.
var errUnchanged = errors.New("unchanged")

// EnqueueWorkflow records the workflow in wfnew, stores the graph, wfstep's
// entries and the wfl set (beginWorkflow), then every job (pending steps
// included) through Enqueue's path (on a standalone Redis one script,
// atomically), then the wfs member, and takes it out of wfnew.
func (b *Backend) EnqueueWorkflow(ctx context.Context, wf *backend.Workflow) error {
	if err := b.check(ctx, "enqueue workflow"); err != nil {
		return err
	}
	if err := backend.CheckWorkflow(wf); err != nil {
		return fmt.Errorf("redis: enqueue workflow: %w", err)
	}
	undo, err := b.beginWorkflow(ctx, wf)
	if err != nil {
		return err
	}
	jobs := make([]*backend.Job, len(wf.Steps))
	for i, s := range wf.Steps {
		jobs[i] = s.Job
	}
	if _, err := b.enqueue(ctx, jobs, true, parentSet(wf), wf.ID); err != nil {
		undo()
		return fmt.Errorf("redis: enqueue workflow %s: %w", wf.ID, err)
	}
	if _, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZAdd(ctx, b.wfListKey(), goredis.Z{Member: wf.ID})
		p.ZRem(ctx, b.wfNewKey(), wf.ID)
		return nil
	}); err != nil {
		return wrap(ctx, "enqueue workflow "+wf.ID, err)
	}
	return nil
}

// beginWorkflow is the first part of EnqueueWorkflow: the wfnew member,
// then the graph (failing when a workflow holds the id), wfstep's entries
// and the wfl set. It returns what deletes them again.
func (b *Backend) beginWorkflow(ctx context.Context, wf *backend.Workflow) (undo func(), err error) {
	g := backend.GraphOf(wf)
	ids := make([]string, len(wf.Steps))
	steps := make([]any, 0, 2*len(wf.Steps))
	for i, s := range wf.Steps {
		ids[i] = s.Job.ID
		steps = append(steps, s.Job.ID, wf.ID)
	}
	data, err := msgpack.Marshal(&g)
	if err != nil {
		return nil, fmt.Errorf("redis: enqueue workflow %s: %w", wf.ID, err)
	}
	// Recorded first: whatever a crash leaves after this, the repair finds.
	added, err := b.c.ZAddNX(ctx, b.wfNewKey(), goredis.Z{Score: float64(b.o.now().Unix()), Member: wf.ID}).Result()
	if err != nil {
		return nil, wrap(ctx, "enqueue workflow "+wf.ID, err)
	}
	forget := func() {
		if added > 0 {
			b.c.ZRem(context.WithoutCancel(ctx), b.wfNewKey(), wf.ID)
		}
	}
	ok, err := b.setOnce(ctx, b.wfKey(wf.ID), data)
	if err == nil && !ok {
		forget()
	}
	// With err the graph may be stored: the wfnew member stays, for the
	// repair to delete it.
	if err != nil {
		return nil, wrap(ctx, "enqueue workflow "+wf.ID, err)
	}
	if !ok {
		return nil, fmt.Errorf("redis: enqueue workflow %s: a workflow with this id exists", wf.ID)
	}
	undo = func() {
		c := context.WithoutCancel(ctx)
		if _, err := b.c.Pipelined(c, func(p goredis.Pipeliner) error {
			p.HDel(c, b.wfStepKey(), ids...)
			p.Del(c, b.wfLiveKey(wf.ID))
			p.Del(c, b.wfKey(wf.ID))
			return nil
		}); err == nil {
			forget() // else the wfnew member stays, for the repair
		}
	}
	if _, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSet(ctx, b.wfStepKey(), steps...)
		p.SAdd(ctx, b.wfLiveKey(wf.ID), toAny(ids)...)
		return nil
	}); err != nil {
		undo()
		return nil, wrap(ctx, "enqueue workflow "+wf.ID, err)
	}
	return undo, nil
}

func (b *Backend) readGraph(ctx context.Context, id string) (*backend.Graph, error) {
	data, err := b.c.Get(ctx, b.wfKey(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("workflow %s: %w", id, backend.ErrWorkflowNotFound)
	}
	if err != nil {
		return nil, err
	}
	return decodeGraph(id, data)
}

// decodeGraph decodes the stored graph data of workflow id.
func decodeGraph(id string, data []byte) (*backend.Graph, error) {
	var g backend.Graph
	if err := safemsgpack.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("workflow %s: decode graph: %w", id, err)
	}
	return &g, nil
}

// cachedGraph returns the graph of workflow wf from cache, reading it into
// cache the first time; nil (no error) when the workflow is gone.
func (b *Backend) cachedGraph(ctx context.Context, cache map[string]*backend.Graph, wf string) (*backend.Graph, error) {
	if g := cache[wf]; g != nil {
		return g, nil
	}
	g, err := b.readGraph(ctx, wf)
	if errors.Is(err, backend.ErrWorkflowNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cache[wf] = g
	return g, nil
}

// settleChildren settles the children of the jobs in ids, which have just
// ended, and theirs in turn when they end; then it unparks the parents of
// the steps it settled that no pending step waits for any more (wfkeep.go),
// and, with own (ids were taken out of pending or cancelled: Cancel and
// CancelWorkflow), those of the jobs ids too. A plain job costs one HMGET.
func (b *Backend) settleChildren(ctx context.Context, ids []string, now time.Time, own bool) error {
	if len(ids) == 0 {
		return nil
	}
	wfs, err := b.c.HMGet(ctx, b.wfStepKey(), ids...).Result()
	if err != nil {
		return err
	}
	cache := map[string]*backend.Graph{}
	type item struct{ id, wf string }
	var work []item
	for i, w := range wfs {
		if s, ok := w.(string); ok && s != "" {
			work = append(work, item{ids[i], s})
		}
	}
	released := false
	cands := map[string]map[string]bool{} // workflow -> parents of settled steps
	if own {
		for _, it := range work {
			g, err := b.cachedGraph(ctx, cache, it.wf)
			if err != nil {
				return err
			}
			if g != nil {
				addParents(cands, it.wf, g, it.id)
			}
		}
	}
	for len(work) > 0 {
		it := work[0]
		work = work[1:]
		g, err := b.cachedGraph(ctx, cache, it.wf)
		if err != nil {
			return err
		}
		if g == nil {
			continue
		}
		for _, c := range g.Children(it.id) {
			state, err := b.settleStep(ctx, g, c, now)
			if err != nil {
				return err
			}
			if state != "" {
				addParents(cands, it.wf, g, c)
			}
			switch {
			case state.Final():
				work = append(work, item{c, it.wf})
			case state != "":
				released = true
			}
		}
	}
	if released {
		b.notify()
	}
	return b.unparkCands(ctx, cache, cands)
}

// settleStep releases or cancels the pending step id as its parents' records
// say; it returns its new state, or "" when it did not change.
func (b *Backend) settleStep(ctx context.Context, g *backend.Graph, id string, now time.Time) (backend.State, error) {
	st := g.Step(id)
	if st == nil {
		return "", nil
	}
	var next backend.State
	err := b.cas(ctx, "settle workflow step "+id, id, true, func(j *backend.Job) ([]any, error) {
		next = ""
		if j.State != backend.StatePending {
			return nil, errUnchanged
		}
		var results [][]byte
		waiting := false
		for _, e := range st.Parents {
			pj, err := b.Get(ctx, e.Parent)
			state := backend.StateCancelled // a purged parent counts as cancelled
			if err == nil {
				state = pj.State
			} else if !errors.Is(err, backend.ErrNotFound) {
				return nil, err
			}
			if state.Final() && state != backend.StateSucceeded && !e.IgnoreFailure {
				next = backend.StateCancelled
				why := backend.ParentFailed(e.Parent, state)
				if pj == nil {
					why = backend.ParentDeleted(e.Parent)
				}
				return endFields(next, now, why)
			}
			if !state.Final() {
				waiting = true
				continue
			}
			if !e.OrderOnly {
				var r []byte
				if pj != nil && state == backend.StateSucceeded {
					r = pj.Result
				}
				results = append(results, r)
			}
		}
		if waiting {
			return nil, errUnchanged
		}
		args, err := backend.StepInput(st.Input, j.Args, results)
		if err != nil {
			next = backend.StateQuarantined
			return endFields(next, now, err.Error())
		}
		j.Args = args
		next = backend.StateQueued
		runAt := j.RunAt
		if runAt.After(now) {
			next = backend.StateScheduled
		} else {
			runAt = now
		}
		d, err := msgpack.Marshal(static{Signature: j.Signature, Args: j.Args, Timeout: j.Timeout,
			TimeoutPolicy: j.TimeoutPolicy, StoreResult: j.StoreResult, Queue: j.Queue,
			Created: timeWord(j.CreatedAt), Meta: j.Meta})
		if err != nil {
			return nil, err
		}
		return []any{"st", string(next), "ra", timeKey(runAt), "d", string(d)}, nil
	})
	if errors.Is(err, errUnchanged) || errors.Is(err, backend.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return next, nil
}

// endFields are the record fields of a pending step that ends without
// running: its state, when, and why (in the outcome field o).
func endFields(state backend.State, now time.Time, why string) ([]any, error) {
	o, err := encodeOutcome(nil, why, nil, "")
	if err != nil {
		return nil, err
	}
	return []any{"st", string(state), "fa", timeKey(now), "o", o}, nil
}

// settleAllPending settles every pending step of every queue (see RecoverExpired).
func (b *Backend) settleAllPending(ctx context.Context, now time.Time) error {
	qs, err := b.allQueues(ctx)
	if err != nil {
		return err
	}
	for _, q := range qs {
		ms, err := b.c.ZRange(ctx, b.qp(q)+"s:"+string(backend.StatePending), 0, 9999).Result()
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			continue
		}
		ids := make([]string, 0, len(ms))
		for _, m := range ms {
			if m != "" {
				ids = append(ids, m)
			}
		}
		wfs, err := b.c.HMGet(ctx, b.wfStepKey(), ids...).Result()
		if err != nil {
			return err
		}
		cache := map[string]*backend.Graph{}
		cands := map[string]map[string]bool{}
		var ended []string
		for i, w := range wfs {
			wf, ok := w.(string)
			if !ok || wf == "" {
				continue
			}
			g, err := b.cachedGraph(ctx, cache, wf)
			if err != nil || g == nil {
				continue // repaired by a later pass, or its workflow is gone
			}
			state, err := b.settleStep(ctx, g, ids[i], now)
			if err != nil {
				return err
			}
			if state != "" {
				addParents(cands, wf, g, ids[i])
			}
			if state.Final() {
				ended = append(ended, ids[i])
			} else if state != "" {
				b.notify()
			}
		}
		if err := b.unparkCands(ctx, cache, cands); err != nil {
			return err
		}
		if err := b.settleChildren(ctx, ended, now, false); err != nil {
			return err
		}
	}
	return nil
}

// loadMany reads the records of the jobs ids (nil for one that is gone) in
// a few round trips however many they are: their queues from the location
// hash, 4,000 a command, then their records, pipelined 1,000 at a time.
func (b *Backend) loadMany(ctx context.Context, ids []string) ([]*backend.Job, error) {
	qs, err := b.queuesOfAll(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*backend.Job, len(ids))
	for start := 0; start < len(ids); start += 1000 {
		end := min(start+1000, len(ids))
		cmds := make([]*goredis.MapStringStringCmd, end-start)
		if _, err := b.pipeline(ctx, func(p goredis.Pipeliner) {
			for i := start; i < end; i++ {
				if qs[i] != "" {
					cmds[i-start] = p.HGetAll(ctx, b.qp(qs[i])+"j:"+ids[i])
				}
			}
		}); err != nil {
			return nil, err
		}
		for k, c := range cmds {
			if c == nil || len(c.Val()) == 0 {
				continue
			}
			i := start + k
			j, _, _ := decodeJob(ids[i], c.Val()) // a damaged record reads as quarantined, as Get reads it
			if j.Queue == "" {
				j.Queue = qs[i]
			}
			out[i] = j
		}
	}
	return out, nil
}

// GetWorkflow reads the graph and its steps' records.
func (b *Backend) GetWorkflow(ctx context.Context, id string) (*backend.WorkflowInfo, error) {
	if err := b.check(ctx, "get workflow "+id); err != nil {
		return nil, err
	}
	g, err := b.readGraph(ctx, id)
	if err != nil {
		return nil, wrap(ctx, "get workflow", err)
	}
	info := &backend.WorkflowInfo{ID: g.ID, Name: g.Name, CreatedAt: g.CreatedAt}
	ids := make([]string, len(g.Steps))
	for i, s := range g.Steps {
		ids[i] = s.ID
	}
	jobs, err := b.loadMany(ctx, ids)
	if err != nil {
		return nil, wrap(ctx, "get workflow "+id, err)
	}
	for i, s := range g.Steps {
		if j := jobs[i]; j != nil { // nil: deleted
			info.Steps = append(info.Steps, backend.StepInfo{Seq: i, Job: j, Parents: s.Parents, Input: s.Input})
		}
	}
	if len(info.Steps) == 0 { // deleted but for its record (wfgc.go)
		return nil, fmt.Errorf("redis: get workflow: workflow %s: %w", id, backend.ErrWorkflowNotFound)
	}
	info.Summarize()
	return info, nil
}

// ListWorkflows reads the newest workflows, leaving out those deleted but
// for their records (wfgc.go): it reads on until it has limit or none is left.
func (b *Backend) ListWorkflows(ctx context.Context, limit int) ([]backend.WorkflowSummary, error) {
	if err := b.check(ctx, "list workflows"); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	out := []backend.WorkflowSummary{}
	for hi := "+"; len(out) < limit; {
		want := limit - len(out)
		ids, err := b.c.ZRevRangeByLex(ctx, b.wfListKey(), &goredis.ZRangeBy{Min: "-", Max: hi, Count: int64(want)}).Result()
		if err != nil {
			return nil, wrap(ctx, "list workflows", err)
		}
		for _, id := range ids {
			info, err := b.GetWorkflow(ctx, id)
			if errors.Is(err, backend.ErrWorkflowNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, info.Summary())
		}
		if len(ids) < want {
			break
		}
		hi = "(" + ids[len(ids)-1]
	}
	return out, nil
}

// CancelWorkflow cancels every step that has not ended, one by one.
func (b *Backend) CancelWorkflow(ctx context.Context, id string, now time.Time) (int, error) {
	if err := b.check(ctx, "cancel workflow "+id); err != nil {
		return 0, err
	}
	g, err := b.readGraph(ctx, id)
	if err != nil {
		return 0, wrap(ctx, "cancel workflow", err)
	}
	now = backend.ClampTime(now)
	n, found := 0, false
	var ended []string
	for _, s := range g.Steps {
		err := b.cancel(ctx, s.ID, now, backend.WorkflowCancelled, backend.WorkflowCancelled)
		switch {
		case err == nil:
			n++
			found = true
			ended = append(ended, s.ID)
		case errors.Is(err, backend.ErrWrongState):
			found = true
		case errors.Is(err, backend.ErrNotFound):
		default:
			return n, err
		}
	}
	if !found { // deleted but for its record (wfgc.go)
		return 0, fmt.Errorf("redis: cancel workflow: workflow %s: %w", id, backend.ErrWorkflowNotFound)
	}
	if err := b.settleChildren(ctx, ended, now, true); err != nil {
		return n, wrap(ctx, "cancel workflow "+id, err)
	}
	return n, nil
}
