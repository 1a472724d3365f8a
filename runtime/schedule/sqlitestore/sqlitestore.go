// Package sqlitestore keeps schedules in SQLite: its own tables in the same
// database file as the queue (modernc.org/sqlite, WAL), so that several
// dispatcher processes on one machine share them.
package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/nuvom/nuvom/runtime/schedule"
)

const schema = `
CREATE TABLE IF NOT EXISTS nuvom_schedules (
	id       TEXT PRIMARY KEY,
	next_run INTEGER NOT NULL, -- unix nanoseconds, 0 when none is left
	paused   INTEGER NOT NULL,
	data     TEXT NOT NULL     -- the whole schedule as JSON
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nuvom_annotation_sets (
	fingerprint TEXT PRIMARY KEY,
	generation  INTEGER NOT NULL UNIQUE,
	first_seen  INTEGER NOT NULL -- unix nanoseconds
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nuvom_scheduler_lease (
	name  TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	until INTEGER NOT NULL     -- unix nanoseconds
) WITHOUT ROWID;`

// Store is a schedule.Store over a SQLite database.
type Store struct {
	db   *sql.DB
	path string
}

var _ schedule.Store = (*Store)(nil)

// Open opens (creating if needed) the schedule tables in the database at path.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open sqlite schedule store: path is empty")
	}
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open sqlite schedule store %s: path must not contain '?'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open sqlite schedule store %s: create directory: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite schedule store %s: %w", path, err)
	}
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode = WAL`).Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, fmt.Errorf("open sqlite schedule store %s: journal mode is %q, want wal: %v", path, mode, err)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite schedule store %s: create tables: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func decode(data string) (schedule.Schedule, error) {
	var sc schedule.Schedule
	if err := json.Unmarshal([]byte(data), &sc); err != nil {
		return sc, fmt.Errorf("decode schedule: %w", err)
	}
	return schedule.Normalize(sc), nil
}

// List returns every schedule, sorted by ID.
func (s *Store) List(ctx context.Context) ([]schedule.Schedule, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM nuvom_schedules ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list schedules in %s: %w", s.path, err)
	}
	defer rows.Close()
	out := []schedule.Schedule{}
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("list schedules in %s: %w", s.path, err)
		}
		sc, err := decode(data)
		if err != nil {
			return nil, fmt.Errorf("list schedules in %s: %w", s.path, err)
		}
		out = append(out, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list schedules in %s: %w", s.path, err)
	}
	return out, nil
}

// Get returns one schedule, or schedule.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (schedule.Schedule, error) {
	var data string
	err := s.db.QueryRowContext(ctx, `SELECT data FROM nuvom_schedules WHERE id = ?`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return schedule.Schedule{}, fmt.Errorf("get schedule %s: %w", id, schedule.ErrNotFound)
	}
	if err != nil {
		return schedule.Schedule{}, fmt.Errorf("get schedule %s: %w", id, err)
	}
	return decode(data)
}

func (s *Store) put(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, sc schedule.Schedule) error {
	sc = schedule.Normalize(sc)
	data, err := json.Marshal(sc)
	if err != nil {
		return fmt.Errorf("encode schedule %s: %w", sc.ID, err)
	}
	_, err = ex.ExecContext(ctx, `INSERT INTO nuvom_schedules (id, next_run, paused, data) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET next_run = excluded.next_run, paused = excluded.paused, data = excluded.data`,
		sc.ID, nanos(sc.NextRun), sc.Paused, string(data))
	return err
}

// Upsert inserts sc or replaces the schedule with its ID.
func (s *Store) Upsert(ctx context.Context, sc schedule.Schedule) error {
	if sc.ID == "" {
		return errors.New("upsert schedule: empty id")
	}
	if err := s.put(ctx, s.db, sc); err != nil {
		return fmt.Errorf("upsert schedule %s: %w", sc.ID, err)
	}
	return nil
}

// Delete removes a schedule.
func (s *Store) Delete(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM nuvom_schedules WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete schedule %s: %w", id, schedule.ErrNotFound)
	}
	return nil
}

// modify reads, changes and writes one schedule in one immediate transaction;
// fn returns false to leave it unchanged.
func (s *Store) modify(ctx context.Context, id, op string, fn func(sc *schedule.Schedule) bool) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("%s schedule %s: %w", op, id, err)
	}
	defer tx.Rollback()
	var data string
	err = tx.QueryRowContext(ctx, `SELECT data FROM nuvom_schedules WHERE id = ?`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("%s schedule %s: %w", op, id, schedule.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("%s schedule %s: %w", op, id, err)
	}
	sc, err := decode(data)
	if err != nil {
		return false, fmt.Errorf("%s schedule %s: %w", op, id, err)
	}
	if !fn(&sc) {
		return false, nil
	}
	if err := s.put(ctx, tx, sc); err != nil {
		return false, fmt.Errorf("%s schedule %s: %w", op, id, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("%s schedule %s: commit: %w", op, id, err)
	}
	return true, nil
}

// Update applies fn's decision about the schedule id in one immediate transaction.
func (s *Store) Update(ctx context.Context, id string, fn schedule.UpdateFunc) (schedule.Action, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return schedule.Keep, fmt.Errorf("update schedule %s: %w", id, err)
	}
	defer tx.Rollback()
	var (
		data  string
		cur   schedule.Schedule
		found = true
	)
	err = tx.QueryRowContext(ctx, `SELECT data FROM nuvom_schedules WHERE id = ?`, id).Scan(&data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		found = false
	case err != nil:
		return schedule.Keep, fmt.Errorf("update schedule %s: %w", id, err)
	default:
		if cur, err = decode(data); err != nil {
			return schedule.Keep, fmt.Errorf("update schedule %s: %w", id, err)
		}
	}
	var newest int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(generation), 0) FROM nuvom_annotation_sets`).Scan(&newest); err != nil {
		return schedule.Keep, fmt.Errorf("update schedule %s: %w", id, err)
	}
	next, act, err := schedule.UpdateChange(id, cur, found, newest, fn)
	if err != nil {
		return schedule.Keep, err
	}
	switch act {
	case schedule.Put:
		err = s.put(ctx, tx, next)
	case schedule.Remove:
		_, err = tx.ExecContext(ctx, `DELETE FROM nuvom_schedules WHERE id = ?`, id)
	default:
		return act, nil
	}
	if err != nil {
		return schedule.Keep, fmt.Errorf("update schedule %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return schedule.Keep, fmt.Errorf("update schedule %s: commit: %w", id, err)
	}
	return act, nil
}

