package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Per-(queue, state) counters: nuvom_counts holds how many jobs each queue
// has in each state, so that Stats reads a few rows instead of grouping
// every stored job (0.8-3 s at a million jobs). Every method that changes a
// job's state collects the changes of its transaction in a counts map and
// applies them with one upsert per (queue, state) before it commits: the
// counters move with the jobs or not at all. They are written from Go, not
// by a trigger, so a batch of 250 completions costs two upserts, not 250.
//
// A counter is keyed by the queue and state as Stats reads them
// (countKeyOf): a stored value that is not text counts under the empty
// queue, an unknown state as quarantined, as the full scan counted them.

// sqlCountsMigration creates the counters and fills them from the stored
// jobs (appended to migrations in schema.go).
const sqlCountsMigration = `CREATE TABLE nuvom_counts (
		queue TEXT    NOT NULL,
		state TEXT    NOT NULL,
		n     INTEGER NOT NULL,
		PRIMARY KEY (queue, state)
	) WITHOUT ROWID;
	INSERT INTO nuvom_counts (queue, state, n)
	SELECT q, s, count(*) FROM (SELECT
			CASE WHEN typeof(queue) IN ('text', 'blob') THEN CAST(queue AS TEXT) ELSE '' END AS q,
			CASE WHEN typeof(state) IN ('text', 'blob') AND CAST(state AS TEXT) IN
				('pending', 'scheduled', 'queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled', 'quarantined')
				THEN CAST(state AS TEXT) ELSE 'quarantined' END AS s
		FROM jobs)
	GROUP BY q, s;`

const sqlCountsUpsert = `INSERT INTO nuvom_counts (queue, state, n) VALUES (?, ?, ?)
	ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n`

// sqlDue counts the scheduled and retrying jobs whose time has come by queue
// and state, through jobs_due, before sqlPromote makes them queued.
const sqlDue = `SELECT queue, state, count(*) FROM jobs
	WHERE state IN ('scheduled', 'retrying') AND run_at <= ? GROUP BY queue, state`

type countKey struct {
	queue string
	state backend.State
}

// counts are the changes of one transaction to the counters.
type counts map[countKey]int64

// countKeyOf keys a stored queue and state as Stats reports them.
func countKeyOf(queue, state any) countKey {
	var d rowDecoder
	k := countKey{d.text("queue", queue), backend.State(d.text("state", state))}
	if !k.state.Valid() {
		k.state = backend.StateQuarantined
	}
	return k
}

// move records n jobs of queue going from one state to another.
func (c counts) move(queue string, from, to backend.State, n int64) {
	if from == to || n == 0 {
		return
	}
	c[countKey{queue, from}] -= n
	c[countKey{queue, to}] += n
}

// countsState holds the prepared counter upsert.
type countsState struct {
	mu     sync.Mutex
	upsert *sql.Stmt
	due    *sql.Stmt
}

// countStmts returns the prepared upsert and due count, preparing them at
// first use (call it outside a transaction of the writer: preparing needs
// its one connection); nil means compile in the transaction.
func (b *Backend) countStmts() (upsert, due *sql.Stmt) {
	b.counts.mu.Lock()
	defer b.counts.mu.Unlock()
	if b.counts.upsert == nil {
		if st, err := b.write.Prepare(sqlCountsUpsert); err == nil {
			b.counts.upsert = st
		}
	}
	if b.counts.due == nil {
		if st, err := b.write.Prepare(sqlDue); err == nil {
			b.counts.due = st
		}
	}
	return b.counts.upsert, b.counts.due
}

func (s *countsState) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range []*sql.Stmt{s.upsert, s.due} {
		if st != nil {
			st.Close()
		}
	}
	s.upsert, s.due = nil, nil
}

