package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

var _ backend.Admin = (*Backend)(nil)

// adminState is the backend's state for the Admin methods.
type adminState struct {
	mu     sync.Mutex
	minute *sql.Stmt // the aggregate upsert, prepared on the writer at first use
	hour   *sql.Stmt // the hourly roll-up's upsert, likewise
	// pruned is the minute (unix nanos) at which aggregates were last pruned.
	pruned atomic.Int64
}

// histColumns lists the histogram columns h0..h15.
var histColumns = func() []string {
	c := make([]string, backend.NumBuckets)
	for i := range c {
		c[i] = fmt.Sprintf("h%d", i)
	}
	return c
}()

func sqlMinuteUpsert() string { return sqlAggregateUpsert("nuvom_minutes", "minute") }

// sqlAggregateUpsert adds one row of sums to table, keyed by (key, queue, task).
func sqlAggregateUpsert(table, key string) string {
	cols := key + ", queue, task, succeeded, failed, retried, other, duration, " + strings.Join(histColumns, ", ")
	set := []string{"succeeded = succeeded + excluded.succeeded", "failed = failed + excluded.failed",
		"retried = retried + excluded.retried", "other = other + excluded.other", "duration = duration + excluded.duration"}
	for _, h := range histColumns {
		set = append(set, h+" = "+h+" + excluded."+h)
	}
	return `INSERT INTO ` + table + ` (` + cols + `) VALUES (` + placeholders(8+backend.NumBuckets) + `)
		ON CONFLICT (` + key + `, queue, task) DO UPDATE SET ` + strings.Join(set, ", ")
}

// minuteStmt returns the prepared aggregate upsert, preparing it at first
// use (call it outside a transaction of the writer: preparing needs it); nil
// means compile it in the transaction.
func (b *Backend) minuteStmt() *sql.Stmt {
	b.admin.mu.Lock()
	defer b.admin.mu.Unlock()
	if b.admin.minute == nil {
		st, err := b.write.Prepare(sqlMinuteUpsert())
		if err != nil {
			return nil
		}
		b.admin.minute = st
	}
	if b.admin.hour == nil {
		if st, err := b.write.Prepare(sqlAggregateUpsert("nuvom_hours", "hour")); err == nil {
			b.admin.hour = st
		}
	}
	return b.admin.minute
}

// hourNanos is an hour in the unit of the aggregate keys.
const hourNanos = int64(time.Hour)

type minuteKey struct {
	minute      int64
	queue, task string
}