// RegisterAnnotationSet records a task set and returns it and the newest generation.
func (s *Store) RegisterAnnotationSet(ctx context.Context, fp string, now time.Time) (schedule.AnnotationSet, int64, error) {
	set := schedule.AnnotationSet{Fingerprint: fp}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return set, 0, fmt.Errorf("register annotation set: %w", err)
	}
	defer tx.Rollback()
	var newest int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(generation), 0) FROM nuvom_annotation_sets`).Scan(&newest); err != nil {
		return set, 0, fmt.Errorf("register annotation set: %w", err)
	}
	var first int64
	err = tx.QueryRowContext(ctx, `SELECT generation, first_seen FROM nuvom_annotation_sets WHERE fingerprint = ?`, fp).Scan(&set.Generation, &first)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		newest++
		set.Generation, first = newest, now.UnixNano()
		if _, err := tx.ExecContext(ctx, `INSERT INTO nuvom_annotation_sets (fingerprint, generation, first_seen) VALUES (?, ?, ?)`, fp, set.Generation, first); err != nil {
			return set, 0, fmt.Errorf("register annotation set: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return set, 0, fmt.Errorf("register annotation set: commit: %w", err)
		}
	case err != nil:
		return set, 0, fmt.Errorf("register annotation set: %w", err)
	}
	set.FirstSeen = time.Unix(0, first).UTC()
	return set, newest, nil
}

// Pause marks a schedule paused.
func (s *Store) Pause(ctx context.Context, id string, now time.Time) error {
	_, err := s.modify(ctx, id, "pause", schedule.PauseChange(now))
	return err
}

// Resume clears paused and sets the next run.
func (s *Store) Resume(ctx context.Context, id string, next, now time.Time) error {
	_, err := s.modify(ctx, id, "resume", schedule.ResumeChange(next, now))
	return err
}

// Advance applies a if the schedule's next run still equals a.From.
func (s *Store) Advance(ctx context.Context, id string, a schedule.Advance) (bool, error) {
	return s.modify(ctx, id, "advance", a.Change())
}

// AcquireLease takes or renews the dispatcher lease.
func (s *Store) AcquireLease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO nuvom_scheduler_lease (name, owner, until) VALUES ('dispatcher', ?1, ?2)
		ON CONFLICT (name) DO UPDATE SET owner = ?1, until = ?2
		WHERE nuvom_scheduler_lease.owner = ?1 OR nuvom_scheduler_lease.until <= ?3`,
		owner, now.Add(ttl).UnixNano(), now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("acquire scheduler lease: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("acquire scheduler lease: %w", err)
	}
	return n == 1, nil
}

// ReleaseLease frees the lease if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, owner string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM nuvom_scheduler_lease WHERE name = 'dispatcher' AND owner = ?`, owner); err != nil {
		return fmt.Errorf("release scheduler lease: %w", err)
	}
	return nil
}
