package sqlite

import (
	"database/sql"
	"fmt"
	"strings"
	"sync"
)

// insertColumns is the column list of an insert, matching jobArgs.
const insertColumns = `id, task, signature, args, queue, priority, state, attempt, max_attempts,
	run_at, timeout, timeout_policy, store_result, unique_key, unique_until, created_at,
	started_at, finished_at, result, error, error_chain, panic_stack, attempts,
	lease_owner, lease_token, lease_until, meta`

const insertColumnCount = 27

// stmts are the writer connection's prepared statements.
type stmts struct {
	insertN map[int]*sql.Stmt // multi-row inserts by row count (batchSizes)
	// insertFreshN are the multi-row inserts of fresh jobs (see insert.go).
	insertFreshN map[int]*sql.Stmt
	enqueueFresh *sql.Stmt // one fresh job, in one statement (enqueueFreshSQL)
	unique       *sql.Stmt
	promote      *sql.Stmt
	complete     *sql.Stmt
	completeOK   *sql.Stmt // sqlCompleteOK (see Complete)
	queueTask    *sql.Stmt // a job's queue and task, for an outcome that does not carry them
	extend       *sql.Stmt
	release      *sql.Stmt

	mu         sync.Mutex
	claimTasks map[claimShape]*sql.Stmt // claims, prepared at first use
}

func insertSQL(rows int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO jobs (" + insertColumns + ") VALUES ")
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", insertColumnCount), ",") + ")"
	for i := range rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(row)
	}
	return sb.String()
}

const (
	sqlUnique = `SELECT id FROM jobs WHERE task = ? AND unique_key = ? AND unique_until > ?
		ORDER BY unique_until DESC LIMIT 1`
	sqlPromote = `UPDATE jobs SET state = 'queued'
		WHERE state IN ('scheduled', 'retrying') AND run_at <= ?`
	// sqlComplete applies one outcome (see outcomeArgs): ?1 state, ?2 run-at
	// (0 keeps it), ?3 finished-at, ?4 result, ?5 error, ?6 error chain, ?7
	// panic stack, ?8 the attempt record appended to the history, ?9 id, ?10
	// lease token, ?11 1 to refund the attempt. It matches only while the
	// lease holds.
	sqlComplete = `UPDATE jobs SET state = ?1,
			run_at = CASE WHEN ?2 <> 0 THEN ?2 ELSE run_at END,
			finished_at = ?3, result = ?4, error = ?5, error_chain = ?6, panic_stack = ?7,
			attempts = CAST(coalesce(attempts, x'') || ?8 AS BLOB),
			max_attempts = max_attempts + ?11,
			lease_owner = '', lease_until = 0
		WHERE id = ?9 AND lease_token = ?10 AND state = 'running'`
	// sqlCompleteOK is sqlComplete for the common outcome, a success
	// without error or refund, binding 5 values instead of 11: ?1
	// finished-at, ?2 result, ?3 the attempt record, ?4 id, ?5 lease token.
	sqlCompleteOK = `UPDATE jobs SET state = 'succeeded', finished_at = ?1, result = ?2,
			error = '', error_chain = NULL, panic_stack = '',
			attempts = CAST(coalesce(attempts, x'') || ?3 AS BLOB),
			lease_owner = '', lease_until = 0
		WHERE id = ?4 AND lease_token = ?5 AND state = 'running'`
	sqlExtend = `UPDATE jobs SET lease_until = ?
		WHERE id = ? AND lease_token = ? AND state = 'running'`
	sqlRelease = `UPDATE jobs SET state = 'queued', attempt = max(attempt - 1, 0),
			lease_owner = '', lease_until = 0
		WHERE id = ? AND lease_token = ? AND state = 'running'
		RETURNING queue`
)

// prepare prepares the statements on db; readOnly tolerates a schema from
// before the statements that only writes use (see prepareFresh).
func (s *stmts) prepare(db *sql.DB, readOnly bool) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.unique, sqlUnique},
		{&s.promote, sqlPromote},
		{&s.complete, sqlComplete},
		{&s.completeOK, sqlCompleteOK},
		{&s.queueTask, `SELECT queue, task FROM jobs WHERE id = ?`},
		{&s.extend, sqlExtend},
		{&s.release, sqlRelease},
	} {
		st, err := db.Prepare(p.sql)
		if err != nil {
			s.close()
			return fmt.Errorf("prepare %q: %w", firstLine(p.sql), err)
		}
		*p.dst = st
	}
	s.insertN = map[int]*sql.Stmt{}
	for _, n := range batchSizes {
		st, err := db.Prepare(insertSQL(n))
		if err != nil {
			s.close()
			return fmt.Errorf("prepare insert of %d jobs: %w", n, err)
		}
		s.insertN[n] = st
	}
	if err := s.prepareFresh(db, readOnly); err != nil {
		s.close()
		return err
	}
	s.claimTasks = map[claimShape]*sql.Stmt{}
	return nil
}

