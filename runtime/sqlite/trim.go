package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/nuvom/nuvom/runtime/backend"
)

// TrimEnded deletes, queue by queue, the ended jobs matching f but the
// newest keep (backend.NewerEnded's order) and returns how many: retention
// by count. The counters name the queues holding more than keep ended jobs
// (a few rows read, however many jobs are stored); the others are left
// alone. In each of those, the newest job beyond the keep (the cut) is found
// on the read pool, and the matching ended jobs at or below it are deleted
// by deleteWhere, batch by batch, each delete checking the whole condition
// again: a job retried meanwhile is no longer ended and stays. A trim that
// fails or is cancelled part-way returns what it deleted with its error.
func (b *Backend) TrimEnded(ctx context.Context, keep int, f backend.PurgeFilter) (int, error) {
	const op = "trim ended"
	if keep < 0 {
		return 0, b.wrap(op, backend.ErrNegativeKeep)
	}
	f, ok := endedFilter(f)
	if !ok {
		return 0, nil // f names only states that have not ended
	}
	queues, err := b.queuesBeyond(ctx, keep, f)
	if err != nil {
		return 0, b.wrapCtx(ctx, op, err)
	}
	if len(queues) == 0 {
		return 0, nil
	}
	if keep == 0 {
		// Every matching ended job goes: one pass over the jobs for all
		// the queues.
		cond, args, err := filterCond(sqlRetainable, f)
		if err != nil {
			return 0, b.wrap(op, err)
		}
		return b.deleteWhere(ctx, op, cond, args)
	}
	total := 0
	for _, q := range queues {
		f.Queue = q
		cond, args, err := filterCond(sqlRetainable, f)
		if err != nil {
			return total, b.wrap(op, err)
		}
		cut, ok, err := b.trimCut(ctx, cond, args, keep)
		if err != nil {
			return total, b.wrapCtx(ctx, op, fmt.Errorf("queue %s: %w", q, err))
		}
		if !ok {
			continue // no more than keep: f.IDs narrowed the count, or jobs left meanwhile
		}
		n, err := b.deleteWhere(ctx, op, cond+` AND (`+sqlEndedKey()+`, id) <= (?, ?)`, append(args, cut...))
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// endedFilter returns f with its States limited to the final ones (none:
// every final state), and false when f names states but none of them is
// final: then nothing matches.
func endedFilter(f backend.PurgeFilter) (backend.PurgeFilter, bool) {
	if len(f.States) == 0 {
		return f, true
	}
	var final []backend.State
	for _, s := range f.States {
		if s.Final() && !slices.Contains(final, s) {
			final = append(final, s)
		}
	}
	f.States = final
	return f, len(final) > 0
}

// queuesBeyond returns, from the counters, the queues (only f.Queue when
// set) holding more than keep ended jobs in f.States, in order: those a trim may delete from. With f.IDs the counts
// bound the matching jobs from above, so a queue skipped has nothing to trim.
func (b *Backend) queuesBeyond(ctx context.Context, keep int, f backend.PurgeFilter) ([]string, error) {
	cond, args, err := filterCond(sqlEnded, backend.PurgeFilter{Queue: f.Queue, States: f.States})
	if err != nil {
		return nil, err
	}
	return queryColumn[string](ctx, b.read, "count ended jobs",
		`SELECT queue FROM nuvom_counts WHERE `+cond+` GROUP BY queue HAVING sum(n) > ? ORDER BY queue`, append(args, keep))
}

// sqlEndedKey orders ended jobs as backend.NewerEnded does with id after
// it: by the finish time clamped to the stored range (as Get reads it), a job
// without one (0) below every other.
func sqlEndedKey() string {
	return fmt.Sprintf(`CASE WHEN finished_at = 0 THEN %d ELSE min(max(finished_at, %d), %d) END`,
		int64(math.MinInt64), backend.MinTime().UnixNano(), backend.MaxTime().UnixNano())
}

// trimCut finds, on the read pool, the newest of the jobs matching cond
// (with args) beyond the newest keep, and returns its sqlEndedKey and id:
// the trim deletes it and those below it. false means there is none.
func (b *Backend) trimCut(ctx context.Context, cond string, args []any, keep int) ([]any, bool, error) {
	var key, id any
	err := b.read.QueryRowContext(ctx, `SELECT `+sqlEndedKey()+`, id FROM jobs WHERE `+cond+`
		ORDER BY 1 DESC, 2 DESC LIMIT 1 OFFSET ?`, append(args, keep)...).Scan(&key, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("find the newest job beyond %d: %w", keep, err)
	}
	return []any{key, id}, true, nil
}
