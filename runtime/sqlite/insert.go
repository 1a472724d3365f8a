package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/nuvom/nuvom/runtime/backend"
)

// freshColumns are the columns an insert of a fresh job binds (freshJob):
// every other column is at its default (zero, empty or NULL), which SQLite
// fills in without a bound value. Binding 13 values per job instead of 26
// halves the driver's work per row of an enqueue.
const freshColumns = `id, task, signature, args, queue, priority, state, max_attempts,
	run_at, timeout, timeout_policy, store_result, created_at`

const freshColumnCount = 13

// freshJob reports whether every column freshColumns leaves out is at its
// default for j: no attempt, history, result, error, lease, unique key or
// metadata, as
// a job the client enqueues has.
func freshJob(j *backend.Job) bool {
	return j.Attempt == 0 && j.UniqueKey == "" && j.UniqueUntil.IsZero() && j.StartedAt.IsZero() &&
		j.FinishedAt.IsZero() && len(j.Result) == 0 && j.Error == "" && len(j.ErrorChain) == 0 &&
		j.PanicStack == "" && len(j.Attempts) == 0 && j.LeaseOwner == "" && j.LeaseToken == 0 &&
		j.LeaseUntil.IsZero() && len(j.Meta) == 0
}

// freshArgs appends j's insert parameters in freshColumns order to args.
func freshArgs(args []any, j *backend.Job) []any {
	return append(args, j.ID, j.Task, j.Signature, nullBytes(j.Args), j.Queue, j.Priority, string(j.State),
		j.MaxAttempts, nanos(j.RunAt), int64(j.Timeout), string(j.TimeoutPolicy), boolInt(j.StoreResult),
		nanos(j.CreatedAt))
}

func insertFreshSQL(rows int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO jobs (" + freshColumns + ") VALUES ")
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", freshColumnCount), ",") + ")"
	for i := range rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(row)
	}
	return sb.String()
}

// sqlEnqueueFreshMigration creates enqueue_fresh: a view of the columns of a
// fresh job whose INSTEAD OF trigger inserts the job and adds it to the
// counters (counts.go) of its queue and state, as Enqueue's transaction
// would. Appended to migrations in schema.go.
const sqlEnqueueFreshMigration = `CREATE VIEW enqueue_fresh AS SELECT ` + freshColumns + ` FROM jobs;
	CREATE TRIGGER enqueue_fresh_insert INSTEAD OF INSERT ON enqueue_fresh BEGIN
		INSERT INTO jobs (` + freshColumns + `) VALUES (NEW.id, NEW.task, NEW.signature, NEW.args,
			NEW.queue, NEW.priority, NEW.state, NEW.max_attempts, NEW.run_at, NEW.timeout,
			NEW.timeout_policy, NEW.store_result, NEW.created_at);
		INSERT INTO nuvom_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
			ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
	END;`

// enqueueFreshSQL enqueues one fresh job (freshArgs) through enqueue_fresh.
func enqueueFreshSQL() string {
	return "INSERT INTO enqueue_fresh (" + freshColumns + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?,", freshColumnCount), ",") + ")"
}

// prepareFresh prepares the enqueue of one fresh job and the multi-row
// inserts of fresh jobs, one per batch size.
func (s *stmts) prepareFresh(db *sql.DB, readOnly bool) error {
	// A database opened read-only may predate enqueue_fresh: its Enqueue
	// (which fails anyway) then takes the transaction.
	st, err := db.Prepare(enqueueFreshSQL())
	switch {
	case err == nil:
		s.enqueueFresh = st
	case !readOnly:
		return fmt.Errorf("prepare the enqueue of one fresh job: %w", err)
	}
	s.insertFreshN = map[int]*sql.Stmt{}
	for _, n := range batchSizes {
		st, err := db.Prepare(insertFreshSQL(n))
		if err != nil {
			return fmt.Errorf("prepare insert of %d fresh jobs: %w", n, err)
		}
		s.insertFreshN[n] = st
	}
	return nil
}

// insertJobs inserts jobs (none with a unique key to look up) through the
// prepared multi-row inserts: fresh jobs through the narrow ones, the others
// with every column. tx nil runs the statements outside a transaction (one
// statement is atomic by itself).
func (b *Backend) insertJobs(ctx context.Context, tx *sql.Tx, jobs []*backend.Job) error {
	var fresh, full []*backend.Job
	for _, j := range jobs {
		if freshJob(j) {
			fresh = append(fresh, j)
		} else {
			full = append(full, j)
		}
	}
	for _, part := range []struct {
		jobs  []*backend.Job
		width int
		stmts map[int]*sql.Stmt
		args  func([]any, *backend.Job) []any
	}{
		{fresh, freshColumnCount, b.stmts.insertFreshN, freshArgs},
		{full, insertColumnCount, b.stmts.insertN, jobArgs},
	} {
		if len(part.jobs) == 0 {
			continue
		}
		args := make([]any, 0, part.width*chunk(len(part.jobs)))
		for rest := part.jobs; len(rest) > 0; {
			n := chunk(len(rest))
			args = args[:0]
			for _, j := range rest[:n] {
				args = part.args(args, j)
			}
			st := part.stmts[n]
			if tx != nil {
				st = tx.StmtContext(ctx, st)
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				if n == 1 {
					return fmt.Errorf("insert %s: %w", rest[0].ID, err)
				}
				return fmt.Errorf("insert %d jobs from %s: %w", n, rest[0].ID, err)
			}
			rest = rest[n:]
		}
	}
	return nil
}
