package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// maxClaimArms is the most queues (or tasks) a claim merges arm by arm;
// beyond it one filtered scan is sorted instead.
const maxClaimArms = 32

// jobArgs appends j's insert parameters (insertColumns order) to args.
func jobArgs(args []any, j *backend.Job) []any {
	return append(args, j.ID, j.Task, j.Signature, nullBytes(j.Args), j.Queue, j.Priority, string(j.State),
		j.Attempt, j.MaxAttempts, nanos(j.RunAt), int64(j.Timeout), string(j.TimeoutPolicy),
		boolInt(j.StoreResult), nullString(j.UniqueKey), nanos(j.UniqueUntil), nanos(j.CreatedAt),
		nanos(j.StartedAt), nanos(j.FinishedAt), nullBytes(j.Result), j.Error, encodeStrings(j.ErrorChain),
		j.PanicStack, encodeAttempts(j.Attempts), j.LeaseOwner, j.LeaseToken, nanos(j.LeaseUntil),
		encodeMeta(j.Meta))
}

func checkNew(j *backend.Job) error {
	switch {
	case j == nil:
		return errors.New("job is nil")
	case j.ID == "":
		return fmt.Errorf("job of task %q has no id", j.Task)
	case j.Task == "":
		return fmt.Errorf("job %s has no task name", j.ID)
	case j.Queue == "":
		return fmt.Errorf("job %s has no queue", j.ID)
	case j.State != backend.StateQueued && j.State != backend.StateScheduled:
		return fmt.Errorf("job %s: state %q is not queued or scheduled", j.ID, j.State)
	case j.RunAt.IsZero() || j.CreatedAt.IsZero():
		return fmt.Errorf("job %s: run-at and created times must be set", j.ID)
	}
	return nil
}

// Enqueue inserts jobs in one transaction: jobs without a unique key through
// prepared multi-row inserts (insertJobs), each job with one after looking its
// key up. One fresh job (freshJob) takes a single statement instead
// (enqueueFreshSQL), atomic without an explicit transaction.
func (b *Backend) Enqueue(ctx context.Context, jobs []*backend.Job) ([]backend.EnqueueResult, error) {
	if len(jobs) == 0 {
		return []backend.EnqueueResult{}, nil
	}
	for _, j := range jobs {
		if err := checkNew(j); err != nil {
			return nil, b.wrap("enqueue", err)
		}
	}
	if err := b.file.check(); err != nil { // replaced.go
		return nil, fmt.Errorf("sqlite enqueue: %w", err)
	}
	if len(jobs) == 1 && freshJob(jobs[0]) && b.stmts.enqueueFresh != nil {
		j := jobs[0]
		var args [freshColumnCount]any
		if _, err := b.stmts.enqueueFresh.ExecContext(ctx, freshArgs(args[:0], j)...); err != nil {
			return nil, b.wrapCtx(ctx, "enqueue", fmt.Errorf("insert %s: %w", j.ID, err))
		}
		b.notify.signal()
		return []backend.EnqueueResult{{ID: j.ID}}, nil
	}
	res := make([]backend.EnqueueResult, len(jobs))
	b.countStmts() // prepared before the transaction (counts.go)
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, b.wrapCtx(ctx, "enqueue: begin", err)
	}
	defer tx.Rollback()

	var plain []*backend.Job
	flush := func() error {
		err := b.insertJobs(ctx, tx, plain)
		plain = plain[:0]
		return err
	}
	for i, j := range jobs {
		res[i].ID = j.ID
		if j.UniqueKey == "" {
			plain = append(plain, j)
			continue
		}
		var existing string
		err := tx.StmtContext(ctx, b.stmts.unique).QueryRowContext(ctx, j.Task, j.UniqueKey, nanos(j.CreatedAt)).Scan(&existing)
		switch {
		case err == nil:
			res[i] = backend.EnqueueResult{ID: existing, Duplicate: true}
			continue
		case !errors.Is(err, sql.ErrNoRows):
			return nil, b.wrapCtx(ctx, "enqueue: look up unique key "+j.UniqueKey, err)
		}
		if err := b.insertJobs(ctx, tx, jobs[i:i+1]); err != nil {
			return nil, b.wrapCtx(ctx, "enqueue", err)
		}
	}
	if err := flush(); err != nil {
		return nil, b.wrapCtx(ctx, "enqueue", err)
	}
	cd := counts{}
	cd.countInserted(jobs, res)
	if err := b.addCounts(ctx, tx, cd); err != nil {
		return nil, b.wrapCtx(ctx, "enqueue", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, b.wrapCtx(ctx, "enqueue: commit", err)
	}
	b.notify.signal()
	return res, nil
}

