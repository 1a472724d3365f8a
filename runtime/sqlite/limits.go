package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Flow control (backend.Limits): task_limits holds each task's declared and
// override limits; task_starts the start times of recent claims of
// rate-limited tasks. A claim reads task_limits from the read pool first;
// when no task it may claim is limited it takes the usual path, untouched.
// The limits read are kept for limitsTTL. Otherwise claimLimited claims, in one IMMEDIATE transaction (so claims of
// every process are ordered), the unlimited tasks as usual and each limited
// task up to what its limits allow: running jobs of the task are counted
// (through jobs_lease, which holds only running jobs), and its starts in
// the last period.

var _ backend.Limits = (*Backend)(nil)

// startsSlack keeps start records a while past their period, so that a
// claimer whose clock is a little behind still counts them.
const startsSlack = time.Minute

// DeclareLimits stores the declared limits, leaving overrides alone.
func (b *Backend) DeclareLimits(ctx context.Context, declared map[string]backend.Limit) error {
	if len(declared) == 0 {
		return nil
	}
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return b.wrap("declare limits: begin", err)
	}
	defer tx.Rollback()
	tasks := make([]string, 0, len(declared))
	for t := range declared {
		tasks = append(tasks, t)
	}
	slices.Sort(tasks)
	for _, t := range tasks {
		l := declared[t]
		if _, err := tx.ExecContext(ctx, `INSERT INTO task_limits (task, declared_conc, declared_rate, declared_per)
			VALUES (?1, ?2, ?3, ?4) ON CONFLICT (task) DO UPDATE SET
			declared_conc = ?2, declared_rate = ?3, declared_per = ?4`,
			t, max(l.MaxConcurrency, 0), max(l.Rate, 0), int64(max(l.Per, 0))); err != nil {
			return b.wrap("declare limits of "+t, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM task_limits WHERE has_override = 0 AND declared_conc = 0
		AND (declared_rate = 0 OR declared_per = 0)`); err != nil {
		return b.wrap("declare limits", err)
	}
	if err := tx.Commit(); err != nil {
		return b.wrap("declare limits: commit", err)
	}
	b.limits.invalidate()
	return nil
}

// OverrideLimit sets or clears a task's override.
func (b *Backend) OverrideLimit(ctx context.Context, task string, l backend.Limit, set bool) error {
	if task == "" {
		return b.wrap("override limit", errors.New("task name is empty"))
	}
	var err error
	if set {
		_, err = b.write.ExecContext(ctx, `INSERT INTO task_limits (task, has_override, override_conc, override_rate, override_per)
			VALUES (?1, 1, ?2, ?3, ?4) ON CONFLICT (task) DO UPDATE SET
			has_override = 1, override_conc = ?2, override_rate = ?3, override_per = ?4`,
			task, max(l.MaxConcurrency, 0), max(l.Rate, 0), int64(max(l.Per, 0)))
	} else {
		_, err = b.write.ExecContext(ctx, `UPDATE task_limits SET has_override = 0, override_conc = 0,
			override_rate = 0, override_per = 0 WHERE task = ?`, task)
	}
	if err != nil {
		return b.wrap("override limit of "+task, err)
	}
	b.limits.invalidate()
	return nil
}

// TaskLimits lists the stored limits by task name.
func (b *Backend) TaskLimits(ctx context.Context) ([]backend.TaskLimit, error) {
	out, err := readLimits(ctx, b.read)
	if err != nil {
		return nil, b.wrap("read task limits", err)
	}
	return out, nil
}

func readLimits(ctx context.Context, db *sql.DB) ([]backend.TaskLimit, error) {
	rows, err := db.QueryContext(ctx, `SELECT task, declared_conc, declared_rate, declared_per,
		has_override, override_conc, override_rate, override_per FROM task_limits ORDER BY task`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []backend.TaskLimit{}
	for rows.Next() {
		var t backend.TaskLimit
		var dper, oper int64
		if err := rows.Scan(&t.Task, &t.Declared.MaxConcurrency, &t.Declared.Rate, &dper,
			&t.HasOverride, &t.Override.MaxConcurrency, &t.Override.Rate, &oper); err != nil {
			return nil, err
		}
		t.Declared.Per, t.Override.Per = time.Duration(dper), time.Duration(oper)
		out = append(out, t)
	}
	return out, rows.Err()
}

// limitsTTL is how long a claim reuses the limits it read: a limit declared
// or overridden by another process applies to this one's claims within it
// (this process's own DeclareLimits and OverrideLimit apply at once).
const limitsTTL = time.Second

// limitCache keeps the stored limits between claims, so that a claim of a
// store without limits reads nothing more.
type limitCache struct {
	mu   sync.Mutex
	at   time.Time // when list was read; zero: read again
	list []backend.TaskLimit
}

func (c *limitCache) invalidate() {
	c.mu.Lock()
	c.at = time.Time{}
	c.mu.Unlock()
}

// cachedLimits returns the stored limits, read at most limitsTTL ago.
func (b *Backend) cachedLimits(ctx context.Context) ([]backend.TaskLimit, error) {
	c := &b.limits
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < limitsTTL {
		return c.list, nil
	}
	list, err := readLimits(ctx, b.read)
	if err != nil {
		return nil, err
	}
	c.list, c.at = list, time.Now()
	return list, nil
}

// limitedClaim claims under flow control when a task the claim may take is
// limited; handled is false when none is, and the claim takes the usual path.
func (b *Backend) limitedClaim(ctx context.Context, req backend.ClaimRequest) (jobs []*backend.Job, handled bool, err error) {
	all, err := b.cachedLimits(ctx)
	if err != nil {
		return nil, true, b.wrap("claim: read task limits", err)
	}
	if len(all) == 0 {
		return nil, false, nil
	}
	limits := map[string]backend.Limit{}
	for _, t := range all {
		if l := t.Effective(); !l.IsZero() && (len(req.Tasks) == 0 || slices.Contains(req.Tasks, t.Task)) {
			limits[t.Task] = l
		}
	}
	if len(limits) == 0 {
		return nil, false, nil
	}
	jobs, err = b.claimLimited(ctx, req, limits)
	return jobs, true, err
}

func (b *Backend) claimLimited(ctx context.Context, req backend.ClaimRequest, limits map[string]backend.Limit) ([]*backend.Job, error) {
	now := nanos(req.Now)
	queues := sortedSet(req.Queues)
	b.countStmts() // prepared before the transaction (counts.go)
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, b.wrap("claim: begin", err)
	}
	defer tx.Rollback()
	cd := counts{}
	if err := b.promoteCounted(ctx, tx, now, cd); err != nil {
		return nil, b.wrap("claim", err)
	}
	tasks := sortedSet(req.Tasks)
	if len(tasks) == 0 {
		if tasks, err = readTasks(ctx, tx); err != nil {
			return nil, b.wrap("claim: list tasks", err)
		}
	}
	var free, limited []string
	for _, t := range tasks {
		if _, ok := limits[t]; ok {
			limited = append(limited, t)
		} else {
			free = append(free, t)
		}
	}
	var jobs []*backend.Job
	var corrupt []*corruptError
	var quarantined []ended
	if len(free) > 0 {
		got, bad, q, err := claimTasks(ctx, tx, nil, req, free, queues, req.Limit, cd)
		if err != nil {
			return nil, b.wrap("claim", err)
		}
		jobs, corrupt, quarantined = append(jobs, got...), append(corrupt, bad...), append(quarantined, q...)
	}
	for _, t := range limited {
		want := req.Limit - len(jobs)
		if want <= 0 {
			break
		}
		l := limits[t]
		if l.MaxConcurrency > 0 {
			var running int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE state = 'running' AND task = ?`, t).Scan(&running); err != nil {
				return nil, b.wrap("claim: count running jobs of "+t, err)
			}
			want = min(want, l.MaxConcurrency-running)
		}
		rated := l.Rate > 0 && l.Per > 0
		if rated {
			var recent int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM task_starts WHERE task = ? AND at > ?`,
				t, now-int64(l.Per)).Scan(&recent); err != nil {
				return nil, b.wrap("claim: count recent starts of "+t, err)
			}
			want = min(want, l.Rate-recent)
		}
		if want <= 0 {
			continue
		}
		got, bad, q, err := claimTasks(ctx, tx, nil, req, []string{t}, queues, want, cd)
		if err != nil {
			return nil, b.wrap("claim", err)
		}
		jobs, corrupt, quarantined = append(jobs, got...), append(corrupt, bad...), append(quarantined, q...)
		if rated && len(got) > 0 {
			for range got {
				if _, err := tx.ExecContext(ctx, `INSERT INTO task_starts (task, at) VALUES (?, ?)`, t, now); err != nil {
					return nil, b.wrap("claim: record start of "+t, err)
				}
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM task_starts WHERE task = ? AND at <= ?`,
				t, now-int64(l.Per)-int64(startsSlack)); err != nil {
				return nil, b.wrap("claim: forget old starts of "+t, err)
			}
		}
	}
	if err := b.commitClaim(ctx, tx, quarantined, corrupt, cd); err != nil {
		return nil, err
	}
	if jobs == nil {
		jobs = []*backend.Job{}
	}
	slices.SortFunc(jobs, func(x, y *backend.Job) int {
		return cmp.Or(cmp.Compare(y.Priority, x.Priority), x.RunAt.Compare(y.RunAt), cmp.Compare(x.ID, y.ID))
	})
	return jobs, nil
}

