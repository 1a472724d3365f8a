package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// corruptDB opens a backend on a real file with a logger writing to logs,
// enqueues jobs, and returns a second, raw connection to the same file to
// damage rows behind the backend's back (as another program, or a disk
// fault, would).
func corruptDB(t *testing.T, jobs []*backend.Job) (*Backend, *sql.DB, *bytes.Buffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nuvom.db")
	logs := &bytes.Buffer{}
	b, err := Open(path, WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	mustEnqueue(t, b, jobs)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return b, raw, logs
}

func damage(t *testing.T, raw *sql.DB, update, id string) {
	t.Helper()
	res, err := raw.Exec(update, id)
	if err != nil {
		t.Fatalf("%s for job %s: %v", update, id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s changed %d rows, want 1", update, n)
	}
}

// TestCorruptRowDoesNotStallClaims damages one row per way a value can fail
// to read (text where an integer belongs, a number beyond int64, an attempt
// counter that overflows when claimed) on three queues: each claim used to
// roll back, so no job of any queue ran. Now Claim quarantines those rows
// with an error naming the column, logs their ids, and hands out every other
// job; Get, List and Stats keep working.
func TestCorruptRowDoesNotStallClaims(t *testing.T) {
	var jobs []*backend.Job
	for i, q := range []string{"a", "a", "a", "b", "b", "b", "c", "c", "c"} {
		j := backendtest.NewJob(backendtest.ID(uint64(i+1)), "t", t0)
		j.Queue = q
		jobs = append(jobs, j)
	}
	b, raw, logs := corruptDB(t, jobs)
	bad := map[string]string{ // id -> what the quarantine error must name
		jobs[0].ID: `column priority holds the text "high"`,
		jobs[3].ID: "column created_at holds the real number 1e+30",
		jobs[4].ID: `column run_at holds the text "soon"`,
		jobs[6].ID: "column attempt holds the real number",
	}
	damage(t, raw, `UPDATE jobs SET priority = 'high' WHERE id = ?`, jobs[0].ID)
	damage(t, raw, `UPDATE jobs SET created_at = 1e30 WHERE id = ?`, jobs[3].ID)
	damage(t, raw, `UPDATE jobs SET run_at = 'soon' WHERE id = ?`, jobs[4].ID)
	damage(t, raw, `UPDATE jobs SET attempt = 9223372036854775807 WHERE id = ?`, jobs[6].ID)
	ctx := context.Background()

	// One job at a time, as a worker with one free slot claims: the first
	// candidate of queue a is the damaged one (text sorts above numbers).
	var claimed []string
	for {
		cs, err := b.Claim(ctx, backend.ClaimRequest{Limit: 1, Worker: "w", Now: t0, LeaseFor: time.Minute})
		if err != nil {
			t.Fatalf("Claim with damaged rows: %v", err)
		}
		if len(cs) == 0 {
			break
		}
		claimed = append(claimed, cs[0].ID)
		if len(claimed) > len(jobs) {
			t.Fatalf("claimed %v: more jobs than stored", claimed)
		}
	}
	// The row whose run_at holds text is never ready (text sorts after every
	// number), so it is never claimed: it stays queued, and Get and List show
	// it as quarantined.
	var want []string
	for _, j := range jobs {
		if _, ok := bad[j.ID]; !ok {
			want = append(want, j.ID)
		}
	}
	slices.Sort(claimed)
	if !slices.Equal(claimed, want) {
		t.Fatalf("claimed %v, want every undamaged job %v", claimed, want)
	}
	// Reads do not fail on the damaged rows.
	all, err := b.List(ctx, backend.ListFilter{})
	if err != nil || len(all) != len(jobs) {
		t.Fatalf("List = %d jobs, %v; want %d", len(all), err, len(jobs))
	}
	for id, what := range bad {
		j, err := b.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get of damaged job %s: %v", id, err)
		}
		if j.State != backend.StateQuarantined || !strings.Contains(j.Error, id) || !strings.Contains(j.Error, what) {
			t.Errorf("damaged job %s: state %s error %q; want quarantined with an error naming it and saying %q", id, j.State, j.Error, what)
		}
		if id != jobs[4].ID && !strings.Contains(logs.String(), "job="+id) {
			t.Errorf("no log line names quarantined job %s:\n%s", id, logs.String())
		}
	}
	stats, err := b.Stats(ctx, t0)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	quarantined := 0
	for _, s := range stats {
		if s.State == backend.StateQuarantined {
			quarantined += s.Count
		}
	}
	if quarantined != 3 {
		t.Errorf("Stats counts %d quarantined jobs, want the 3 claimed damaged rows: %+v", quarantined, stats)
	}
	if all, err := b.List(ctx, backend.ListFilter{States: []backend.State{backend.StateQuarantined}}); err != nil || len(all) != 3 {
		t.Errorf("List of quarantined jobs = %d, %v; want 3", len(all), err)
	}
}

// TestCorruptRowDoesNotStallRecovery damages a running row whose lease has
// expired: RecoverExpired used to fail as a whole, recovering nothing. Now it
// quarantines that row and recovers the others.
func TestCorruptRowDoesNotStallRecovery(t *testing.T) {
	b, raw, logs := corruptDB(t, newJobs(1, 3, "default"))
	ctx := context.Background()
	cs, err := b.Claim(ctx, backend.ClaimRequest{Limit: 3, Worker: "w", Now: t0, LeaseFor: time.Minute})
	if err != nil || len(cs) != 3 {
		t.Fatalf("Claim = %d, %v", len(cs), err)
	}
	badID := backendtest.ID(2)
	damage(t, raw, `UPDATE jobs SET max_attempts = 'lots' WHERE id = ?`, badID)
	n, err := b.RecoverExpired(ctx, t0.Add(time.Hour), 5)
	if err != nil || n != 2 {
		t.Fatalf("RecoverExpired = %d, %v; want the 2 undamaged jobs recovered", n, err)
	}
	for _, id := range []string{backendtest.ID(1), backendtest.ID(3)} {
		if j, err := b.Get(ctx, id); err != nil || j.State != backend.StateRetrying {
			t.Errorf("undamaged job %s after recovery: %+v, %v; want retrying", id, j, err)
		}
	}
	j, err := b.Get(ctx, badID)
	if err != nil || j.State != backend.StateQuarantined || !strings.Contains(j.Error, "max_attempts") {
		t.Fatalf("damaged job after recovery: %+v, %v; want quarantined naming max_attempts", j, err)
	}
	if !strings.Contains(logs.String(), "job="+badID) {
		t.Errorf("no log line names quarantined job %s:\n%s", badID, logs.String())
	}
}

// TestMigrateUniqueIndexByTask opens a database written at schema version 1
// (unique keys indexed without their task, no index for claims by task):
// Open migrates it, after which a key only matches an earlier job of the same
// task, stored rows included, and claims by task use the new index.
func TestMigrateUniqueIndexByTask(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	charge := backendtest.NewJob(backendtest.ID(1), "billing.Charge", t0)
	charge.UniqueKey, charge.UniqueUntil = "order:42", t0.Add(time.Hour)
	for _, q := range []string{
		`CREATE TABLE nuvom_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		migrations[0],
		`INSERT INTO nuvom_migrations VALUES (1, 0)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("build a version 1 database: %v", err)
		}
	}
	if _, err := raw.Exec(preMetaInsert(), jobArgs(nil, charge)[:preMetaColumns]...); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	b, err := Open(path)
	if err != nil {
		t.Fatalf("Open of a version 1 database: %v", err)
	}
	defer b.Close()
	var version int
	if err := b.read.QueryRow(`SELECT max(version) FROM nuvom_migrations`).Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("schema version after Open = %d, %v; want %d", version, err, len(migrations))
	}
	var cols []string
	rows, err := b.read.Query(`SELECT name FROM pragma_index_info('jobs_unique') ORDER BY seqno`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if want := []string{"task", "unique_key", "unique_until"}; !slices.Equal(cols, want) {
		t.Fatalf("jobs_unique columns after the migration = %v, want %v", cols, want)
	}
	ctx := context.Background()
	email := backendtest.NewJob(backendtest.ID(2), "email.Send", t0.Add(time.Second))
	email.UniqueKey, email.UniqueUntil = "order:42", t0.Add(time.Hour)
	again := backendtest.NewJob(backendtest.ID(3), "billing.Charge", t0.Add(time.Second))
	again.UniqueKey, again.UniqueUntil = "order:42", t0.Add(time.Hour)
	res, err := b.Enqueue(ctx, []*backend.Job{email, again})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || !res[1].Duplicate || res[1].ID != charge.ID {
		t.Fatalf("Enqueue after the migration = %+v, want [new %s, duplicate of %s]", res, email.ID, charge.ID)
	}
	cs, err := b.Claim(ctx, backend.ClaimRequest{Tasks: []string{"billing.Charge"}, Limit: 10, Worker: "w", Now: t0.Add(time.Minute), LeaseFor: time.Minute})
	if err != nil || len(cs) != 1 || cs[0].ID != charge.ID {
		t.Fatalf("Claim of billing.Charge after the migration = %v, %v; want %s", cs, err, charge.ID)
	}
}