// Claim promotes scheduled and retrying jobs whose time has come to queued,
// then leases jobs with one UPDATE ... RETURNING, all in one IMMEDIATE
// transaction. It returns what a worker runs a job with and its history
// (claimColumns), not the job's result, error or panic stack. A claimed row
// whose stored contents cannot be decoded is quarantined in the same
// transaction, left out of the result and logged, and the claim goes on for
// the jobs it leaves missing.
func (b *Backend) Claim(ctx context.Context, req backend.ClaimRequest) ([]*backend.Job, error) {
	if req.Limit <= 0 {
		return []*backend.Job{}, nil
	}
	if err := b.file.check(); err != nil { // replaced.go
		return nil, fmt.Errorf("sqlite claim: %w", err)
	}
	if jobs, handled, err := b.limitedClaim(ctx, req); handled { // limits.go
		return jobs, err
	}
	now := nanos(req.Now)
	queues := sortedSet(req.Queues)
	tasks := sortedSet(req.Tasks)
	if len(tasks) == 0 {
		// A claim of any task claims the tasks that have queued jobs, due
		// ones promoted first: claims read the one ready index,
		// jobs_ready_task, task by task. Jobs of a task first queued after
		// this list wait for the next claim.
		if err := b.promote(ctx, now); err != nil {
			return nil, err
		}
		var err error
		if tasks, err = readTasks(ctx, b.write); err != nil {
			return nil, b.wrap("claim: list tasks", err)
		}
		if len(tasks) == 0 {
			return []*backend.Job{}, nil
		}
	}
	shape := claimShape{arms: len(tasks), filter: len(queues)}
	// Prepared before the transaction: it needs the writer's one connection.
	st := b.stmts.taskClaimStmt(b.write, shape)
	b.countStmts() // likewise (counts.go)

	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, b.wrap("claim: begin", err)
	}
	defer tx.Rollback()
	cd := counts{}
	if err := b.promoteCounted(ctx, tx, now, cd); err != nil {
		return nil, b.wrap("claim", err)
	}
	jobs, corrupt, quarantined, err := claimTasks(ctx, tx, st, req, tasks, queues, req.Limit, cd)
	if err != nil {
		return nil, b.wrap("claim", err)
	}
	if err := b.commitClaim(ctx, tx, quarantined, corrupt, cd); err != nil {
		return nil, err
	}
	slices.SortFunc(jobs, func(x, y *backend.Job) int {
		return cmp.Or(cmp.Compare(y.Priority, x.Priority), x.RunAt.Compare(y.RunAt), cmp.Compare(x.ID, y.ID))
	})
	return jobs, nil
}

// commitClaim ends a claim's transaction: it settles the workflow steps of
// the jobs the claim quarantined, writes the claim's counter moves, commits,
// wakes subscribers when a step was released, and logs the rows quarantined.
func (b *Backend) commitClaim(ctx context.Context, tx *sql.Tx, quarantined []ended, corrupt []*corruptError, cd counts) error {
	released, err := b.settle(ctx, tx, quarantined, cd)
	if err != nil {
		return b.wrap("claim", err)
	}
	if err := b.addCounts(ctx, tx, cd); err != nil {
		return b.wrap("claim", err)
	}
	if err := tx.Commit(); err != nil {
		return b.wrap("claim: commit", err)
	}
	if released {
		b.notify.signal()
	}
	for _, ce := range corrupt {
		b.logCorrupt(ce)
	}
	return nil
}

