package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Get returns a job's full record, or backend.ErrNotFound (wrapped).
func (b *Backend) Get(ctx context.Context, id string) (*backend.Job, error) {
	j, err := scanVisible(b.read.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, b.wrap("get job "+id, backend.ErrNotFound)
	}
	if err != nil {
		return nil, b.wrap("get job "+id, err)
	}
	return j, nil
}

// List returns jobs matching f, newest (highest id) first.
func (b *Backend) List(ctx context.Context, f backend.ListFilter) ([]*backend.Job, error) {
	q, args := listQuery(f)
	rows, err := b.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, b.wrap("list jobs", err)
	}
	defer rows.Close()
	jobs := []*backend.Job{}
	for rows.Next() {
		j, err := scanVisible(rows)
		if err != nil {
			return nil, b.wrap("list jobs", err)
		}
		if len(f.States) > 0 && !slices.Contains(f.States, j.State) {
			continue // a damaged row shown as quarantined
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, b.wrap("list jobs", err)
	}
	return jobs, nil
}

// listQuery is List's statement and arguments. A list of the running jobs
// (a worker lists them at the end of every burst) reads the few entries of
// the lease index and sorts them: left to itself, SQLite walks the id index
// and reads every stored job, which took most of a second under a million.
func listQuery(f backend.ListFilter) (string, []any) {
	var where []string
	var args []any
	from := "jobs"
	if len(f.States) == 1 && f.States[0] == backend.StateRunning {
		from = "jobs INDEXED BY jobs_lease"
		where = append(where, "state = 'running'")
	} else if len(f.States) > 0 {
		where = append(where, "state IN ("+placeholders(len(f.States))+")")
		for _, s := range f.States {
			args = append(args, string(s))
		}
	}
	if f.Task != "" {
		where = append(where, "task = ?")
		args = append(args, f.Task)
	}
	if f.Queue != "" {
		where = append(where, "queue = ?")
		args = append(args, f.Queue)
	}
	if !f.Since.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, nanos(f.Since))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT ` + jobColumns + ` FROM ` + from
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	return q, append(args, limit)
}

// scanVisible reads a row for Get and List. A row whose stored contents
// cannot be decoded is returned as far as it could be read, as quarantined:
// with its stored error when Claim already quarantined it, else with an
// error saying what cannot be read. One damaged row stays inspectable and
// does not break every listing.
func scanVisible(s rowScanner) (*backend.Job, error) {
	j, err := scanJob(s)
	var ce *corruptError
	if errors.As(err, &ce) && j != nil {
		if j.State != backend.StateQuarantined || j.Error == "" {
			j.State = backend.StateQuarantined
			j.Error = ce.Error()
		}
		return j, nil
	}
	return j, err
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// stateOf reads a job's state inside tx to explain why an update matched nothing.
func stateOf(ctx context.Context, tx *sql.Tx, id string) (backend.State, error) {
	var s string
	err := tx.QueryRowContext(ctx, `SELECT state FROM jobs WHERE id = ?`, id).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return "", backend.ErrNotFound
	}
	return backend.State(s), err
}

// transition runs update (which names the job as its last parameter and
// moves it to state to) in one transaction and explains a miss as
// ErrNotFound or ErrWrongState.
func (b *Backend) transition(ctx context.Context, op, id string, to backend.State, update string, args ...any) error {
	b.countStmts() // prepared before the transaction (counts.go)
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return b.wrap(op+" job "+id+": begin", err)
	}
	defer tx.Rollback()
	was, _, err := jobCountKey(ctx, tx, id)
	if err != nil {
		return b.wrap(op+" job "+id, err)
	}
	res, err := tx.ExecContext(ctx, update, append(args, id)...)
	if err != nil {
		return b.wrap(op+" job "+id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return b.wrap(op+" job "+id, err)
	}
	if n == 0 {
		s, err := stateOf(ctx, tx, id)
		if err != nil {
			return b.wrap(op+" job "+id, err)
		}
		return b.wrap(op+" job "+id, fmt.Errorf("%w: it is %s", backend.ErrWrongState, s))
	}
	cd := counts{}
	cd.move(was.queue, was.state, to, n)
	if err := b.addCounts(ctx, tx, cd); err != nil {
		return b.wrap(op+" job "+id, err)
	}
	if err := tx.Commit(); err != nil {
		return b.wrap(op+" job "+id+": commit", err)
	}
	return nil
}

// Cancel moves a scheduled, queued, retrying or running job to cancelled; a
// running job's lease ends and its attempt is recorded as cancelled.
func (b *Backend) Cancel(ctx context.Context, id string, now time.Time) error {
	b.countStmts() // prepared before the transaction (counts.go)
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return b.wrap("cancel job "+id+": begin", err)
	}
	defer tx.Rollback()
	was, _, err := jobCountKey(ctx, tx, id)
	if err != nil {
		return b.wrap("cancel job "+id, err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'cancelled', finished_at = ?
		WHERE id = ? AND state IN ('pending', 'scheduled', 'queued', 'retrying')`, nanos(now), id)
	if err != nil {
		return b.wrap("cancel job "+id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return b.wrap("cancel job "+id, err)
	} else if n == 0 {
		var state, owner string
		var token, started int64
		var attempt int
		err := tx.QueryRowContext(ctx, `SELECT state, lease_owner, lease_token, attempt, started_at FROM jobs WHERE id = ?`, id).
			Scan(&state, &owner, &token, &attempt, &started)
		if errors.Is(err, sql.ErrNoRows) {
			return b.wrap("cancel job "+id, backend.ErrNotFound)
		}
		if err != nil {
			return b.wrap("cancel job "+id, err)
		}
		if state != string(backend.StateRunning) {
			return b.wrap("cancel job "+id, fmt.Errorf("%w: it is %s", backend.ErrWrongState, state))
		}
		const msg = "cancelled while running"
		rec := appendAttempt(nil, backend.Attempt{Number: attempt, StartedAt: fromNanos(started),
			FinishedAt: now, Worker: owner, Outcome: backend.OutcomeCancelled, Error: msg})
		if _, err := tx.StmtContext(ctx, b.stmts.complete).ExecContext(ctx, string(backend.StateCancelled), 0, nanos(now),
			nil, msg, nil, "", rec, id, token, 0); err != nil {
			return b.wrap("cancel running job "+id, err)
		}
		defer b.notify.signal() // after the commit: the worker running it looks at its leases
	}
	cd := counts{}
	cd.move(was.queue, was.state, backend.StateCancelled, 1)
	if released, err := b.settle(ctx, tx, []ended{{id, backend.StateCancelled, nanos(now)}}, cd); err != nil {
		return b.wrap("cancel job "+id, err)
	} else if released {
		defer b.notify.signal()
	}
	if err := b.addCounts(ctx, tx, cd); err != nil {
		return b.wrap("cancel job "+id, err)
	}
	if err := tx.Commit(); err != nil {
		return b.wrap("cancel job "+id+": commit", err)
	}
	return nil
}

