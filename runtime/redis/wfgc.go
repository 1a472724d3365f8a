package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Deleting workflows: the deletion rule of backend.Workflows. Besides the
// keys of workflow.go, a workflow has (outside the queues' hash tags too)
//
//	<prefix>:wfl:<id>  set: the ids of its steps whose jobs may still exist
//
// and each step's record carries field wf, the workflow's id; both are
// written by EnqueueWorkflow before the steps' jobs. A script that deletes
// jobs (del_job: Purge, PurgeEnded, TrimEnded, the completion script's and
// Prune's retention, an unpark's retention) collects the deleted records
// that carry wf (STEPS: id, workflow, ...) and returns them when there are
// any; the scripts run in one queue's slot, so the client does the rest
// (dropSteps): in one pipeline it removes the steps from wfstep and from
// their workflows' wfl sets and reads what is left of each set. A workflow
// whose set is empty (Redis deletes an empty set) had its last step's job
// deleted: collect checks that none of its steps' jobs exists and deletes
// it (dropWorkflows). A step leaves wfl only after its job is deleted, so an
// empty wfl means no step is left; collect checks anyway, as the sweep does.
// A plain job costs the scripts one more field read of its record when it
// is deleted, and its deletion no round trip.
//
// A workflow is deleted in three steps, each safe to interrupt: the wfstep
// entries of all its steps and its wfl; then its graph; then its wfs member
// (a wfs member without a graph is a workflow deleted but for its member).
// A crash between a step's deletion and its workflow's (dropSteps not run,
// or interrupted), a deletion by an older build (its scripts report no
// steps) and a workflow enqueued by an older build (no wfl, no field wf)
// leave a workflow with no step job left: GetWorkflow and CancelWorkflow
// answer backend.ErrWorkflowNotFound for it and ListWorkflows leaves it out
// (they read the steps' jobs), and the sweep deletes it. The sweep
// (sweepWorkflows) runs with the sweep of parked parents (PurgeEnded,
// TrimEnded, Prune: wfkeep.go) and looks at wfSweepChunk workflows a pass,
// from where the previous pass of this Backend stopped (from the first
// again after the last): per workflow it checks a few members of its wfl
// (one pipeline, then two round trips for their jobs); a workflow none of
// whose sampled steps exists (an empty or missing wfl included) is checked
// step by step (collect), which also drops the steps found gone from wfl.
// Each pass also settles the workflows whose EnqueueWorkflow a crash
// interrupted (repairEnqueues): until its wfs member is added, a workflow
// is reachable only through wfnew.

// wfSweepChunk is how many workflows a sweep pass looks at; wfSample is
// how many members of a workflow's wfl it checks first.
const (
	wfSweepChunk = 200
	wfSample     = 4
)

// wfSweepEvery is how often RecoverExpired, which workers call every 250 ms
// by default (WorkerOptions.RecoverEvery), also makes a pass of the workflow sweep, so that leftovers go
// without a retention call too (a store bounded only by the URL's
// keep_finished, which applies as jobs complete).
const wfSweepEvery = time.Minute

func (b *Backend) wfLiveKey(id string) string { return b.o.prefix + ":wfl:" + id }

// sweepWorkflowsEvery makes a pass of the workflow sweep (sweepWorkflows)
// when this Backend made none for wfSweepEvery (wall clock).
func (b *Backend) sweepWorkflowsEvery(ctx context.Context) error {
	b.wfSweepMu.Lock()
	due := time.Since(b.wfSweptAt) >= wfSweepEvery
	if due {
		b.wfSweptAt = time.Now()
	}
	b.wfSweepMu.Unlock()
	if !due {
		return nil
	}
	var wfs, interrupted *goredis.StringSliceCmd
	if _, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		wfs, interrupted = b.sweepReads(ctx, p)
		return nil
	}); err != nil {
		return fmt.Errorf("sweep workflows: %w", err)
	}
	_, err := b.sweepWorkflows(ctx, wfs.Val(), interrupted.Val())
	return err
}