// maxTaskClaimStmts bounds the claims kept prepared: a worker asks with the
// same tasks and queues every time, so a few shapes cover it.
const maxTaskClaimStmts = 32

// taskClaimStmt returns the claim statement of shape,
// preparing it on db at its first use while fewer than maxTaskClaimStmts are
// kept; nil means compile it for this call. Call it outside a transaction of
// db's single connection: preparing needs that connection.
func (s *stmts) taskClaimStmt(db *sql.DB, shape claimShape) *sql.Stmt {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.claimTasks[shape]; st != nil || s.claimTasks == nil || len(s.claimTasks) >= maxTaskClaimStmts {
		return st
	}
	st, err := db.Prepare(claimSQL(shape))
	if err != nil {
		return nil // the claim compiles it itself and reports the error
	}
	s.claimTasks[shape] = st
	return st
}

func (s *stmts) close() {
	for _, st := range s.insertN {
		st.Close()
	}
	for _, st := range s.insertFreshN {
		st.Close()
	}
	for _, st := range []*sql.Stmt{s.enqueueFresh, s.unique, s.promote, s.complete, s.completeOK, s.queueTask, s.extend, s.release} {
		if st != nil {
			st.Close()
		}
	}
	s.mu.Lock()
	for _, st := range s.claimTasks {
		st.Close()
	}
	s.claimTasks = nil
	s.mu.Unlock()
}

// claimShape describes one claim statement: arms tasks read from the index
// one by one and merged, and filter queues that the jobs must be in (0: any
// queue).
type claimShape struct {
	arms   int
	filter int
}

// claimSQL is the one statement that leases jobs. Parameters: ?1 worker, ?2
// lease until, ?3 now, ?4 limit, then ?5.. the task names of the arms, then
// the queue names of the filter. Each arm's candidates are read in index
// order from jobs_ready_task, at most limit entries each, the queue filter
// answered from the index; with several arms they are merged by the same
// order. Beyond maxClaimArms arms one filtered scan is sorted instead.
func claimSQL(c claimShape) string {
	const col = "task"
	// Jobs of paused queues (see admin.go) are never claimed.
	filter := " AND queue NOT IN (SELECT queue FROM nuvom_paused)"
	if c.filter > 0 {
		ph := make([]string, c.filter)
		for i := range ph {
			ph[i] = fmt.Sprintf("?%d", 5+c.arms+i)
		}
		filter += " AND queue IN (" + strings.Join(ph, ",") + ")"
	}
	var pick string
	switch {
	case c.arms > maxClaimArms:
		ph := make([]string, c.arms)
		for i := range ph {
			ph[i] = fmt.Sprintf("?%d", 5+i)
		}
		pick = `SELECT rowid FROM jobs WHERE state = 'queued' AND run_at <= ?3
			AND ` + col + ` IN (` + strings.Join(ph, ",") + `)` + filter + `
			ORDER BY priority DESC, run_at, id LIMIT ?4`
	case c.arms == 1:
		pick = fmt.Sprintf(`SELECT rowid FROM jobs
			WHERE state = 'queued' AND %s = ?5 AND run_at <= ?3%s
			ORDER BY priority DESC, run_at, id LIMIT ?4`, col, filter)
	default:
		arms := make([]string, c.arms)
		for i := range arms {
			arms[i] = fmt.Sprintf(`SELECT * FROM (SELECT rowid AS r, priority AS p, run_at AS t, id AS i FROM jobs
			WHERE state = 'queued' AND %s = ?%d AND run_at <= ?3%s
			ORDER BY priority DESC, run_at, id LIMIT ?4)`, col, 5+i, filter)
		}
		pick = `SELECT r FROM (` + strings.Join(arms, "\nUNION ALL\n") + `
			ORDER BY p DESC, t, i LIMIT ?4)`
	}
	return `UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_token = lease_token + 1,
			lease_owner = ?1, lease_until = ?2, started_at = ?3
		WHERE rowid IN (` + pick + `)
		RETURNING rowid, ` + claimColumns
}

// sqlTasks lists the distinct tasks holding queued jobs by skipping through
// jobs_ready_task: one index seek per task, not a scan of the jobs.
const sqlTasks = `WITH RECURSIVE q(name) AS (
		SELECT (SELECT min(task) FROM jobs WHERE state = 'queued')
		UNION ALL
		SELECT (SELECT min(task) FROM jobs WHERE state = 'queued' AND task > q.name)
		FROM q WHERE q.name IS NOT NULL)
	SELECT name FROM q WHERE name IS NOT NULL`

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// batchSizes are the row counts of the prepared multi-row inserts, largest
// first: a batch is applied as a sum of them (1,000 jobs
// as 3×256 + 3×64 + 2×16 + 2×4), so no statement is compiled per call. 256
// rows of 27 parameters stay well under SQLite's 32,766-parameter limit.
var batchSizes = []int{256, 64, 16, 4, 1}

// chunk returns the largest of batchSizes that is at most n (n > 0).
func chunk(n int) int {
	for _, size := range batchSizes {
		if size <= n {
			return size
		}
	}
	return 1
}