// Retry makes a failed, cancelled or quarantined job queued again at now,
// raising its attempt limit by one if it is exhausted; history is kept.
func (b *Backend) Retry(ctx context.Context, id string, now time.Time) error {
	err := b.transition(ctx, "retry", id, backend.StateQueued, `UPDATE jobs SET state = 'queued', run_at = ?, finished_at = 0,
			max_attempts = max(max_attempts, attempt + 1), lease_owner = '', lease_until = 0
		WHERE id = ? AND state IN ('failed', 'cancelled', 'quarantined')`, nanos(now))
	if err == nil {
		b.notify.signal()
	}
	return err
}

// purgeBatch is the most jobs a purge deletes in one transaction: writers
// (workers storing outcomes) wait for one batch at a time, not for the
// whole purge (deleting a million jobs takes seconds).
const purgeBatch = 10_000

// Purge deletes the jobs matching f that are not running and returns how
// many (see purge).
func (b *Backend) Purge(ctx context.Context, f backend.PurgeFilter) (int, error) {
	return b.purge(ctx, "purge", f, time.Time{})
}

// PurgeEnded deletes the jobs matching f that ended before before and
// returns how many (see purge).
func (b *Backend) PurgeEnded(ctx context.Context, before time.Time, f backend.PurgeFilter) (int, error) {
	if before.IsZero() {
		return 0, b.wrap("purge ended", backend.ErrNoCutoff)
	}
	return b.purge(ctx, "purge ended", f, before)
}

// purge deletes the jobs matching f that are not running and, unless before
// is zero, ended before it (see deleteWhere).
func (b *Backend) purge(ctx context.Context, op string, f backend.PurgeFilter, before time.Time) (int, error) {
	cond, args, err := filterCond(`state <> 'running'`, f)
	if err != nil {
		return 0, b.wrap(op, err)
	}
	if !before.IsZero() {
		cond += ` AND ` + sqlRetainable + ` AND (finished_at = 0 OR finished_at < ?)`
		args = append(args, nanos(before))
	}
	return b.deleteWhere(ctx, op, cond, args)
}