// claimTasks leases up to limit ready jobs of tasks (and queues, when any)
// in tx with st (claimSQL of their shape, prepared; nil: compiled here). A
// row that cannot be decoded is quarantined (returned in corrupt, with the
// steps it ended in quarantined) and the claim goes on for the jobs it took
// the place of. The jobs it moves are recorded in cd.
func claimTasks(ctx context.Context, tx *sql.Tx, st *sql.Stmt, req backend.ClaimRequest, tasks, queues []string, limit int, cd counts) (jobs []*backend.Job, corrupt []*corruptError, quarantined []ended, err error) {
	shape := claimShape{arms: len(tasks), filter: len(queues)}
	now := nanos(req.Now)
	args := make([]any, 0, 4+len(tasks)+len(queues))
	args = append(args, req.Worker, nanos(req.Now.Add(req.LeaseFor)), now, limit)
	for _, t := range tasks {
		args = append(args, t)
	}
	for _, q := range queues {
		args = append(args, q)
	}
	jobs = make([]*backend.Job, 0, limit)
	sc := newClaimScanner()
	for len(jobs) < limit {
		args[3] = limit - len(jobs)
		var rows *sql.Rows
		if st != nil {
			rows, err = tx.StmtContext(ctx, st).QueryContext(ctx, args...)
		} else {
			rows, err = tx.QueryContext(ctx, claimSQL(shape), args...)
		}
		if err != nil {
			return nil, nil, nil, err
		}
		var bad []int64
		var badErr []*corruptError
		for rows.Next() {
			rowid, j, err := sc.scan(rows, &req)
			var ce *corruptError
			if errors.As(err, &ce) {
				bad, badErr = append(bad, rowid), append(badErr, ce)
				continue
			}
			if err != nil {
				rows.Close()
				return nil, nil, nil, fmt.Errorf("read row: %w", err)
			}
			jobs = append(jobs, j)
			cd.move(j.Queue, backend.StateQueued, backend.StateRunning, 1)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return nil, nil, nil, fmt.Errorf("read rows: %w", err)
		}
		if err := rows.Close(); err != nil {
			return nil, nil, nil, err
		}
		if len(bad) == 0 {
			break
		}
		for i, rowid := range bad {
			e, err := quarantineRow(ctx, tx, rowid, badErr[i].Error(), now, backend.StateQueued, cd)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("quarantine job %s: %w", badErr[i].id, err)
			}
			if e.id != "" {
				quarantined = append(quarantined, e)
			}
		}
		corrupt = append(corrupt, badErr...)
	}
	return jobs, corrupt, quarantined, nil
}