// quarantineRow moves the row rowid to quarantined with reason as its error,
// ending any lease, and records in cd that it left state from. The row is
// named by rowid: its id may be what cannot be read.
func quarantineRow(ctx context.Context, tx *sql.Tx, rowid int64, reason string, now int64, from backend.State, cd counts) (ended, error) {
	var queue, id any
	err := tx.QueryRowContext(ctx, `UPDATE jobs SET state = 'quarantined', error = ?, finished_at = ?,
			lease_owner = '', lease_until = 0 WHERE rowid = ? RETURNING queue, id`, reason, now, rowid).Scan(&queue, &id)
	if err != nil {
		return ended{}, err
	}
	cd.move(countKeyOf(queue, string(from)).queue, from, backend.StateQuarantined, 1)
	// A workflow step's children settle as for any step that ended without
	// succeeding (an id too damaged to read has no children to find).
	sid, _ := id.(string)
	return ended{sid, backend.StateQuarantined, now}, nil
}

// logCorrupt reports a row that was quarantined because it cannot be decoded.
func (b *Backend) logCorrupt(ce *corruptError) {
	b.opts.logger.Warn("nuvom sqlite: quarantined a job whose stored row cannot be decoded",
		"job", ce.id, "db", b.path, "error", ce.Error())
}

// sortedSet returns the distinct values of names, sorted.
func sortedSet(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}

// promote makes scheduled and retrying jobs whose time has come queued.
func (b *Backend) promote(ctx context.Context, now int64) error {
	if err := b.promoteCounted(ctx, nil, now, nil); err != nil {
		return b.wrap("claim: promote due jobs", err)
	}
	return nil
}

// queryer is what readTasks reads through: the database or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// readTasks lists the tasks that have queued jobs.
func readTasks(ctx context.Context, db queryer) ([]string, error) {
	rows, err := db.QueryContext(ctx, sqlTasks)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var qs []string
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			return nil, err
		}
		qs = append(qs, q)
	}
	return qs, rows.Err()
}