// sweepReads queues in p the reads of a pass of the workflow sweep: the
// next chunk of wfs (from nextSweep) and up to wfSweepChunk workflows
// whose EnqueueWorkflow began more than wfNewGrace ago and never finished
// (wfnew: a crash interrupted it).
func (b *Backend) sweepReads(ctx context.Context, p goredis.Pipeliner) (wfs, interrupted *goredis.StringSliceCmd) {
	wfs = p.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: b.wfListKey(), ByLex: true,
		Start: b.nextSweep(), Stop: "+", Count: wfSweepChunk})
	cut := b.o.now().Add(-wfNewGrace).Unix()
	interrupted = p.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: b.wfNewKey(), ByScore: true,
		Start: "-inf", Stop: strconv.FormatInt(cut, 10), Count: wfSweepChunk})
	return wfs, interrupted
}

// deleted handles the reply {ids, STEPS} of a script that deleted jobs
// (retainScript, unparkScript): it drops the ids from the location hash,
// then the steps among them (dropSteps), and returns how many it deleted.
func (b *Backend) deleted(ctx context.Context, v any) (int, error) {
	parts, _ := v.([]any)
	if len(parts) != 2 {
		return 0, fmt.Errorf("unexpected reply %v", v)
	}
	gone := strs(parts[0])
	if len(gone) == 0 {
		return 0, nil
	}
	b.c.HDel(context.WithoutCancel(ctx), b.loc, gone...)
	return len(gone), b.dropSteps(ctx, strs(parts[1]))
}

// dropSteps deletes what the workflows store of the deleted jobs in steps
// (id, workflow, ... as the scripts return STEPS), and the workflows none
// of whose steps' jobs is left. No steps: nothing, no round trip.
func (b *Backend) dropSteps(ctx context.Context, steps []string) error {
	if len(steps) < 2 {
		return nil
	}
	ids := make([]string, 0, len(steps)/2)
	by := map[string][]any{}
	var wfs []string
	for i := 0; i+1 < len(steps); i += 2 {
		id, wf := steps[i], steps[i+1]
		ids = append(ids, id)
		if _, ok := by[wf]; !ok {
			wfs = append(wfs, wf)
		}
		by[wf] = append(by[wf], id)
	}
	cards := make([]*goredis.IntCmd, len(wfs))
	if _, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.HDel(ctx, b.wfStepKey(), ids...)
		for i, wf := range wfs {
			p.SRem(ctx, b.wfLiveKey(wf), by[wf]...)
			cards[i] = p.SCard(ctx, b.wfLiveKey(wf))
		}
		return nil
	}); err != nil {
		return fmt.Errorf("drop deleted workflow steps: %w", err)
	}
	var empty []string
	for i, wf := range wfs {
		if cards[i].Val() == 0 {
			empty = append(empty, wf)
		}
	}
	if _, err := b.collect(ctx, empty); err != nil {
		return fmt.Errorf("drop deleted workflow steps: %w", err)
	}
	return nil
}

// collect deletes those of the workflows wfs none of whose steps' jobs
// exists (one whose graph is gone: what is left of it) and returns how many.
// From the others' wfl it drops the steps found gone. A workflow whose graph
// cannot be read is left alone.
func (b *Backend) collect(ctx context.Context, wfs []string) (int, error) {
	if len(wfs) == 0 {
		return 0, nil
	}
	graphs, err := b.graphsOf(ctx, wfs)
	if err != nil {
		return 0, err
	}
	left, err := b.stepsLeft(ctx, stepIDs(graphs))
	if err != nil {
		return 0, err
	}
	var dead []string
	gone := map[string][]any{} // live workflow -> its steps found gone
	for _, wf := range wfs {
		g, ok := graphs[wf]
		switch {
		case !ok || slices.Contains(dead, wf):
		case g == nil:
			dead = append(dead, wf)
		case !slices.ContainsFunc(g.Steps, func(s backend.GraphStep) bool { return left[s.ID] }):
			dead = append(dead, wf)
		default:
			for _, s := range g.Steps {
				if !left[s.ID] {
					gone[wf] = append(gone[wf], s.ID)
				}
			}
		}
	}
	if err := b.dropGone(ctx, gone); err != nil {
		return 0, err
	}
	return len(dead), b.dropWorkflows(ctx, dead, graphs)
}

