package sqlite

import (
	"database/sql"
	"fmt"
	"strings"
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
	complete  *sql.Stmt
	extend    *sql.Stmt
	release   *sql.Stmt
	claim     map[int]*sql.Stmt // by number of queues, read-only after prepare
	completeN map[int]*sql.Stmt // by batch size (completeSizes), read-only after prepare
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
	sqlUnique = `SELECT id FROM jobs WHERE unique_key = ? AND unique_until > ?
		ORDER BY unique_until DESC LIMIT 1`
	sqlPromote = `UPDATE jobs SET state = 'queued'
		WHERE state IN ('scheduled', 'retrying') AND run_at <= ?`
	sqlComplete = `UPDATE jobs SET state = ?1,
			run_at = CASE WHEN ?2 <> 0 THEN ?2 ELSE run_at END,
			finished_at = ?3, result = ?4, error = ?5, error_chain = ?6, panic_stack = ?7,
			attempts = CAST(coalesce(attempts, x'') || ?8 AS BLOB),
			lease_owner = '', lease_until = 0
		WHERE id = ?9 AND lease_token = ?10 AND state = 'running'`
	sqlExtend = `UPDATE jobs SET lease_until = ?
		WHERE id = ? AND lease_token = ? AND state = 'running'`
	sqlRelease = `UPDATE jobs SET state = 'queued', attempt = max(attempt - 1, 0),
			lease_owner = '', lease_until = 0
		WHERE id = ? AND lease_token = ? AND state = 'running'`
)

func (s *stmts) prepare(db *sql.DB) error {
	s.claim = map[int]*sql.Stmt{}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.unique, sqlUnique},
		{&s.promote, sqlPromote},
		{&s.complete, sqlComplete},
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
	for n := 1; n <= preparedClaimArms; n++ {
		st, err := db.Prepare(claimSQL(n))
		if err != nil {
			s.close()
			return fmt.Errorf("prepare claim of %d queues: %w", n, err)
		}
		s.claim[n] = st
	}
	return nil
}

// preparedClaimArms is how many queues the claims prepared at Open cover;
// claims of more queues compile their statement each time.
const preparedClaimArms = 4

// claimStmt returns the prepared claim for n queues, or nil when none is.
func (s *stmts) claimStmt(n int) *sql.Stmt {
	return s.claim[n]
}

func (s *stmts) close() {
	for _, st := range s.insertN {
		st.Close()
	}
	for _, st := range []*sql.Stmt{s.unique, s.promote, s.complete, s.extend, s.release} {
		if st != nil {
			st.Close()
		}
	}
	for _, st := range s.claim {
		st.Close()
	}
	for _, st := range s.completeN {
		st.Close()
	}
}

// claimSQL is the one statement that leases jobs from n queues. Parameters:
// ?1 worker, ?2 lease until, ?3 now, ?4 limit, ?5.. the queue names. Each
// queue's candidates are read in index order from jobs_ready (at most limit
// entries each); with several queues they are merged by the same order.
func claimSQL(n int) string {
	arm := func(q int) string {
		return fmt.Sprintf(`SELECT rowid AS r, priority AS p, run_at AS t, id AS i FROM jobs
			WHERE state = 'queued' AND queue = ?%d AND run_at <= ?3
			ORDER BY priority DESC, run_at, id LIMIT ?4`, q)
	}
	var pick string
	if n == 1 {
		pick = `SELECT r FROM (` + arm(5) + `)`
	} else {
		arms := make([]string, n)
		for i := range n {
			arms[i] = `SELECT * FROM (` + arm(5+i) + `)`
		}
		pick = `SELECT r FROM (` + strings.Join(arms, "\nUNION ALL\n") + `
			ORDER BY p DESC, t, i LIMIT ?4)`
	}
	return `UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_token = lease_token + 1,
			lease_owner = ?1, lease_until = ?2, started_at = ?3
		WHERE rowid IN (` + pick + `)
		RETURNING ` + jobColumns
}

// sqlQueues lists the distinct queues holding queued jobs by skipping through
// jobs_ready: one index seek per queue, not a scan of the jobs.
const sqlQueues = `WITH RECURSIVE q(name) AS (
		SELECT (SELECT min(queue) FROM jobs WHERE state = 'queued')
		UNION ALL
		SELECT (SELECT min(queue) FROM jobs WHERE state = 'queued' AND queue > q.name)
		FROM q WHERE q.name IS NOT NULL)
	SELECT name FROM q WHERE name IS NOT NULL`

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
const completeParams = 10

// completeBatchSQL applies n outcomes with one UPDATE ... FROM (VALUES ...):
// each row, in parameter order: id, lease token, state, run-at (0 keeps it),
// finished-at, result, error, error chain, panic stack, attempt record. Only
// rows whose lease still holds match; RETURNING names them.
func completeBatchSQL(n int) string {
	var sb strings.Builder
	sb.WriteString(`UPDATE jobs SET state = v.column3,
			run_at = CASE WHEN v.column4 <> 0 THEN v.column4 ELSE jobs.run_at END,
			finished_at = v.column5, result = v.column6, error = v.column7,
			error_chain = v.column8, panic_stack = v.column9,
			attempts = CAST(coalesce(jobs.attempts, x'') || v.column10 AS BLOB),
			lease_owner = '', lease_until = 0
		FROM (VALUES `)
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", completeParams), ",") + ")"
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(row)
	}
	sb.WriteString(`) AS v
		WHERE jobs.id = v.column1 AND jobs.lease_token = v.column2 AND jobs.state = 'running'
		RETURNING jobs.id`)
	return sb.String()
}