// addCounts applies c inside tx: one upsert per changed (queue, state).
func (b *Backend) addCounts(ctx context.Context, tx *sql.Tx, c counts) error {
	if len(c) == 0 {
		return nil
	}
	upsert, _ := b.countStmts()
	var st *sql.Stmt
	if upsert != nil {
		st = tx.StmtContext(ctx, upsert)
	} else {
		var err error
		if st, err = tx.PrepareContext(ctx, sqlCountsUpsert); err != nil {
			return fmt.Errorf("counters: %w", err)
		}
		defer st.Close()
	}
	for k, n := range c {
		if n == 0 {
			continue
		}
		if _, err := st.ExecContext(ctx, k.queue, string(k.state), n); err != nil {
			return fmt.Errorf("counters: queue %s state %s: %w", k.queue, k.state, err)
		}
	}
	return nil
}

// countInserted records the jobs an Enqueue inserted.
func (c counts) countInserted(jobs []*backend.Job, res []backend.EnqueueResult) {
	for i, j := range jobs {
		if !res[i].Duplicate {
			c[countKey{j.Queue, j.State}]++
		}
	}
}

// promoteCounted makes the due scheduled and retrying jobs queued inside tx
// (nil: in a transaction of its own, begun only when some job is due),
// recording them in c.
func (b *Backend) promoteCounted(ctx context.Context, tx *sql.Tx, now int64, c counts) error {
	_, due := b.countStmts()
	var rows *sql.Rows
	var err error
	switch {
	case due != nil && tx != nil:
		rows, err = tx.StmtContext(ctx, due).QueryContext(ctx, now)
	case due != nil:
		rows, err = due.QueryContext(ctx, now)
	case tx != nil:
		rows, err = tx.QueryContext(ctx, sqlDue, now)
	default:
		rows, err = b.write.QueryContext(ctx, sqlDue, now)
	}
	if err != nil {
		return fmt.Errorf("count due jobs: %w", err)
	}
	moved := counts{}
	for rows.Next() {
		var queue, state any
		var n int64
		if err := rows.Scan(&queue, &state, &n); err != nil {
			rows.Close()
			return fmt.Errorf("count due jobs: %w", err)
		}
		k := countKeyOf(queue, state)
		moved.move(k.queue, k.state, backend.StateQueued, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count due jobs: %w", err)
	}
	if len(moved) == 0 {
		return nil
	}
	if tx == nil {
		tx, err := b.write.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer tx.Rollback()
		in := counts{}
		if err := b.promoteCounted(ctx, tx, now, in); err != nil {
			return err
		}
		if err := b.addCounts(ctx, tx, in); err != nil {
			return err
		}
		return tx.Commit()
	}
	if _, err := tx.StmtContext(ctx, b.stmts.promote).ExecContext(ctx, now); err != nil {
		return fmt.Errorf("promote due jobs: %w", err)
	}
	for k, n := range moved {
		c[k] += n
	}
	return nil
}

// jobCountKey reads a job's queue and state inside tx, before a change.
func jobCountKey(ctx context.Context, tx *sql.Tx, id string) (countKey, bool, error) {
	var queue, state any
	err := tx.QueryRowContext(ctx, `SELECT queue, state FROM jobs WHERE id = ?`, id).Scan(&queue, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return countKey{}, false, nil
	}
	if err != nil {
		return countKey{}, false, err
	}
	return countKeyOf(queue, state), true, nil
}

// countDeleted adds the rows of a "RETURNING queue, state" statement (a
// delete's removed jobs) to c with sign -1, and closes rows.
func countDeleted(rows *sql.Rows, c counts) (int, error) {
	defer rows.Close()
	n := 0
	for rows.Next() {
		var queue, state any
		if err := rows.Scan(&queue, &state); err != nil {
			return n, err
		}
		c[countKeyOf(queue, state)]--
		n++
	}
	return n, rows.Err()
}

// Stats counts jobs per queue and state from the counters, ordered by queue
// then life order of the state. OldestRunAt is set for queued jobs
// (readyOldest) and for scheduled and retrying ones among the next
// dueScanLimit to come due (waitingOldest), zero for the other states.
// Rows whose state cannot be read count as quarantined. A
// database opened read-only at a schema without counters is scanned.
func (b *Backend) Stats(ctx context.Context, now time.Time) ([]backend.QueueStat, error) {
	tx, err := b.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, b.wrap("stats: begin", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT queue, state, n FROM nuvom_counts WHERE n <> 0`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return b.statsByScan(ctx)
		}
		return nil, b.wrap("stats", err)
	}
	var stats []backend.QueueStat
	var ready []string
	waiting := false
	for rows.Next() {
		var queue, state any
		var n int
		if err := rows.Scan(&queue, &state, &n); err != nil {
			rows.Close()
			return nil, b.wrap("stats", err)
		}
		k := countKeyOf(queue, state)
		stats = append(stats, backend.QueueStat{Queue: k.queue, State: k.state, Count: n})
		if k.state == backend.StateQueued && n > 0 {
			ready = append(ready, k.queue)
		}
		waiting = waiting || (k.state == backend.StateScheduled || k.state == backend.StateRetrying) && n > 0
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, b.wrap("stats", err)
	}
	if len(ready) > 0 {
		oldest, err := readyOldest(ctx, tx, ready)
		if err != nil {
			return nil, b.wrap("stats: oldest ready job", err)
		}
		for i := range stats {
			if stats[i].State == backend.StateQueued {
				stats[i].OldestRunAt = oldest[stats[i].Queue]
			}
		}
	}
	if waiting {
		oldest, err := waitingOldest(ctx, tx)
		if err != nil {
			return nil, b.wrap("stats: oldest waiting job", err)
		}
		for i := range stats {
			if at, ok := oldest[countKey{stats[i].Queue, stats[i].State}]; ok {
				stats[i].OldestRunAt = at
			}
		}
	}
	sortStats(stats)
	return stats, nil
}

// dueScanLimit bounds the entries of jobs_due waitingOldest reads.
const dueScanLimit = 1000

// sqlWaitingOldest reads the first dueScanLimit entries of jobs_due (in
// run-at order) and keeps the earliest of each queue and state.
const sqlWaitingOldest = `SELECT queue, state, min(run_at) FROM (SELECT queue, state, run_at
		FROM jobs INDEXED BY jobs_due WHERE state IN ('scheduled', 'retrying') ORDER BY run_at LIMIT ?)
	GROUP BY queue, state`

// waitingOldest returns the earliest run-at of the scheduled and retrying
// jobs by queue and state, from the first dueScanLimit entries of jobs_due:
// exact for every queue and state with a job among the next dueScanLimit to
// come due (all of them when fewer wait), missing for the others.
func waitingOldest(ctx context.Context, tx *sql.Tx) (map[countKey]time.Time, error) {
	rows, err := tx.QueryContext(ctx, sqlWaitingOldest, dueScanLimit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[countKey]time.Time{}
	for rows.Next() {
		var queue, state, at any
		if err := rows.Scan(&queue, &state, &at); err != nil {
			return nil, err
		}
		var d rowDecoder
		t := d.time("run_at", at)
		if len(d.bad) == 0 {
			out[countKeyOf(queue, state)] = t
		}
	}
	return out, rows.Err()
}

func sortStats(stats []backend.QueueStat) {
	slices.SortFunc(stats, func(x, y backend.QueueStat) int {
		return cmp.Or(cmp.Compare(x.Queue, y.Queue),
			cmp.Compare(slices.Index(backend.AllStates(), x.State), slices.Index(backend.AllStates(), y.State)))
	})
}

// Statements of readyOldest, each answered from jobs_ready_task (task,
// priority DESC, run_at, id, queue) by seeks.
const (
	// sqlFirstPriority is a task's highest priority among queued jobs.
	sqlFirstPriority = `SELECT max(priority) FROM jobs WHERE state = 'queued' AND task = ?`
	// sqlNextPriority is the next lower priority of a task's queued jobs.
	sqlNextPriority = `SELECT max(priority) FROM jobs WHERE state = 'queued' AND task = ? AND priority < ?`
	// sqlOldestIn is the earliest run-at of one queue's queued jobs of one
	// task and priority: the index entries of that task and priority are
	// in run-at order, so the first entry of the queue is the answer.
	sqlOldestIn = `SELECT run_at FROM jobs INDEXED BY jobs_ready_task
		WHERE state = 'queued' AND task = ? AND priority = ? AND queue = ? ORDER BY run_at LIMIT 1`
)

// readyOldest returns the earliest run-at of the queued jobs of each of
// queues, read from the claim index: for each task with queued jobs (one
// seek each, sqlTasks) and each of its priorities (one seek each), the
// first index entry of each queue. A queue whose jobs share a task and
// priority with many earlier jobs of other queues costs a walk over those
// entries; a queue per task, the common layout, costs one seek.
func readyOldest(ctx context.Context, tx *sql.Tx, queues []string) (map[string]time.Time, error) {
	rows, err := tx.QueryContext(ctx, sqlTasks)
	if err != nil {
		return nil, err
	}
	var tasks []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, err
		}
		tasks = append(tasks, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	oldest := make(map[string]time.Time, len(queues))
	for _, t := range tasks {
		// The priority is read and bound back as stored: a damaged row's
		// may not be an integer.
		var p any
		if err := tx.QueryRowContext(ctx, sqlFirstPriority, t).Scan(&p); err != nil {
			return nil, err
		}
		for p != nil {
			for _, q := range queues {
				var v any
				err := tx.QueryRowContext(ctx, sqlOldestIn, t, p, q).Scan(&v)
				if errors.Is(err, sql.ErrNoRows) {
					continue
				}
				if err != nil {
					return nil, err
				}
				var d rowDecoder
				at := d.time("run_at", v)
				if len(d.bad) > 0 {
					continue // a damaged row, quarantined by the next claim that reaches it
				}
				if cur, ok := oldest[q]; !ok || at.Before(cur) {
					oldest[q] = at
				}
			}
			if err := tx.QueryRowContext(ctx, sqlNextPriority, t, p).Scan(&p); err != nil {
				return nil, err
			}
		}
	}
	return oldest, nil
}

// Recount rebuilds the counters Stats reads from a full scan of the jobs,
// in one transaction. The counters follow every change Nuvom makes; a row
// changed behind its back (by hand, by another program, by a disk fault)
// is counted where it was until Claim quarantines it or Recount runs. It
// reads every job: at a million jobs it takes about as long as the scan
// Stats used to run.
func (b *Backend) Recount(ctx context.Context) error {
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return b.wrap("recount: begin", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM nuvom_counts`); err != nil {
		return b.wrap("recount", err)
	}
	fill := sqlCountsMigration[strings.Index(sqlCountsMigration, "INSERT INTO"):]
	if _, err := tx.ExecContext(ctx, fill); err != nil {
		return b.wrap("recount", err)
	}
	if err := tx.Commit(); err != nil {
		return b.wrap("recount: commit", err)
	}
	return nil
}

// statsByScan counts jobs per queue and state by grouping every stored job:
// what Stats did before the counters, kept for databases without them and
// as the reference the tests hold the counters to.
func (b *Backend) statsByScan(ctx context.Context) ([]backend.QueueStat, error) {
	rows, err := b.read.QueryContext(ctx, `SELECT queue, state, count(*), min(run_at) FROM jobs GROUP BY queue, state`)
	if err != nil {
		return nil, b.wrap("stats", err)
	}
	defer rows.Close()
	byKey := map[countKey]*backend.QueueStat{}
	for rows.Next() {
		var queue, state, oldest any
		var count int
		if err := rows.Scan(&queue, &state, &count, &oldest); err != nil {
			return nil, b.wrap("stats", err)
		}
		var d rowDecoder
		k := countKeyOf(queue, state)
		at := d.time("run_at", oldest)
		s := byKey[k]
		if s == nil {
			s = &backend.QueueStat{Queue: k.queue, State: k.state, OldestRunAt: at}
			byKey[k] = s
		} else if s.OldestRunAt.IsZero() || (!at.IsZero() && at.Before(s.OldestRunAt)) {
			s.OldestRunAt = at
		}
		s.Count += count
	}
	if err := rows.Err(); err != nil {
		return nil, b.wrap("stats", err)
	}
	stats := make([]backend.QueueStat, 0, len(byKey))
	for _, s := range byKey {
		stats = append(stats, *s)
	}
	sortStats(stats)
	return stats, nil
}