// dropGone removes from the wfl sets of live workflows (workflow -> steps)
// the steps whose jobs were found gone, and their wfstep entries: what a
// crash after their deletion (or an older build's deletion) left.
func (b *Backend) dropGone(ctx context.Context, gone map[string][]any) error {
	if len(gone) == 0 {
		return nil
	}
	_, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for wf, ss := range gone {
			p.HDel(ctx, b.wfStepKey(), strs(ss)...)
			p.SRem(ctx, b.wfLiveKey(wf), ss...)
		}
		return nil
	})
	return err
}

// dropWorkflows deletes the workflows wfs (their graphs in graphs; nil:
// gone already), in three rounds so that an interrupted deletion leaves
// what the sweep finds: the wfstep entries of their steps and their wfl
// sets, then their graphs, then their wfs members.
func (b *Backend) dropWorkflows(ctx context.Context, wfs []string, graphs map[string]*backend.Graph) error {
	if len(wfs) == 0 {
		return nil
	}
	var ids []string
	for _, wf := range wfs {
		if g := graphs[wf]; g != nil {
			for _, s := range g.Steps {
				ids = append(ids, s.ID)
			}
		}
	}
	if _, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for c := range slices.Chunk(ids, 1000) {
			p.HDel(ctx, b.wfStepKey(), c...)
		}
		for _, wf := range wfs {
			p.Del(ctx, b.wfLiveKey(wf))
		}
		return nil
	}); err != nil {
		return fmt.Errorf("delete workflows: %w", err)
	}
	if _, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, wf := range wfs {
			p.Del(ctx, b.wfKey(wf)) // one key a command: on a Cluster they are in different slots
		}
		return nil
	}); err != nil {
		return fmt.Errorf("delete workflows: %w", err)
	}
	if err := b.c.ZRem(ctx, b.wfListKey(), toAny(wfs)...).Err(); err != nil {
		return fmt.Errorf("delete workflows: %w", err)
	}
	return nil
}

// stepIDs returns the step ids of every graph of graphs (nil: none).
func stepIDs(graphs map[string]*backend.Graph) []string {
	var ids []string
	for _, g := range graphs {
		if g != nil {
			for _, s := range g.Steps {
				ids = append(ids, s.ID)
			}
		}
	}
	return ids
}