// Extend moves the deadline of the leases still held; it returns the ids of
// the others.
func (b *Backend) Extend(ctx context.Context, leases []backend.Lease, until time.Time) ([]string, error) {
	lost := []string{}
	if len(leases) == 0 {
		return lost, nil
	}
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, b.wrap("extend: begin", err)
	}
	defer tx.Rollback()
	st := tx.StmtContext(ctx, b.stmts.extend)
	for _, l := range leases {
		res, err := st.ExecContext(ctx, nanos(until), l.JobID, l.Token)
		if err != nil {
			return nil, b.wrap("extend lease of "+l.JobID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, b.wrap("extend lease of "+l.JobID, err)
		} else if n == 0 {
			lost = append(lost, l.JobID)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, b.wrap("extend: commit", err)
	}
	return lost, nil
}

// completeStates are the states an Outcome may move a job to.
var completeStates = map[backend.State]bool{
	backend.StateSucceeded: true, backend.StateFailed: true, backend.StateRetrying: true,
	backend.StateCancelled: true, backend.StateQuarantined: true,
}

// Complete applies the outcomes of a batch in one transaction, in order: each
// updates its job only while its lease token holds, appends its attempt to
// the history and stores its result, through one prepared UPDATE per outcome
// (sqlCompleteOK for a plain success, else sqlComplete). One UPDATE per job
// costs SQLite less than one UPDATE ... FROM (VALUES ...) per batch, which
// materialises the join before it writes.
func (b *Backend) Complete(ctx context.Context, outcomes []backend.Outcome) ([]error, error) {
	errs := make([]error, len(outcomes))
	if len(outcomes) == 0 {
		return errs, nil
	}
	minuteSt := b.minuteStmt()
	b.countStmts() // prepared before the transaction (counts.go)
	cd := counts{}
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, b.wrap("complete: begin", err)
	}
	defer tx.Rollback()
	st := tx.StmtContext(ctx, b.stmts.complete)
	var stOK *sql.Stmt // prepared in the transaction at its first use
	args := make([]any, 0, completeParams)
	retrying := false
	valid := make([]int, 0, len(outcomes))             // indexes of applied outcomes
	where := make(map[string][2]string, len(outcomes)) // queue and task of applied jobs
	for i := range outcomes {
		o := &outcomes[i]
		if !completeStates[o.State] {
			errs[i] = fmt.Errorf("complete job %s: %q is not a state an attempt can end in", o.Lease.JobID, o.State)
			continue
		}
		queue, task := o.Queue, o.Task
		if queue == "" || task == "" {
			// The caller did not say (the worker always does): read them
			// for the aggregates; a job that is gone has lost its lease.
			err := tx.StmtContext(ctx, b.stmts.queueTask).QueryRowContext(ctx, o.Lease.JobID).Scan(&queue, &task)
			if errors.Is(err, sql.ErrNoRows) {
				errs[i] = leaseLost(o.Lease)
				continue
			}
			if err != nil {
				return nil, b.wrap("complete job "+o.Lease.JobID, err)
			}
		}
		var res sql.Result
		var err error
		if plainSuccess(o) {
			if stOK == nil {
				stOK = tx.StmtContext(ctx, b.stmts.completeOK)
			}
			res, err = stOK.ExecContext(ctx, nanos(o.FinishedAt), nullBytes(o.Result),
				appendAttempt(nil, o.Attempt), o.Lease.JobID, o.Lease.Token)
		} else {
			res, err = st.ExecContext(ctx, outcomeArgs(args[:0], o)...)
		}
		if err != nil {
			return nil, b.wrap("complete job "+o.Lease.JobID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, b.wrap("complete job "+o.Lease.JobID, err)
		} else if n == 0 {
			errs[i] = leaseLost(o.Lease)
			continue
		}
		valid = append(valid, i)
		cd.move(queue, backend.StateRunning, o.State, 1)
		where[o.Lease.JobID] = [2]string{queue, task}
		retrying = retrying || o.State == backend.StateRetrying
	}
	if err := b.addMinutes(ctx, tx, minuteSt, collectMinutes(outcomes, errs, valid, where)); err != nil {
		return nil, b.wrap("complete", err)
	}
	released, err := b.settle(ctx, tx, endedOutcomes(outcomes, errs), cd)
	if err != nil {
		return nil, b.wrap("complete", err)
	}
	if err := b.addCounts(ctx, tx, cd); err != nil {
		return nil, b.wrap("complete", err)
	}
	retrying = retrying || released
	if err := tx.Commit(); err != nil {
		return nil, b.wrap("complete: commit", err)
	}
	if retrying {
		b.notify.signal()
	}
	return errs, nil
}

func leaseLost(l backend.Lease) error {
	return fmt.Errorf("complete job %s with token %d: %w", l.JobID, l.Token, backend.ErrLeaseLost)
}

// plainSuccess reports whether o is a success without error or refund,
// which sqlCompleteOK applies.
func plainSuccess(o *backend.Outcome) bool {
	return o.State == backend.StateSucceeded && o.Error == "" && len(o.ErrorChain) == 0 &&
		o.PanicStack == "" && !o.Refund
}

// completeParams is the number of parameters of sqlComplete.
const completeParams = 11

// outcomeArgs appends o's parameters in sqlComplete's order.
func outcomeArgs(args []any, o *backend.Outcome) []any {
	var runAt, finished int64
	if o.State == backend.StateRetrying {
		runAt = nanos(o.RunAt)
		if runAt == 0 {
			runAt = nanos(o.FinishedAt)
		}
	} else {
		finished = nanos(o.FinishedAt)
	}
	return append(args, string(o.State), runAt, finished, nullBytes(o.Result), o.Error,
		encodeStrings(o.ErrorChain), o.PanicStack, appendAttempt(nil, o.Attempt),
		o.Lease.JobID, o.Lease.Token, boolInt(o.Refund))
}

// Release hands leased jobs back without spending an attempt; stale tokens are ignored.
func (b *Backend) Release(ctx context.Context, leases []backend.Lease) error {
	if len(leases) == 0 {
		return nil
	}
	b.countStmts() // prepared before the transaction (counts.go)
	cd := counts{}
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return b.wrap("release: begin", err)
	}
	defer tx.Rollback()
	st := tx.StmtContext(ctx, b.stmts.release)
	for _, l := range leases {
		var queue string
		if err := st.QueryRowContext(ctx, l.JobID, l.Token).Scan(&queue); err == nil {
			cd.move(queue, backend.StateRunning, backend.StateQueued, 1)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return b.wrap("release "+l.JobID, err)
		}
	}
	if err := b.addCounts(ctx, tx, cd); err != nil {
		return b.wrap("release", err)
	}
	if err := tx.Commit(); err != nil {
		return b.wrap("release: commit", err)
	}
	b.notify.signal()
	return nil
}

