package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Retention keeps a job that a pending workflow step waits for (the
// contract of PurgeEnded and TrimEnded): settleStep reads every parent's
// record, and a parent deleted meanwhile would count as cancelled.
//
// EnqueueWorkflow marks the record of every step that has children (a
// parent) with field wp. A record carrying wp that ends is indexed in its
// queue's lex zset donewf (same members as done: finish key and id) instead
// of done: parked. Every retention path (retain, run by Complete and Prune
// for WithRetention; purgeScript's and trimCutScript's walks of done, for
// PurgeEnded and TrimEnded) reads done only, so a parked job is neither
// deleted nor counted, with no per-job checks; purgeScript's and
// trimCutIDs' paths over given ids skip records carrying wp. Plain jobs pay
// nothing: the scripts read wp only where they read the record anyway.
//
// When a step leaves state pending (settleChildren and settleAllPending
// settle it; Cancel and CancelWorkflow cancel it), each of its parents none
// of whose children is pending any more is unparked (unparkScript, on the
// parent's slot): wp goes and, if it ended, the job moves to done, where
// retention takes it like any ended job. No step becomes pending again, so
// once true that stays true: the check may be made by the client, outside
// the script. A crash between the settle and the unpark leaves the parent
// parked: PurgeEnded, TrimEnded and Prune first sweep the donewf of each
// queue they look at (one ZCARD when empty) and unpark the members no
// pending step waits for.
//
// Records stored by an older build carry no wp: their parents go to done
// and retention may delete them while a step waits, as it did then.

// parentSet returns the ids of wf's steps that have children.
func parentSet(wf *backend.Workflow) map[string]bool {
	out := map[string]bool{}
	for _, s := range wf.Steps {
		for _, e := range s.Parents {
			out[e.Parent] = true
		}
	}
	return out
}

// addParents adds the parents of step id of g to set.
func addParents(set map[string]bool, g *backend.Graph, id string) {
	if s := g.Step(id); s != nil {
		for _, e := range s.Parents {
			set[e.Parent] = true
		}
	}
}

// pendingOf returns which of ids are jobs in state pending (a missing job
// is not): their records are read in one pipeline.
func (b *Backend) pendingOf(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	qs, err := b.queuesOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	cmds := make([]*goredis.SliceCmd, len(ids))
	_, err = b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			if qs[i] != "" {
				cmds[i] = p.HMGet(ctx, b.qp(qs[i])+"j:"+id, "st")
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, c := range cmds {
		if c == nil {
			continue
		}
		if v := c.Val(); len(v) == 1 && v[0] == string(backend.StatePending) {
			out[ids[i]] = true
		}
	}
	return out, nil
}

// unparkFree unparks those of the steps cands of workflow g that no pending
// step waits for (g nil: the workflow is gone, nothing waits); with retain,
// it applies the retention options to their queues after. It returns how
// many jobs retention deleted.
func (b *Backend) unparkFree(ctx context.Context, g *backend.Graph, cands []string, retain bool) (int, error) {
	if len(cands) == 0 {
		return 0, nil
	}
	free := cands
	if g != nil {
		kids := map[string][]string{}
		for _, s := range g.Steps {
			for _, e := range s.Parents {
				if !slices.Contains(kids[e.Parent], s.ID) {
					kids[e.Parent] = append(kids[e.Parent], s.ID)
				}
			}
		}
		var read []string
		seen := map[string]bool{}
		for _, p := range cands {
			for _, c := range kids[p] {
				if !seen[c] {
					seen[c] = true
					read = append(read, c)
				}
			}
		}
		pending, err := b.pendingOf(ctx, read)
		if err != nil {
			return 0, err
		}
		free = nil
		for _, p := range cands {
			if !slices.ContainsFunc(kids[p], func(c string) bool { return pending[c] }) {
				free = append(free, p)
			}
		}
	}
	if len(free) == 0 {
		return 0, nil
	}
	qs, err := b.queuesOf(ctx, free)
	if err != nil {
		return 0, err
	}
	byQueue := map[string][]any{}
	var order []string
	for i, id := range free {
		q := qs[i]
		if q == "" {
			continue // deleted: nothing to unpark
		}
		if _, ok := byQueue[q]; !ok {
			order = append(order, q)
		}
		byQueue[q] = append(byQueue[q], id)
	}
	keep, cutoff := 0, ""
	if retain {
		keep, cutoff = b.retention()
	}
	n := 0
	for _, q := range order {
		v, err := b.run(ctx, unparkScript, b.meta(q), append([]any{b.qp(q), keep, cutoff}, byQueue[q]...)...)
		if err != nil {
			return n, fmt.Errorf("unpark workflow parents: %w", err)
		}
		if gone := strs(v); len(gone) > 0 {
			b.c.HDel(context.WithoutCancel(ctx), b.loc, gone...)
			n += len(gone)
		}
	}
	return n, nil
}

// unparkParentsOf unparks the parents of the jobs ids (those that are
// workflow steps) that no pending step waits for: Cancel's and
// CancelWorkflow's part, for steps they took out of pending.
func (b *Backend) unparkParentsOf(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	wfs, err := b.c.HMGet(ctx, b.wfStepKey(), ids...).Result()
	if err != nil {
		return err
	}
	cands := map[string]map[string]bool{}
	cache := map[string]*backend.Graph{}
	for i, w := range wfs {
		wf, ok := w.(string)
		if !ok || wf == "" {
			continue
		}
		g, err := b.cachedGraph(ctx, cache, wf)
		if err != nil {
			return err
		}
		if g == nil {
			continue
		}
		if cands[wf] == nil {
			cands[wf] = map[string]bool{}
		}
		addParents(cands[wf], g, ids[i])
	}
	return b.unparkCands(ctx, cache, cands)
}

// unparkCands runs unparkFree (with retention) for the candidate parents of
// each workflow in cands (graphs in cache).
func (b *Backend) unparkCands(ctx context.Context, cache map[string]*backend.Graph, cands map[string]map[string]bool) error {
	for wf, set := range cands {
		ids := make([]string, 0, len(set))
		for id := range set {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		if _, err := b.unparkFree(ctx, cache[wf], ids, true); err != nil {
			return err
		}
	}
	return nil
}

// sweepParked unparks, in each queue of qs, the parked jobs (donewf) that
// no pending step waits for any more: those a crash between a step's settle
// and the unpark left parked. A queue with none costs one ZCARD (pipelined).
func (b *Backend) sweepParked(ctx context.Context, qs []string) error {
	if len(qs) == 0 {
		return nil
	}
	cards := make([]*goredis.IntCmd, len(qs))
	if _, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, q := range qs {
			cards[i] = p.ZCard(ctx, b.qp(q)+"donewf")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("sweep parked workflow parents: %w", err)
	}
	for i, q := range qs {
		if cards[i].Val() == 0 {
			continue
		}
		for from := "-"; ; {
			ms, err := b.c.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: b.qp(q) + "donewf", ByLex: true,
				Start: from, Stop: "+", Count: 1000}).Result()
			if err != nil {
				return fmt.Errorf("sweep parked workflow parents: %w", err)
			}
			if err := b.sweepMembers(ctx, ms); err != nil {
				return fmt.Errorf("sweep parked workflow parents: %w", err)
			}
			if len(ms) < 1000 {
				break
			}
			from = "(" + ms[len(ms)-1]
		}
	}
	return nil
}

// sweepMembers unparks the jobs of donewf members ms that no pending step
// waits for.
func (b *Backend) sweepMembers(ctx context.Context, ms []string) error {
	if len(ms) == 0 {
		return nil
	}
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		if len(m) > 16 {
			ids = append(ids, m[16:])
		}
	}
	if len(ids) == 0 {
		return nil
	}
	wfs, err := b.c.HMGet(ctx, b.wfStepKey(), ids...).Result()
	if err != nil {
		return err
	}
	byWF := map[string][]string{}
	var orphans []string // no workflow to wait through
	for i, w := range wfs {
		if wf, ok := w.(string); ok && wf != "" {
			byWF[wf] = append(byWF[wf], ids[i])
		} else {
			orphans = append(orphans, ids[i])
		}
	}
	for wf, cands := range byWF {
		g, err := b.readGraph(ctx, wf)
		if errors.Is(err, backend.ErrWorkflowNotFound) {
			orphans = append(orphans, cands...)
			continue
		}
		if err != nil {
			return err
		}
		if _, err := b.unparkFree(ctx, g, cands, false); err != nil {
			return err
		}
	}
	_, err = b.unparkFree(ctx, nil, orphans, false)
	return err
}

// queueNames returns the queues of purgeGroups' answer, sorted.
func queueNames(groups map[string][]string) []string {
	qs := make([]string, 0, len(groups))
	for q := range groups {
		qs = append(qs, q)
	}
	slices.Sort(qs)
	return qs
}
