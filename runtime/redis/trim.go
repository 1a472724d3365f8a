package redis

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/runtime/backend"
)

// trimAll is the purge cutoff that selects every ended job (see purgeScript).
const trimAll = "+"

// TrimEnded deletes, queue by queue, the ended jobs matching f but the
// newest keep of them (backend.NewerEnded: a queue's done index is in that
// order, reversed). Per queue it finds the cut, the member of the keep-th
// newest matching job (without f.States or f.IDs one command; with f.States
// by walking the index newest first, 1000 members a call; with f.IDs from
// their records), then deletes the matching jobs below it with purgeScript,
// which checks inside the script, as it deletes, that each job is still
// ended and below the cut (a job retried meanwhile stays). A queue whose
// index holds at most keep jobs costs one ZCARD. A workflow parent that a
// pending step waits for is parked out of the index and skipped among f.IDs
// (wfkeep.go): first each queue's parked jobs that no step waits for any
// more are unparked. On an error it returns how many it deleted before.
func (b *Backend) TrimEnded(ctx context.Context, keep int, f backend.PurgeFilter) (int, error) {
	const op = "trim ended"
	if keep < 0 {
		return 0, wrap(ctx, op, backend.ErrNegativeKeep)
	}
	if err := b.check(ctx, op); err != nil {
		return 0, err
	}
	states, ok := endedStates(f.States)
	if !ok {
		return 0, nil
	}
	groups, err := b.purgeGroups(ctx, f)
	if err != nil {
		return 0, wrap(ctx, op, err)
	}
	if err := b.sweepParked(ctx, slices.Sorted(maps.Keys(groups))); err != nil {
		return 0, wrap(ctx, op, err)
	}
	n := 0
	for q, ids := range groups {
		var cut string
		if ids != nil {
			cut, ids, err = b.trimCutIDs(ctx, q, keep, states, ids)
		} else {
			cut, err = b.trimCut(ctx, q, keep, states)
		}
		if err != nil {
			return n, wrap(ctx, op, err)
		}
		if cut == "" {
			continue
		}
		k, err := b.purgeQueue(ctx, q, cut, states, ids)
		n += k
		if err != nil {
			return n, wrap(ctx, op, err)
		}
	}
	return n, nil
}

// endedStates returns the final states of states as script arguments (nil:
// any final state, also when states names all four), and false when states
// names only states that are not final: TrimEnded then matches nothing.
func endedStates(states []backend.State) ([]any, bool) {
	var out []any
	for _, s := range states {
		if s.Final() && !slices.Contains(out, any(string(s))) {
			out = append(out, string(s))
		}
	}
	switch {
	case len(states) == 0 || len(out) == 4:
		return nil, true
	case len(out) == 0:
		return nil, false
	}
	return out, true
}

// trimCut returns queue q's cut for keep: the done member of its keep-th
// newest ended job in one of states (nil: any), "+" for keep 0 (every ended
// job), or "" when no more than keep match.
func (b *Backend) trimCut(ctx context.Context, q string, keep int, states []any) (string, error) {
	if keep == 0 {
		return trimAll, nil
	}
	seen := int64(0)
	for from := ""; ; {
		a := append([]any{b.qp(q), keep, from, seen, len(states)}, states...)
		v, err := b.run(ctx, trimCutScript, b.meta(q), a...)
		if err != nil {
			return "", err
		}
		out, _ := v.([]any)
		if len(out) != 3 {
			return "", fmt.Errorf("trim cut script returned %v", v)
		}
		cut, _ := out[0].(string)
		from, _ = out[1].(string)
		seen, _ = out[2].(int64)
		if cut != "" || from == "" {
			return cut, nil
		}
	}
}

// trimCutIDs is trimCut among ids, the jobs of f.IDs on queue q: it reads
// their records and returns the cut (the finish key and id of the keep-th
// newest matching one) and the matching ids beyond it, those to delete.
func (b *Backend) trimCutIDs(ctx context.Context, q string, keep int, states []any, ids []string) (string, []string, error) {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	cmds, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, id := range ids {
			p.HMGet(ctx, b.qp(q)+"j:"+id, "st", "fa", "wp")
		}
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	type ended struct{ fa, id string }
	var match []ended
	for i, c := range cmds {
		v := c.(*goredis.SliceCmd).Val()
		st, _ := v[0].(string)
		fa, _ := v[1].(string)
		if wp, _ := v[2].(string); wp != "" {
			continue // a pending workflow step waits for it: neither deleted nor counted
		}
		if backend.State(st).Final() && (states == nil || slices.Contains(states, any(st))) {
			match = append(match, ended{fa, ids[i]})
		}
	}
	if len(match) <= keep {
		return "", nil, nil
	}
	// Newest first: by finish key (none is the oldest), then by id.
	slices.SortFunc(match, func(x, y ended) int { return cmp.Or(strings.Compare(y.fa, x.fa), strings.Compare(y.id, x.id)) })
	cut := trimAll
	if keep > 0 {
		cut = match[keep-1].fa + match[keep-1].id
	}
	gone := make([]string, 0, len(match)-keep)
	for _, e := range match[keep:] {
		gone = append(gone, e.id)
	}
	return cut, gone, nil
}