// stepsLeft returns which of the jobs ids exist: their queues from the
// location hash, then their records' keys (EXISTS, one pipeline).
func (b *Backend) stepsLeft(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	qs, err := b.queuesOfAll(ctx, ids)
	if err != nil {
		return nil, err
	}
	cmds := make([]*goredis.IntCmd, len(ids))
	if _, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			if qs[i] != "" {
				cmds[i] = p.Exists(ctx, b.qp(qs[i])+"j:"+id)
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for i, c := range cmds {
		if c != nil && c.Val() == 1 {
			out[ids[i]] = true
		}
	}
	return out, nil
}

// nextSweep returns where this Backend's next sweep of the workflows starts
// (a ZRANGEBYLEX min of wfs).
func (b *Backend) nextSweep() string {
	b.wfSweepMu.Lock()
	defer b.wfSweepMu.Unlock()
	if b.wfSweepFrom == "" {
		return "-"
	}
	return "(" + b.wfSweepFrom
}

// sweepWorkflows settles the interrupted enqueues (repairEnqueues), deletes the
// workflows among ms (a chunk of wfs read from nextSweep, up to
// wfSweepChunk) none of whose steps' jobs is left, and moves the sweep on.
// It returns how many it deleted.
func (b *Backend) sweepWorkflows(ctx context.Context, ms, interrupted []string) (int, error) {
	_, repaired, err := b.repairEnqueues(ctx, interrupted)
	if err != nil {
		return 0, fmt.Errorf("sweep workflows: repair interrupted enqueues: %w", err)
	}
	b.wfSweepMu.Lock()
	b.wfSweepFrom = ""
	if len(ms) >= wfSweepChunk {
		b.wfSweepFrom = ms[len(ms)-1]
	}
	b.wfSweepMu.Unlock()
	if len(ms) == 0 {
		return repaired, nil
	}
	samples := make([]*goredis.StringSliceCmd, len(ms))
	if _, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, wf := range ms {
			samples[i] = p.SRandMemberN(ctx, b.wfLiveKey(wf), wfSample)
		}
		return nil
	}); err != nil && !errors.Is(err, goredis.Nil) {
		return 0, fmt.Errorf("sweep workflows: %w", err)
	}
	var ids []string
	for _, c := range samples {
		ids = append(ids, c.Val()...)
	}
	left, err := b.stepsLeft(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("sweep workflows: %w", err)
	}
	var check []string
	gone := map[string][]any{} // live workflow -> its sampled steps found gone
	for i, wf := range ms {
		if !slices.ContainsFunc(samples[i].Val(), func(id string) bool { return left[id] }) {
			check = append(check, wf)
			continue
		}
		for _, id := range samples[i].Val() {
			if !left[id] {
				gone[wf] = append(gone[wf], id)
			}
		}
	}
	if err := b.dropGone(ctx, gone); err != nil {
		return 0, fmt.Errorf("sweep workflows: %w", err)
	}
	n, err := b.collect(ctx, check)
	if err != nil {
		return n + repaired, fmt.Errorf("sweep workflows: %w", err)
	}
	return n + repaired, nil
}

// wfNewGrace is how long an EnqueueWorkflow may take before repairEnqueues
// takes its wfnew member for one a crash interrupted.
const wfNewGrace = 10 * time.Minute

// repairEnqueues settles the workflows ms whose EnqueueWorkflow began more
// than wfNewGrace ago and never finished (sweepReads: a crash): one with a
// step's job stored gets its wfs member (the steps' jobs are stored by one
// script on a standalone Redis; on a Cluster the steps whose jobs are
// missing count as deleted); what is left of the others (graph, wfstep
// entries, wfl) is deleted. It returns how many it listed and deleted.
func (b *Backend) repairEnqueues(ctx context.Context, ms []string) (listed, deleted int, err error) {
	if len(ms) == 0 {
		return 0, 0, nil
	}
	graphs, err := b.graphsOf(ctx, ms)
	if err != nil {
		return 0, 0, err
	}
	left, err := b.stepsLeft(ctx, stepIDs(graphs))
	if err != nil {
		return 0, 0, err
	}
	var list, dead []string
	for _, wf := range ms {
		g, ok := graphs[wf]
		switch {
		case !ok: // a graph that cannot be read: left alone, as the sweep leaves it
		case g != nil && slices.ContainsFunc(g.Steps, func(s backend.GraphStep) bool { return left[s.ID] }):
			list = append(list, wf)
		default:
			dead = append(dead, wf)
		}
	}
	if len(list) > 0 {
		z := make([]goredis.Z, len(list))
		for i, wf := range list {
			z[i] = goredis.Z{Member: wf}
		}
		if err := b.c.ZAdd(ctx, b.wfListKey(), z...).Err(); err != nil {
			return 0, 0, err
		}
	}
	if err := b.dropWorkflows(ctx, dead, graphs); err != nil {
		return len(list), 0, err
	}
	if err := b.c.ZRem(ctx, b.wfNewKey(), toAny(ms)...).Err(); err != nil {
		return len(list), len(dead), err
	}
	return len(list), len(dead), nil
}
