package sqlite

import (
	"context"
	"database/sql"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// preMetaColumns is the number of insert columns before migration 4 added meta.
const preMetaColumns = insertColumnCount - 1

// preMetaInsert inserts one row into a database older than migration 4.
func preMetaInsert() string {
	cols := strings.TrimSuffix(insertColumns, ", meta")
	return "INSERT INTO jobs (" + cols + ") VALUES (" + strings.TrimSuffix(strings.Repeat("?,", preMetaColumns), ",") + ")"
}

// TestMigrateMeta opens a database written at schema version 3 (no meta
// column) holding a job: Open adds the column, the old job reads without
// metadata, and a new job's metadata round-trips.
func TestMigrateMeta(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v3.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	old := backendtest.NewJob(backendtest.ID(1), "t", t0)
	qs := []string{`CREATE TABLE nuvom_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`}
	qs = append(qs, migrations[:3]...)
	qs = append(qs, `INSERT INTO nuvom_migrations VALUES (1, 0), (2, 0), (3, 0)`)
	for _, q := range qs {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("build a version 3 database: %v", err)
		}
	}
	if _, err := raw.Exec(preMetaInsert(), jobArgs(nil, old)[:preMetaColumns]...); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	b, err := Open(path)
	if err != nil {
		t.Fatalf("Open of a version 3 database: %v", err)
	}
	defer b.Close()
	ctx := context.Background()
	got, err := b.Get(ctx, old.ID)
	if err != nil || got.State != backend.StateQueued || len(got.Meta) != 0 {
		t.Fatalf("job stored before the migration: %+v, %v; want queued without metadata", got, err)
	}
	nj := backendtest.NewJob(backendtest.ID(2), "t", t0)
	nj.Meta = map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	if _, err := b.Enqueue(ctx, []*backend.Job{nj}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, nj.ID); err != nil || !maps.Equal(got.Meta, nj.Meta) {
		t.Fatalf("job enqueued after the migration: meta %v, %v; want %v", got.Meta, err, nj.Meta)
	}
}

// TestMetaNullWhenEmpty checks the cheap case: a job without metadata
// stores NULL, one with metadata a blob.
func TestMetaNullWhenEmpty(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), "nuvom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	none := backendtest.NewJob(backendtest.ID(1), "t", t0)
	empty := backendtest.NewJob(backendtest.ID(2), "t", t0)
	empty.Meta = map[string]string{}
	some := backendtest.NewJob(backendtest.ID(3), "t", t0)
	some.Meta = map[string]string{"k": "v"}
	if _, err := b.Enqueue(ctx, []*backend.Job{none, empty, some}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		null bool
	}{{none.ID, true}, {empty.ID, true}, {some.ID, false}} {
		var isNull bool
		if err := b.read.QueryRow(`SELECT meta IS NULL FROM jobs WHERE id = ?`, c.id).Scan(&isNull); err != nil {
			t.Fatal(err)
		}
		if isNull != c.null {
			t.Errorf("job %s: meta IS NULL = %v, want %v", c.id, isNull, c.null)
		}
	}
}

// TestMetaCorrupt: a meta blob that cannot be decoded makes the job read as
// quarantined with an error naming meta, and a claim quarantines it instead
// of failing.
func TestMetaCorrupt(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), "nuvom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	j := backendtest.NewJob(backendtest.ID(1), "t", t0)
	j.Meta = map[string]string{"k": "v"}
	if _, err := b.Enqueue(ctx, []*backend.Job{j}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.write.Exec(`UPDATE jobs SET meta = x'05616263' WHERE id = ?`, j.ID); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, j.ID)
	if err != nil || got.State != backend.StateQuarantined || !strings.Contains(got.Error, "meta") {
		t.Fatalf("Get of a job with a damaged meta blob: %+v, %v; want quarantined naming meta", got, err)
	}
	cs, err := b.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Now: t0.Add(time.Second), LeaseFor: time.Minute})
	if err != nil || len(cs) != 0 {
		t.Fatalf("Claim of the damaged job = %v, %v; want none and no error", cs, err)
	}
}

// FuzzDecodeMeta: any stored blob decodes without panicking, and what
// decodes encodes back to a blob that decodes to the same metadata.
func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}).([]byte))
	f.Add(encodeMeta(map[string]string{"a": "", "b": "x\x00y"}).([]byte))
	f.Add([]byte{0x05, 'a', 'b', 'c'})
	f.Add([]byte{0x01, 'k'})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		again, ok := encodeMeta(m).([]byte)
		if !ok && len(m) > 0 {
			t.Fatalf("encodeMeta of %v gave no blob", m)
		}
		m2, err := decodeMeta(again)
		if err != nil || !maps.Equal(m, m2) {
			t.Fatalf("round trip of %v: %v, %v", m, m2, err)
		}
	})
}