// sqlEnded is the condition of a job that ended: in a final state.
const sqlEnded = `(state = 'succeeded' OR state = 'failed' OR state = 'cancelled' OR state = 'quarantined')`

// sqlRetainable is the condition of a job that retention (PurgeEnded,
// TrimEnded) may delete: it ended, and no pending workflow step waits for
// it (the step's release reads its parents' results). A step waits while
// one of its edges is open (its parent has not ended), so without open
// edges, found by one probe of workflow_edges_open that SQLite makes once
// per statement, no job is looked up in workflow_edges at all.
const sqlRetainable = sqlEnded + ` AND (NOT EXISTS (SELECT 1 FROM workflow_edges WHERE done = 0)
	OR NOT EXISTS (SELECT 1 FROM workflow_edges e JOIN jobs c ON c.id = e.child
		WHERE e.parent = jobs.id AND c.state = 'pending'))`

// filterCond returns cond narrowed by f's fields, and its arguments.
func filterCond(cond string, f backend.PurgeFilter) (string, []any, error) {
	var args []any
	if f.Queue != "" {
		cond += " AND queue = ?"
		args = append(args, f.Queue)
	}
	if len(f.States) > 0 {
		cond += " AND state IN (" + placeholders(len(f.States)) + ")"
		for _, s := range f.States {
			args = append(args, string(s))
		}
	}
	if len(f.IDs) > 0 {
		// Bound as one JSON array, so any number of ids fits one statement.
		ids, err := json.Marshal(f.IDs)
		if err != nil {
			return "", nil, err
		}
		cond += " AND id IN (SELECT value FROM json_each(?))"
		args = append(args, string(ids))
	}
	return cond, args, nil
}

// deleteWhere deletes the jobs matching cond (with args) and returns how
// many. It finds them on the read pool, batch by batch in rowid order,
// without holding the write lock, then deletes each batch (cond checked
// again) in a transaction of its own with the counters' moves: the write
// lock is held for the delete of at most purgeBatch jobs, never for a scan
// of the table. A delete that fails or is cancelled part-way has deleted the
// batches before, and returns their count with its error (wrapped with op).
func (b *Backend) deleteWhere(ctx context.Context, op, cond string, args []any) (int, error) {
	find := `SELECT rowid FROM jobs WHERE rowid >= ? AND ` + cond + ` ORDER BY rowid LIMIT ` + strconv.Itoa(purgeBatch)
	del := `DELETE FROM jobs WHERE rowid IN (SELECT value FROM json_each(?)) AND ` + cond + ` RETURNING queue, state`
	total := 0
	for from := int64(math.MinInt64); ; {
		rowids, err := b.purgeCandidates(ctx, find, append([]any{from}, args...))
		if err != nil {
			return total, b.wrapCtx(ctx, op, err)
		}
		if len(rowids) == 0 {
			return total, nil
		}
		list, err := json.Marshal(rowids)
		if err != nil {
			return total, b.wrap(op, err)
		}
		if b.beforeDelete != nil {
			b.beforeDelete()
		}
		n, err := b.deleteCounted(ctx, del, append([]any{string(list)}, args...))
		total += n
		if err != nil {
			return total, b.wrapCtx(ctx, op, err)
		}
		last := rowids[len(rowids)-1]
		if len(rowids) < purgeBatch || last == math.MaxInt64 {
			return total, nil
		}
		from = last + 1
	}
}

// purgeCandidates runs find (rowids in ascending order) on the read pool.
func (b *Backend) purgeCandidates(ctx context.Context, find string, args []any) ([]int64, error) {
	return queryColumn[int64](ctx, b.read, "find jobs", find, args)
}

// queryColumn runs q, which selects one column, on db and returns its
// values; errors are wrapped with what.
func queryColumn[T any](ctx context.Context, db queryer, what, q string, args []any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// deleteCounted runs del (a DELETE ... RETURNING queue, state) in a
// transaction of its own with the counters' moves and the workflow deletion
// rule (deleteJobs), and returns how many jobs it deleted.
func (b *Backend) deleteCounted(ctx context.Context, del string, args []any) (int, error) {
	b.countStmts() // prepared before the transaction (counts.go)
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	cd := counts{}
	n, released, err := b.deleteJobs(ctx, tx, del, args, cd) // and the workflow steps among them (wfgc.go)
	if err != nil {
		return 0, err
	}
	if err := b.addCounts(ctx, tx, cd); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	if released {
		b.notify.signal()
	}
	return n, nil
}
