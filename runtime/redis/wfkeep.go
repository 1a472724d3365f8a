package redis

import (
	"context"
	"errors"
	"fmt"
	"maps"
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
// settle it; Cancel and CancelWorkflow cancel it; Purge deletes it), each
// of its parents none of whose children is pending any more is unparked
// (unparkScript, on the parent's slot): wp goes and, if it ended, the job
// moves to done, where retention takes it like any ended job. No step
// becomes pending again, so once true that stays true: the check may be
// made by the client, outside the script. A crash between the settle and
// the unpark leaves the parent parked: PurgeEnded, TrimEnded and Prune
// first sweep the donewf of each queue they look at (one ZCARD when empty;
// else a few round trips per 1,000 parked jobs, whatever their workflows)
// and unpark the members no pending step waits for. A parked job whose
// workflow graph cannot be read stays parked: no step of that workflow can
// be settled either (settleAllPending skips it too).
//
// Records stored by an older build carry no wp: their parents go to done
// and retention may delete them while a step waits, as it did then.

// sweepChunk is how many parked jobs the sweep reads at a time.
const sweepChunk = 1000

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

// addParents adds the parents of step id of g, in workflow wf, to cands
// (workflow -> candidate parents).
func addParents(cands map[string]map[string]bool, wf string, g *backend.Graph, id string) {
	s := g.Step(id)
	if s == nil || len(s.Parents) == 0 {
		return
	}
	if cands[wf] == nil {
		cands[wf] = map[string]bool{}
	}
	for _, e := range s.Parents {
		cands[wf][e.Parent] = true
	}
}

// graphsOf reads the graphs of the workflows wfs in one pipeline. A
// workflow that is gone maps to nil; one whose graph cannot be read
// (undecodable, or a key of another type) is left out.
func (b *Backend) graphsOf(ctx context.Context, wfs []string) (map[string]*backend.Graph, error) {
	out := make(map[string]*backend.Graph, len(wfs))
	if len(wfs) == 0 {
		return out, nil
	}
	cmds := make([]*goredis.StringCmd, len(wfs))
	// Per-command errors are read below: a missing key fails its command
	// (goredis.Nil), and so the pipeline, without failing the others.
	_, _ = b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, wf := range wfs {
			cmds[i] = p.Get(ctx, b.wfKey(wf))
		}
		return nil
	})
	for i, wf := range wfs {
		data, err := cmds[i].Bytes()
		switch {
		case errors.Is(err, goredis.Nil):
			out[wf] = nil
			continue
		case goredis.HasErrorPrefix(err, "WRONGTYPE"):
			continue
		case err != nil:
			return nil, fmt.Errorf("workflow %s: %w", wf, err)
		}
		if g, err := decodeGraph(wf, data); err == nil {
			out[wf] = g
		}
	}
	return out, nil
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

// freeOf returns those of the candidate parents cands (workflow -> ids)
// that no pending step waits for, the graphs of their workflows in graphs
// (nil: the workflow is gone, nothing waits; missing: unreadable, its
// candidates are not free). The states of all their children are read at
// once (pendingOf).
func (b *Backend) freeOf(ctx context.Context, graphs map[string]*backend.Graph, cands map[string][]string) ([]string, error) {
	kids := map[string]map[string][]string{} // workflow -> parent -> children
	var read []string
	seen := map[string]bool{}
	for wf, ids := range cands {
		g := graphs[wf]
		if g == nil {
			continue
		}
		k := map[string][]string{}
		for _, s := range g.Steps {
			for _, e := range s.Parents {
				if !slices.Contains(k[e.Parent], s.ID) {
					k[e.Parent] = append(k[e.Parent], s.ID)
				}
			}
		}
		kids[wf] = k
		for _, p := range ids {
			for _, c := range k[p] {
				if !seen[c] {
					seen[c] = true
					read = append(read, c)
				}
			}
		}
	}
	pending, err := b.pendingOf(ctx, read)
	if err != nil {
		return nil, err
	}
	var free []string
	for wf, ids := range cands {
		g, ok := graphs[wf]
		if !ok {
			continue
		}
		for _, p := range ids {
			if g == nil || !slices.ContainsFunc(kids[wf][p], func(c string) bool { return pending[c] }) {
				free = append(free, p)
			}
		}
	}
	return free, nil
}

// unparkIn unparks the jobs ids of queue q (unparkScript, sweepChunk ids a
// call); with retain, it applies the retention options to q after. It
// returns how many jobs retention deleted.
func (b *Backend) unparkIn(ctx context.Context, q string, ids []string, retain bool) (int, error) {
	keep, cutoff := 0, ""
	if retain {
		keep, cutoff = b.retention()
	}
	n := 0
	for chunk := range slices.Chunk(ids, sweepChunk) {
		a := make([]any, 0, 3+len(chunk))
		a = append(a, b.qp(q), keep, cutoff)
		a = append(a, toAny(chunk)...)
		v, err := b.run(ctx, unparkScript, b.meta(q), a...)
		if err != nil {
			return n, fmt.Errorf("unpark workflow parents: %w", err)
		}
		k, err := b.deleted(ctx, v)
		n += k
		if err != nil {
			return n, fmt.Errorf("unpark workflow parents: %w", err)
		}
	}
	return n, nil
}