// sqlRecover ends an expired lease: ?1 the next state, ?2 run-at (0 keeps
// it), ?3 finished-at, ?4 the error, ?5 the lost attempt's record, ?6 rowid,
// ?7 the lease token. The lost attempt does not count: max_attempts grows by one.
const sqlRecover = `UPDATE jobs SET state = ?1,
		run_at = CASE WHEN ?2 <> 0 THEN ?2 ELSE run_at END, finished_at = ?3,
		max_attempts = max_attempts + 1,
		result = NULL, error = ?4, error_chain = NULL, panic_stack = '',
		attempts = CAST(coalesce(attempts, x'') || ?5 AS BLOB),
		lease_owner = '', lease_until = 0
	WHERE rowid = ?6 AND lease_token = ?7 AND state = 'running'`

// RecoverExpired records a "lost" attempt for each running job whose lease
// ended before now, which does not count against its attempt limit, and
// makes it retrying (run-at now) or, when its last maxLost attempts were all
// lost, failed. A row that cannot be decoded is quarantined and logged.
func (b *Backend) RecoverExpired(ctx context.Context, now time.Time, maxLost int) (int, error) {
	b.countStmts() // prepared before the transaction (counts.go)
	cd := counts{}
	tx, err := b.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, b.wrap("recover expired: begin", err)
	}
	defer tx.Rollback()
	type expired struct {
		rowid int64
		job   *backend.Job
	}
	rows, err := tx.QueryContext(ctx, `SELECT rowid, `+jobColumns+`
		FROM jobs WHERE state = 'running' AND lease_until < ?`, nanos(now))
	if err != nil {
		return 0, b.wrap("recover expired: find", err)
	}
	var found []expired
	var corrupt []*corruptError
	var bad []int64
	for rows.Next() {
		rowid, j, err := scanWithRowid(rows)
		var ce *corruptError
		if errors.As(err, &ce) {
			corrupt = append(corrupt, ce)
			bad = append(bad, rowid)
			continue
		}
		if err != nil {
			rows.Close()
			return 0, b.wrap("recover expired: read", err)
		}
		found = append(found, expired{rowid, j})
	}
	if err := rows.Err(); err != nil {
		return 0, b.wrap("recover expired: read", err)
	}
	rows.Close()
	var failed []ended // jobs ended here, whose workflow children settle
	for i, rowid := range bad {
		e, err := quarantineRow(ctx, tx, rowid, corrupt[i].Error(), nanos(now), backend.StateRunning, cd)
		if err != nil {
			return 0, b.wrap("recover expired: quarantine job "+corrupt[i].id, err)
		}
		if e.id != "" {
			failed = append(failed, e)
		}
	}
	retrying := false
	for _, e := range found {
		j := e.job
		lost, fail, msg := backend.RecoverLost(j, now, maxLost)
		state, runAt, finished := backend.StateRetrying, nanos(now), int64(0)
		if fail {
			state, runAt, finished = backend.StateFailed, 0, nanos(now)
			failed = append(failed, ended{j.ID, state, finished})
		} else {
			retrying = true
		}
		res, err := tx.ExecContext(ctx, sqlRecover, string(state), runAt, finished, msg,
			appendAttempt(nil, lost), e.rowid, j.LeaseToken)
		if err != nil {
			return 0, b.wrap("recover expired job "+j.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return 0, b.wrap("recover expired job "+j.ID, err)
		} else {
			cd.move(j.Queue, backend.StateRunning, state, n)
		}
	}
	if released, err := b.settle(ctx, tx, failed, cd); err != nil {
		return 0, b.wrap("recover expired", err)
	} else if released {
		retrying = true
	}
	if err := b.addCounts(ctx, tx, cd); err != nil {
		return 0, b.wrap("recover expired", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, b.wrap("recover expired: commit", err)
	}
	for _, ce := range corrupt {
		b.logCorrupt(ce)
	}
	if retrying {
		b.notify.signal()
	}
	return len(found), nil
}