// addMinutes adds the aggregates of a Complete batch inside its
// transaction: one upsert per (minute, queue, task); once per minute it also
// deletes aggregates older than backend.MinutesRetention.
func (b *Backend) addMinutes(ctx context.Context, tx *sql.Tx, st *sql.Stmt, ms map[minuteKey]*backend.MinuteStat) error {
	if len(ms) == 0 {
		return nil
	}
	var stmt *sql.Stmt
	if st != nil {
		stmt = tx.StmtContext(ctx, st)
	} else {
		var err error
		if stmt, err = tx.PrepareContext(ctx, sqlMinuteUpsert()); err != nil {
			return fmt.Errorf("aggregates: %w", err)
		}
		defer stmt.Close()
	}
	var latest int64
	args := make([]any, 0, 8+backend.NumBuckets)
	hours := make(map[minuteKey]*backend.MinuteStat, len(ms))
	for k, m := range ms {
		args = append(args[:0], k.minute, k.queue, k.task, m.Succeeded, m.Failed, m.Retried, m.Other, int64(m.Duration))
		for _, n := range m.Buckets {
			args = append(args, n)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("aggregates: %w", err)
		}
		latest = max(latest, k.minute)
		hk := minuteKey{k.minute - k.minute%hourNanos, k.queue, k.task}
		if h := hours[hk]; h != nil {
			h.Add(*m)
		} else {
			c := *m
			hours[hk] = &c
		}
	}
	var hstmt *sql.Stmt
	if b.admin.hour != nil {
		hstmt = tx.StmtContext(ctx, b.admin.hour)
	} else {
		var err error
		if hstmt, err = tx.PrepareContext(ctx, sqlAggregateUpsert("nuvom_hours", "hour")); err != nil {
			return fmt.Errorf("hourly aggregates: %w", err)
		}
		defer hstmt.Close()
	}
	for k, m := range hours {
		args = append(args[:0], k.minute, k.queue, k.task, m.Succeeded, m.Failed, m.Retried, m.Other, int64(m.Duration))
		for _, n := range m.Buckets {
			args = append(args, n)
		}
		if _, err := hstmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("hourly aggregates: %w", err)
		}
	}
	if prev := b.admin.pruned.Load(); latest > prev && b.admin.pruned.CompareAndSwap(prev, latest) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM nuvom_minutes WHERE minute < ?`,
			latest-int64(backend.MinutesRetention)); err != nil {
			return fmt.Errorf("aggregates: prune: %w", err)
		}
		// Hours are kept while any of their minutes is.
		if _, err := tx.ExecContext(ctx, `DELETE FROM nuvom_hours WHERE hour < ?`,
			latest-int64(backend.MinutesRetention)-hourNanos); err != nil {
			return fmt.Errorf("hourly aggregates: prune: %w", err)
		}
	}
	return nil
}

// collectMinutes aggregates the applied outcomes of a batch: where[id] is
// the queue and task of each applied job.
func collectMinutes(outcomes []backend.Outcome, errs []error, valid []int, where map[string][2]string) map[minuteKey]*backend.MinuteStat {
	ms := map[minuteKey]*backend.MinuteStat{}
	for _, i := range valid {
		if errs[i] != nil {
			continue
		}
		qt, ok := where[outcomes[i].Lease.JobID]
		if !ok {
			continue
		}
		m := backend.MinuteOf(qt[0], qt[1], &outcomes[i])
		k := minuteKey{m.Minute.UnixNano(), m.Queue, m.Task}
		if cur := ms[k]; cur != nil {
			cur.Add(m)
		} else {
			fresh := new(backend.MinuteStat) // m itself stays on the stack
			*fresh = m
			ms[k] = fresh
		}
	}
	return ms
}

// Heartbeat stores the registry row of w and forgets long-gone workers.
func (b *Backend) Heartbeat(ctx context.Context, w backend.WorkerInfo) error {
	if w.ID == "" {
		return errors.New("sqlite heartbeat: worker id is empty")
	}
	w.Gone = false
	info, err := json.Marshal(w)
	if err != nil {
		return b.wrap("heartbeat", err)
	}
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return b.wrap("heartbeat: begin", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO nuvom_workers (id, info, last_heartbeat) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET info = excluded.info, last_heartbeat = excluded.last_heartbeat`,
		w.ID, string(info), nanos(w.LastHeartbeat)); err != nil {
		return b.wrap("heartbeat of worker "+w.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM nuvom_workers WHERE last_heartbeat < ?`,
		nanos(w.LastHeartbeat.Add(-backend.WorkerForgetAfter))); err != nil {
		return b.wrap("heartbeat: forget gone workers", err)
	}
	if err := tx.Commit(); err != nil {
		return b.wrap("heartbeat: commit", err)
	}
	return nil
}

// RemoveWorker deletes a worker's registry row.
func (b *Backend) RemoveWorker(ctx context.Context, id string) error {
	if _, err := b.write.ExecContext(ctx, `DELETE FROM nuvom_workers WHERE id = ?`, id); err != nil {
		return b.wrap("remove worker "+id, err)
	}
	return nil
}

// Workers lists the registered workers by id.
func (b *Backend) Workers(ctx context.Context, now time.Time) ([]backend.WorkerInfo, error) {
	rows, err := b.read.QueryContext(ctx, `SELECT info FROM nuvom_workers ORDER BY id`)
	if err != nil {
		return nil, b.wrap("workers", err)
	}
	defer rows.Close()
	out := []backend.WorkerInfo{}
	for rows.Next() {
		var info string
		if err := rows.Scan(&info); err != nil {
			return nil, b.wrap("workers", err)
		}
		var w backend.WorkerInfo
		if err := json.Unmarshal([]byte(info), &w); err != nil {
			return nil, b.wrap("workers: decode row", err)
		}
		w.Gone = w.IsGone(now)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, b.wrap("workers", err)
	}
	return out, nil
}

// SetPaused pauses or resumes a queue for every process on the file.
func (b *Backend) SetPaused(ctx context.Context, queue string, paused bool) error {
	var err error
	if paused {
		_, err = b.write.ExecContext(ctx, `INSERT INTO nuvom_paused (queue, paused_at) VALUES (?, ?)
			ON CONFLICT (queue) DO NOTHING`, queue, time.Now().UnixNano())
	} else {
		_, err = b.write.ExecContext(ctx, `DELETE FROM nuvom_paused WHERE queue = ?`, queue)
		b.notify.signal() // its jobs may be claimed again
	}
	if err != nil {
		return b.wrap(fmt.Sprintf("set queue %s paused=%t", queue, paused), err)
	}
	return nil
}

// Paused lists the paused queues.
func (b *Backend) Paused(ctx context.Context) ([]string, error) {
	rows, err := b.read.QueryContext(ctx, `SELECT queue FROM nuvom_paused ORDER BY queue`)
	if err != nil {
		return nil, b.wrap("paused queues", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			return nil, b.wrap("paused queues", err)
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, b.wrap("paused queues", err)
	}
	return out, nil
}

// Minutes returns the per-minute aggregates selected by f, summed per
// f.Step bucket and f.Group in SQL (a week of minutes comes back as a few
// hundred rows).
func (b *Backend) Minutes(ctx context.Context, f backend.MinuteFilter) ([]backend.MinuteStat, error) {
	step := int64(time.Minute)
	if f.Step > time.Minute {
		step = int64(f.Step)
	}
	qcol, tcol := "queue", "task"
	switch f.Group {
	case backend.GroupQueue:
		tcol = "''"
	case backend.GroupTask:
		qcol = "''"
	case backend.GroupAll:
		qcol, tcol = "''", "''"
	}
	sums := []string{"sum(succeeded)", "sum(failed)", "sum(retried)", "sum(other)", "sum(duration)"}
	for _, h := range histColumns {
		sums = append(sums, "sum("+h+")")
	}
	if f.CountsOnly {
		for i := 4; i < len(sums); i++ {
			sums[i] = "0"
		}
	}
	until := backend.MaxTime()
	if !f.Until.IsZero() {
		until = f.Until
	}
	// Buckets of whole hours from an hour's start to an hour's start (or
	// to now) read the hourly roll-up: a week is 168 rows per series, not
	// 10,080.
	table, key := "nuvom_minutes", "minute"
	since := nanos(f.Since.Truncate(time.Minute))
	if step%hourNanos == 0 && since%hourNanos == 0 && (f.Until.IsZero() || nanos(until)%hourNanos == 0) {
		table, key = "nuvom_hours", "hour"
	}
	q := fmt.Sprintf(`SELECT %[5]s - %[5]s %% %[1]d AS bucket, %[2]s AS q, %[3]s AS t, %[4]s
		FROM %[6]s WHERE %[5]s >= ? AND %[5]s < ?`, step, qcol, tcol, strings.Join(sums, ", "), key, table)
	args := []any{since, nanos(until)}
	if f.Queue != "" {
		q += " AND queue = ?"
		args = append(args, f.Queue)
	}
	if f.Task != "" {
		q += " AND task = ?"
		args = append(args, f.Task)
	}
	q += " GROUP BY bucket, q, t ORDER BY bucket, q, t"
	rows, err := b.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, b.wrap("aggregates", err)
	}
	defer rows.Close()
	out := []backend.MinuteStat{}
	for rows.Next() {
		var m backend.MinuteStat
		var minute, dur int64
		dest := []any{&minute, &m.Queue, &m.Task, &m.Succeeded, &m.Failed, &m.Retried, &m.Other, &dur}
		for i := range m.Buckets {
			dest = append(dest, &m.Buckets[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, b.wrap("aggregates", err)
		}
		m.Minute = time.Unix(0, minute).UTC()
		m.Duration = time.Duration(dur)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, b.wrap("aggregates", err)
	}
	return out, nil
}

// sqlUniqueTasks lists the tasks that have jobs with unique keys by
// skipping through jobs_unique: one index seek per task.
const sqlUniqueTasks = `WITH RECURSIVE ut(name) AS (
		SELECT (SELECT min(task) FROM jobs WHERE unique_key IS NOT NULL)
		UNION ALL
		SELECT (SELECT min(task) FROM jobs WHERE unique_key IS NOT NULL AND task > ut.name)
		FROM ut WHERE ut.name IS NOT NULL)`

// Search returns a page of jobs matching q, newest first. Pages are read by
// keyset (id below the cursor), so a page costs the same at any depth.
// State filters are written into the statement as literals (they are
// checked against the known states), so that the planner can use the
// partial indexes of those states.
func (b *Backend) Search(ctx context.Context, q backend.JobQuery) (backend.JobPage, error) {
	var where []string
	var args []any
	from := " FROM jobs"
	if len(q.States) > 0 {
		bad := true
		for _, st := range q.States {
			bad = bad && (st == backend.StateFailed || st == backend.StateCancelled || st == backend.StateQuarantined)
		}
		if bad {
			// Without statistics the planner would walk the id index and
			// filter, reading every job when those states are rare.
			// The partial index serves a query that repeats its WHERE term.
			from = " FROM jobs INDEXED BY jobs_bad"
			where = append(where, sqlBadStates)
		}
		lits := make([]string, len(q.States))
		for i, s := range q.States {
			if !s.Valid() {
				return backend.JobPage{}, fmt.Errorf("sqlite search jobs: unknown state %q", s)
			}
			lits[i] = "'" + string(s) + "'"
		}
		where = append(where, "state IN ("+strings.Join(lits, ", ")+")")
	}
	if q.Task != "" {
		where = append(where, "task = ?")
		args = append(args, q.Task)
	}
	if q.Queue != "" {
		where = append(where, "queue = ?")
		args = append(args, q.Queue)
	}
	if !q.Since.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, nanos(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, "created_at < ?")
		args = append(args, nanos(q.Until))
	}
	if q.After != "" {
		where = append(where, "id < ?")
		args = append(args, q.After)
	}
	if q.MinID != "" {
		where = append(where, "id >= ?")
		args = append(args, q.MinID)
	}
	limit := q.PageLimit()
	cond := func(extra ...string) string {
		all := append(slices.Clone(where), extra...)
		if len(all) == 0 {
			return ""
		}
		return " WHERE " + strings.Join(all, " AND ")
	}
	if q.Text == "" {
		jobs, err := b.searchRows(ctx, `SELECT `+jobColumns+from+cond()+` ORDER BY id DESC LIMIT ?`, append(args, limit+1), q)
		if err != nil {
			return backend.JobPage{}, err
		}
		return pageOf(jobs, limit), nil
	}
	// An exact id is one look-up; a unique key one look-up per task that
	// has unique keys; otherwise the args of at most TextScanLimit jobs are
	// read, newest first.
	if q.After == "" {
		if j, err := b.Get(ctx, q.Text); err == nil && matches(j, q) {
			return backend.JobPage{Jobs: []*backend.Job{j}}, nil
		}
		jobs, err := b.searchRows(ctx, sqlUniqueTasks+` SELECT `+jobColumns+` FROM jobs`+
			cond("task IN (SELECT name FROM ut WHERE name IS NOT NULL)", "unique_key = ?")+` ORDER BY id DESC LIMIT ?`,
			append(slices.Clone(args), q.Text, limit), q)
		if err != nil {
			return backend.JobPage{}, err
		}
		if len(jobs) > 0 {
			return backend.JobPage{Jobs: jobs}, nil
		}
	}
	scan := `SELECT rowid AS r, id AS i` + from + cond() + ` ORDER BY id DESC LIMIT ` + fmt.Sprint(backend.TextScanLimit)
	jobs, err := b.searchRows(ctx, `SELECT `+jobColumns+` FROM jobs WHERE rowid IN (SELECT r FROM (`+scan+`))
		AND instr(args, ?) > 0 ORDER BY id DESC LIMIT ?`, append(slices.Clone(args), []byte(q.Text), limit+1), q)
	if err != nil {
		return backend.JobPage{}, err
	}
	if len(jobs) > limit {
		return pageOf(jobs, limit), nil
	}
	var last sql.NullString
	var n int
	if err := b.read.QueryRowContext(ctx, `SELECT min(i), count(*) FROM (`+scan+`)`, args...).Scan(&last, &n); err != nil {
		return backend.JobPage{}, b.wrap("search jobs", err)
	}
	p := backend.JobPage{Jobs: jobs}
	if n >= backend.TextScanLimit && last.Valid {
		p.Next, p.Scanned = last.String, true
	}
	return p, nil
}

// pageOf cuts jobs (read with one more than limit) to a page.
func pageOf(jobs []*backend.Job, limit int) backend.JobPage {
	if len(jobs) > limit {
		return backend.JobPage{Jobs: jobs[:limit], Next: jobs[limit-1].ID}
	}
	return backend.JobPage{Jobs: jobs}
}

func (b *Backend) searchRows(ctx context.Context, query string, args []any, q backend.JobQuery) ([]*backend.Job, error) {
	rows, err := b.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, b.wrap("search jobs", err)
	}
	defer rows.Close()
	jobs := []*backend.Job{}
	for rows.Next() {
		j, err := scanVisible(rows)
		if err != nil {
			return nil, b.wrap("search jobs", err)
		}
		if len(q.States) > 0 && !slices.Contains(q.States, j.State) {
			continue
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, b.wrap("search jobs", err)
	}
	return jobs, nil
}

// matches reports whether j passes q's filters other than Text.
func matches(j *backend.Job, q backend.JobQuery) bool {
	return (len(q.States) == 0 || slices.Contains(q.States, j.State)) &&
		(q.Task == "" || j.Task == q.Task) && (q.Queue == "" || j.Queue == q.Queue) &&
		(q.Since.IsZero() || !j.CreatedAt.Before(q.Since)) && (q.Until.IsZero() || j.CreatedAt.Before(q.Until)) &&
		(q.After == "" || j.ID < q.After) && (q.MinID == "" || j.ID >= q.MinID)
}

// Bulk applies action to the selected jobs.
func (b *Backend) Bulk(ctx context.Context, action backend.BulkAction, sel backend.Selection, now time.Time) (int, error) {
	return backend.BulkEach(ctx, b, action, sel, now)
}