// unparkCands unparks the candidate parents cands (workflow -> ids; their
// graphs in cache, nil or missing: the workflow is gone) that no pending
// step waits for, then applies the retention options to their queues.
func (b *Backend) unparkCands(ctx context.Context, cache map[string]*backend.Graph, cands map[string]map[string]bool) error {
	if len(cands) == 0 {
		return nil
	}
	graphs := make(map[string]*backend.Graph, len(cands))
	lists := make(map[string][]string, len(cands))
	for wf, set := range cands {
		graphs[wf] = cache[wf]
		for id := range set {
			lists[wf] = append(lists[wf], id)
		}
		slices.Sort(lists[wf])
	}
	free, err := b.freeOf(ctx, graphs, lists)
	if err != nil || len(free) == 0 {
		return err
	}
	qs, err := b.queuesOf(ctx, free)
	if err != nil {
		return err
	}
	byQueue := map[string][]string{}
	for i, id := range free {
		if qs[i] != "" { // deleted: nothing to unpark
			byQueue[qs[i]] = append(byQueue[qs[i]], id)
		}
	}
	for _, q := range slices.Sorted(maps.Keys(byQueue)) {
		if _, err := b.unparkIn(ctx, q, byQueue[q], true); err != nil {
			return err
		}
	}
	return nil
}

// unparkParentsOf unparks the parents of the jobs ids (those that are
// workflow steps) that no pending step waits for: Purge's part, for the
// pending steps it deleted. A workflow whose graph cannot be read is
// skipped, as by the sweep.
func (b *Backend) unparkParentsOf(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	wfs, err := b.c.HMGet(ctx, b.wfStepKey(), ids...).Result()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var names []string
	for _, w := range wfs {
		if wf, ok := w.(string); ok && wf != "" && !seen[wf] {
			seen[wf] = true
			names = append(names, wf)
		}
	}
	graphs, err := b.graphsOf(ctx, names)
	if err != nil {
		return err
	}
	cands := map[string]map[string]bool{}
	for i, w := range wfs {
		wf, _ := w.(string)
		if g := graphs[wf]; g != nil {
			addParents(cands, wf, g, ids[i])
		}
	}
	return b.unparkCands(ctx, graphs, cands)
}

// sweepParked unparks, in each queue of qs, the parked jobs (donewf) that
// no pending step waits for any more: those a crash between a step's settle
// and the unpark left parked. A queue with none costs one ZCARD (pipelined).
// In the same pipeline it reads what the workflow sweep needs
// (sweepReads, wfgc.go), which it makes last: with no workflow, no round
// trip more.
func (b *Backend) sweepParked(ctx context.Context, qs []string) error {
	if len(qs) == 0 {
		return nil
	}
	cards := make([]*goredis.IntCmd, len(qs))
	var wfs, interrupted *goredis.StringSliceCmd
	if _, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, q := range qs {
			cards[i] = p.ZCard(ctx, b.qp(q)+"donewf")
		}
		wfs, interrupted = b.sweepReads(ctx, p)
		return nil
	}); err != nil {
		return fmt.Errorf("sweep parked workflow parents: %w", err)
	}
	if err := b.sweepParkedIn(ctx, qs, cards); err != nil {
		return err
	}
	_, err := b.sweepWorkflows(ctx, wfs.Val(), interrupted.Val())
	return err
}

// sweepParkedIn is sweepParked's part for the queues qs whose donewf
// cardinalities are cards.
func (b *Backend) sweepParkedIn(ctx context.Context, qs []string, cards []*goredis.IntCmd) error {
	for i, q := range qs {
		if cards[i].Val() == 0 {
			continue
		}
		for from := "-"; ; {
			ms, err := b.c.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: b.qp(q) + "donewf", ByLex: true,
				Start: from, Stop: "+", Count: sweepChunk}).Result()
			if err != nil {
				return fmt.Errorf("sweep parked workflow parents: %w", err)
			}
			if err := b.sweepMembers(ctx, q, ms); err != nil {
				return fmt.Errorf("sweep parked workflow parents: %w", err)
			}
			if len(ms) < sweepChunk {
				break
			}
			from = "(" + ms[len(ms)-1]
		}
	}
	return nil
}

// sweepMembers unparks the jobs of queue q's donewf members ms that no
// pending step waits for, in a few round trips whatever their workflows:
// one HMGET of wfstep, one pipeline of their graphs, two of their
// children's states (pendingOf), one script.
func (b *Backend) sweepMembers(ctx context.Context, q string, ms []string) error {
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
	cands := map[string][]string{}
	var names, free []string
	for i, w := range wfs {
		wf, ok := w.(string)
		if !ok || wf == "" {
			free = append(free, ids[i]) // no workflow to wait through
			continue
		}
		if _, ok := cands[wf]; !ok {
			names = append(names, wf)
		}
		cands[wf] = append(cands[wf], ids[i])
	}
	graphs, err := b.graphsOf(ctx, names)
	if err != nil {
		return err
	}
	more, err := b.freeOf(ctx, graphs, cands)
	if err != nil {
		return err
	}
	free = append(free, more...)
	if len(free) == 0 {
		return nil
	}
	_, err = b.unparkIn(ctx, q, free, false)
	return err
}
