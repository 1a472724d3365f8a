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
	lease_owner, lease_token, lease_until`

const insertColumnCount = 26

// stmts are the writer connection's prepared statements.
type stmts struct {
	insertN   map[int]*sql.Stmt // multi-row inserts by row count (batchSizes)
	unique    *sql.Stmt
	promote   *sql.Stmt
	readN     *sql.Stmt // the claimed jobs' rows, by rowid (sqlReadClaimed)
	dequeue   *sql.Stmt // deletes the queue rows of ended attempts (sqlDequeue)
	requeue   *sql.Stmt // makes a queue row retrying (sqlRequeue)
	extend    *sql.Stmt
	release   *sql.Stmt
	completeN map[int]*sql.Stmt // by batch size (completeSizes), read-only after prepare

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
	sqlPromote = `UPDATE queue SET state = 'queued'
		WHERE state IN ('scheduled', 'retrying') AND run_at <= ?`
	// sqlReadClaimed reads the jobs whose rowids ?1 lists as a JSON array.
	sqlReadClaimed = `SELECT j.rowid, ` + jobColumns + `
		FROM json_each(?1) e JOIN jobs j ON j.rowid = e.value LEFT JOIN queue q ON q.job = j.rowid`
	// sqlDequeue deletes the queue rows whose job rowids ?1 lists as a JSON array.
	sqlDequeue = `DELETE FROM queue WHERE job IN (SELECT value FROM json_each(?1))`
	// sqlRequeue makes job ?2's queue row retrying at ?1, its lease ended.
	sqlRequeue = `UPDATE queue SET state = 'retrying', run_at = ?1, lease_owner = '', lease_until = 0
		WHERE job = ?2`
	sqlExtend = `UPDATE queue SET lease_until = ?
		WHERE job = (SELECT rowid FROM jobs WHERE id = ?) AND lease_token = ? AND state = 'running'`
	sqlRelease = `UPDATE queue SET state = 'queued', attempt = max(attempt - 1, 0),
			lease_owner = '', lease_until = 0
		WHERE job = (SELECT rowid FROM jobs WHERE id = ?) AND lease_token = ? AND state = 'running'`
)

func (s *stmts) prepare(db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.unique, sqlUnique},
		{&s.promote, sqlPromote},
		{&s.readN, sqlReadClaimed},
		{&s.dequeue, sqlDequeue},
		{&s.requeue, sqlRequeue},
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
	s.completeN = map[int]*sql.Stmt{}
	for _, n := range batchSizes {
		st, err := db.Prepare(completeBatchSQL(n))
		if err != nil {
			s.close()
			return fmt.Errorf("prepare complete of %d jobs: %w", n, err)
		}
		s.completeN[n] = st
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
	for _, st := range []*sql.Stmt{s.unique, s.promote, s.readN, s.dequeue, s.requeue, s.extend, s.release} {
		if st != nil {
			st.Close()
		}
	}
	for _, st := range s.completeN {
		st.Close()
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

// claimSQL is the statement that leases jobs, on their queue rows.
// Parameters: ?1 worker, ?2 lease until, ?3 now, ?4 limit, then ?5.. the task
// names of the arms, then the queue names of the filter. Each arm's
// candidates are read in index order from queue_ready, at most limit entries
// each, the queue filter answered from the index; with several arms they are
// merged by the same order. Beyond maxClaimArms arms one filtered scan is
// sorted instead. It returns the leased jobs' rowids; their rows are read
// with sqlReadClaimed.
func claimSQL(c claimShape) string {
	var filter string
	if c.filter > 0 {
		ph := make([]string, c.filter)
		for i := range ph {
			ph[i] = fmt.Sprintf("?%d", 5+c.arms+i)
		}
		filter = " AND queue IN (" + strings.Join(ph, ",") + ")"
	}
	var pick string
	switch {
	case c.arms > maxClaimArms:
		ph := make([]string, c.arms)
		for i := range ph {
			ph[i] = fmt.Sprintf("?%d", 5+i)
		}
		pick = `SELECT job FROM queue WHERE state = 'queued' AND run_at <= ?3
			AND task IN (` + strings.Join(ph, ",") + `)` + filter + `
			ORDER BY priority DESC, run_at, id LIMIT ?4`
	case c.arms == 1:
		pick = fmt.Sprintf(`SELECT job FROM queue
			WHERE state = 'queued' AND task = ?5 AND run_at <= ?3%s
			ORDER BY priority DESC, run_at, id LIMIT ?4`, filter)
	default:
		arms := make([]string, c.arms)
		for i := range arms {
			arms[i] = fmt.Sprintf(`SELECT * FROM (SELECT job AS r, priority AS p, run_at AS t, id AS i FROM queue
			WHERE state = 'queued' AND task = ?%d AND run_at <= ?3%s
			ORDER BY priority DESC, run_at, id LIMIT ?4)`, 5+i, filter)
		}
		pick = `SELECT r FROM (` + strings.Join(arms, "\nUNION ALL\n") + `
			ORDER BY p DESC, t, i LIMIT ?4)`
	}
	return `UPDATE queue SET state = 'running', attempt = attempt + 1, lease_token = lease_token + 1,
			lease_owner = ?1, lease_until = ?2, started_at = ?3
		WHERE job IN (` + pick + `)
		RETURNING job`
}

// sqlTasks lists the distinct tasks holding queued jobs by skipping through
// queue_ready: one index seek per task, not a scan of the jobs.
const sqlTasks = `WITH RECURSIVE t(name) AS (
		SELECT (SELECT min(task) FROM queue WHERE state = 'queued')
		UNION ALL
		SELECT (SELECT min(task) FROM queue WHERE state = 'queued' AND task > t.name)
		FROM t WHERE t.name IS NOT NULL)
	SELECT name FROM t WHERE name IS NOT NULL`

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// batchSizes are the row counts of the prepared multi-row inserts and batch
// completions, largest first: a batch is applied as a sum of them (1,000 jobs
// as 3×256 + 3×64 + 2×16 + 2×4), so no statement is compiled per call. 256
// rows of 26 parameters stay well under SQLite's 32,766-parameter limit.
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

// completeParams is the number of parameters per outcome in completeBatchSQL.
const completeParams = 12

// completeBatchSQL applies n outcomes with one UPDATE of jobs ... FROM
// (VALUES ...), queue: each row, in parameter order: the job's rowid when
// known (NULL: found by its id), its id, lease token, state, run-at (0 keeps
// it), finished-at, result, error, error chain, panic stack, attempt record,
// refund (1 gives the attempt back). Only rows whose id matches and whose
// queue row still holds the lease match; the lease's final values are copied
// from the queue row, and RETURNING names the rows written. The caller then
// deletes (sqlDequeue) or requeues (sqlRequeue) their queue rows in the same
// transaction.
func completeBatchSQL(n int) string {
	var sb strings.Builder
	sb.WriteString(`UPDATE jobs SET state = v.column4,
			run_at = CASE WHEN v.column5 <> 0 THEN v.column5 ELSE q.run_at END,
			finished_at = v.column6, result = v.column7, error = v.column8,
			error_chain = v.column9, panic_stack = v.column10,
			attempts = CAST(coalesce(jobs.attempts, x'') || v.column11 AS BLOB),
			max_attempts = jobs.max_attempts + v.column12,
			attempt = q.attempt, lease_token = q.lease_token, started_at = q.started_at,
			lease_owner = '', lease_until = 0
		FROM (VALUES `)
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", completeParams), ",") + ")"
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(row)
	}
	sb.WriteString(`) AS v, queue AS q
		WHERE jobs.rowid = coalesce(v.column1, (SELECT k.rowid FROM jobs AS k WHERE k.id = v.column2))
			AND jobs.id = v.column2 AND q.job = jobs.rowid AND q.lease_token = v.column3 AND q.state = 'running'
		RETURNING jobs.rowid, jobs.id`)
	return sb.String()
}
