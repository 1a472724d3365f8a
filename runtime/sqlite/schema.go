package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations are applied in order; migration i brings the schema to version i+1.
// Never edit a released one: append a new one.
//
// Times are INTEGER unix nanoseconds, 0 for the zero time, clamped to
// [backend.MinTime, backend.MaxTime] (the int64 range). attempts and
// error_chain are compact binary encodings (see encode.go): an attempt is
// appended with a blob concatenation, without reading the row first.
//
// Ready jobs are the 'queued' ones: Claim first promotes 'scheduled' and
// 'retrying' jobs whose run_at has come to 'queued' (through jobs_due), so the
// claim index (jobs_ready_task) holds only jobs that can run and a claim reads
// no more index entries than it takes, however many jobs wait for a later
// time. Each index is written on every enqueue and state change, so the
// schema keeps as few as the claims, the recovery and unique keys need.
var migrations = []string{
	`CREATE TABLE jobs (
		id             TEXT    NOT NULL UNIQUE,
		task           TEXT    NOT NULL,
		signature      TEXT    NOT NULL DEFAULT '',
		args           BLOB,
		queue          TEXT    NOT NULL,
		priority       INTEGER NOT NULL DEFAULT 0,
		state          TEXT    NOT NULL,
		attempt        INTEGER NOT NULL DEFAULT 0,
		max_attempts   INTEGER NOT NULL DEFAULT 1,
		run_at         INTEGER NOT NULL,
		timeout        INTEGER NOT NULL DEFAULT 0,
		timeout_policy TEXT    NOT NULL DEFAULT '',
		store_result   INTEGER NOT NULL DEFAULT 0,
		unique_key     TEXT,
		unique_until   INTEGER NOT NULL DEFAULT 0,
		created_at     INTEGER NOT NULL,
		started_at     INTEGER NOT NULL DEFAULT 0,
		finished_at    INTEGER NOT NULL DEFAULT 0,
		result         BLOB,
		error          TEXT    NOT NULL DEFAULT '',
		error_chain    BLOB,
		panic_stack    TEXT    NOT NULL DEFAULT '',
		attempts       BLOB,
		lease_owner    TEXT    NOT NULL DEFAULT '',
		lease_token    INTEGER NOT NULL DEFAULT 0,
		lease_until    INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX jobs_ready  ON jobs (queue, priority DESC, run_at, id) WHERE state = 'queued';
	CREATE INDEX jobs_due    ON jobs (run_at) WHERE state IN ('scheduled', 'retrying');
	CREATE INDEX jobs_lease  ON jobs (lease_until) WHERE state = 'running';
	CREATE INDEX jobs_unique ON jobs (unique_key, unique_until) WHERE unique_key IS NOT NULL;`,

	// Version 2: unique keys are scoped by task, so their index leads with
	// the task; jobs_ready_task serves claims limited to some tasks (arm by
	// arm, like jobs_ready serves claims by queue), its trailing queue column
	// answering a queue filter from the index.
	`DROP INDEX jobs_unique;
	CREATE INDEX jobs_unique ON jobs (task, unique_key, unique_until) WHERE unique_key IS NOT NULL;
	CREATE INDEX jobs_ready_task ON jobs (task, priority DESC, run_at, id, queue) WHERE state = 'queued';`,

	// Version 3: every claim reads jobs_ready_task (a claim of any task
	// lists the tasks with queued jobs first), so jobs_ready, which every
	// enqueue and claim also had to write, goes.
	`DROP INDEX jobs_ready;`,

	// Version 4: per-job metadata (backend.Job.Meta, see meta.go), NULL
	// when the job has none, so that jobs without it cost nothing more.
	`ALTER TABLE jobs ADD COLUMN meta BLOB;`,

	// Admin (see admin.go): the worker registry, paused queues, per-minute
	// aggregates of finished attempts (kept when jobs are purged), and an
	// index for listing the jobs an operator looks at most (failed,
	// cancelled, quarantined) newest first. It is written only when a job
	// enters or leaves those states, never by a claim or a success.
	`CREATE TABLE nuvom_workers (
		id             TEXT PRIMARY KEY,
		info           TEXT NOT NULL,
		last_heartbeat INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE nuvom_paused (
		queue     TEXT PRIMARY KEY,
		paused_at INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE nuvom_minutes (
		minute    INTEGER NOT NULL,
		queue     TEXT    NOT NULL,
		task      TEXT    NOT NULL,
		succeeded INTEGER NOT NULL DEFAULT 0,
		failed    INTEGER NOT NULL DEFAULT 0,
		retried   INTEGER NOT NULL DEFAULT 0,
		other     INTEGER NOT NULL DEFAULT 0,
		duration  INTEGER NOT NULL DEFAULT 0,
		-- h0..h15: the duration histogram (backend.DurationBuckets)
		h0 INTEGER NOT NULL DEFAULT 0,
		h1 INTEGER NOT NULL DEFAULT 0,
		h2 INTEGER NOT NULL DEFAULT 0,
		h3 INTEGER NOT NULL DEFAULT 0,
		h4 INTEGER NOT NULL DEFAULT 0,
		h5 INTEGER NOT NULL DEFAULT 0,
		h6 INTEGER NOT NULL DEFAULT 0,
		h7 INTEGER NOT NULL DEFAULT 0,
		h8 INTEGER NOT NULL DEFAULT 0,
		h9 INTEGER NOT NULL DEFAULT 0,
		h10 INTEGER NOT NULL DEFAULT 0,
		h11 INTEGER NOT NULL DEFAULT 0,
		h12 INTEGER NOT NULL DEFAULT 0,
		h13 INTEGER NOT NULL DEFAULT 0,
		h14 INTEGER NOT NULL DEFAULT 0,
		h15 INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (minute, queue, task)
	) WITHOUT ROWID;
	CREATE INDEX jobs_bad ON jobs (state, id) WHERE state IN ('failed', 'cancelled', 'quarantined');`,

	// Workflows (see workflow.go): steps waiting for their parents are jobs
	// in state 'pending', which no claim index holds. workflow_edges_open
	// holds the edges whose parent has not ended, so the release check a
	// completion makes is one probe of an empty index without workflows.
	`CREATE TABLE workflows (
		id         TEXT    NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE workflow_steps (
		job_id      TEXT    NOT NULL PRIMARY KEY,
		workflow_id TEXT    NOT NULL,
		seq         INTEGER NOT NULL,
		input       INTEGER NOT NULL,
		waiting     INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE INDEX workflow_steps_wf ON workflow_steps (workflow_id, seq);
	CREATE TABLE workflow_edges (
		parent         TEXT    NOT NULL,
		child          TEXT    NOT NULL,
		pos            INTEGER NOT NULL,
		ignore_failure INTEGER NOT NULL,
		order_only     INTEGER NOT NULL,
		done           INTEGER NOT NULL,
		PRIMARY KEY (parent, child)
	) WITHOUT ROWID;
	CREATE INDEX workflow_edges_child ON workflow_edges (child, pos);
	CREATE INDEX workflow_edges_open ON workflow_edges (parent) WHERE done = 0;`,

	// Flow control (see limits.go): per-task limits and the recent starts of
	// rate-limited tasks.
	`CREATE TABLE task_limits (
		task          TEXT    NOT NULL PRIMARY KEY,
		declared_conc INTEGER NOT NULL DEFAULT 0,
		declared_rate INTEGER NOT NULL DEFAULT 0,
		declared_per  INTEGER NOT NULL DEFAULT 0,
		has_override  INTEGER NOT NULL DEFAULT 0,
		override_conc INTEGER NOT NULL DEFAULT 0,
		override_rate INTEGER NOT NULL DEFAULT 0,
		override_per  INTEGER NOT NULL DEFAULT 0
	) WITHOUT ROWID;
	CREATE TABLE task_starts (
		task TEXT    NOT NULL,
		at   INTEGER NOT NULL
	);
	CREATE INDEX task_starts_task ON task_starts (task, at);`,

	// Hourly roll-up of nuvom_minutes (see admin.go): the same sums per
	// (hour, queue, task), written in the same transaction, so that a chart
	// of a day or a week reads hours, not every minute of it. Filled from
	// the minutes kept so far.
	`CREATE TABLE nuvom_hours (
		hour      INTEGER NOT NULL,
		queue     TEXT    NOT NULL,
		task      TEXT    NOT NULL,
		succeeded INTEGER NOT NULL DEFAULT 0,
		failed    INTEGER NOT NULL DEFAULT 0,
		retried   INTEGER NOT NULL DEFAULT 0,
		other     INTEGER NOT NULL DEFAULT 0,
		duration  INTEGER NOT NULL DEFAULT 0,
		h0 INTEGER NOT NULL DEFAULT 0,
		h1 INTEGER NOT NULL DEFAULT 0,
		h2 INTEGER NOT NULL DEFAULT 0,
		h3 INTEGER NOT NULL DEFAULT 0,
		h4 INTEGER NOT NULL DEFAULT 0,
		h5 INTEGER NOT NULL DEFAULT 0,
		h6 INTEGER NOT NULL DEFAULT 0,
		h7 INTEGER NOT NULL DEFAULT 0,
		h8 INTEGER NOT NULL DEFAULT 0,
		h9 INTEGER NOT NULL DEFAULT 0,
		h10 INTEGER NOT NULL DEFAULT 0,
		h11 INTEGER NOT NULL DEFAULT 0,
		h12 INTEGER NOT NULL DEFAULT 0,
		h13 INTEGER NOT NULL DEFAULT 0,
		h14 INTEGER NOT NULL DEFAULT 0,
		h15 INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (hour, queue, task)
	) WITHOUT ROWID;
	INSERT INTO nuvom_hours SELECT minute - minute % 3600000000000, queue, task, sum(succeeded), sum(failed),
		sum(retried), sum(other), sum(duration), sum(h0), sum(h1), sum(h2), sum(h3), sum(h4), sum(h5), sum(h6), sum(h7), sum(h8), sum(h9), sum(h10), sum(h11), sum(h12), sum(h13), sum(h14), sum(h15)
		FROM nuvom_minutes GROUP BY 1, 2, 3;`,

	// Counters of jobs per queue and state (see counts.go), filled from the
	// stored jobs.
	sqlCountsMigration,

	// jobs_bad's WHERE as ORs: SQLite evaluates a partial index's WHERE on
	// every write that changes state, and an IN list of more than two
	// values is coded as a lookup in a table built anew for each statement
	// run: about 5 µs per completion of a job, though none enters the index.
	// Queries using it repeat sqlBadStates. A process of an earlier build
	// still running against the file after this migration gets "no query
	// solution" from its search of failed, cancelled or quarantined jobs
	// (its statement names the index with the old WHERE) until it is
	// upgraded too; the index is rebuilt by one scan of the jobs, inside the
	// migration's transaction.
	`DROP INDEX jobs_bad;
	CREATE INDEX jobs_bad ON jobs (state, id) WHERE ` + sqlBadStates + `;`,

	// One fresh job enqueued by one statement (see insert.go): an insert
	// into this view runs the trigger, which stores the job and moves its
	// queue's counter, atomically as any single statement is, so that the
	// common single enqueue needs no explicit transaction (whose BEGIN,
	// COMMIT and database/sql bookkeeping cost about a third of its CPU).
	sqlEnqueueFreshMigration,

	// The workflow deletion rule (see wfgc.go): the steps, edges and
	// workflows that builds before it left when their jobs were deleted go,
	// once.
	sqlWorkflowGCMigration,
}

// sqlBadStates is jobs_bad's WHERE: the states an operator looks at most.
const sqlBadStates = `(state = 'failed' OR state = 'cancelled' OR state = 'quarantined')`

// migrate brings the database's schema to the latest version in one
// transaction, and refuses a database written by a newer Nuvom.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS nuvom_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create migrations table: %w", err)
	}
	var version int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM nuvom_migrations`).Scan(&version); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("migrate: database schema version %d is newer than this build supports (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO nuvom_migrations (version, applied_at) VALUES (?, ?)`,
			i+1, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("migrate to version %d: record: %w", i+1, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
