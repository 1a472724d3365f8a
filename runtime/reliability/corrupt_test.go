package reliability

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/file"
)

// TestCorruptSQLite corrupts stored rows of a SQLite queue behind the
// backend's back: a worker process quarantines each such job with a log line
// naming it, and runs every other job once.
func TestCorruptSQLite(t *testing.T) {
	const total = 200
	dir := t.TempDir()
	db := filepath.Join(dir, "nuvom.db")
	b := openSQLite(t, db)
	ids := enqueueWork(t, b, total, 2, func(int) int { return 1 })

	corruptions := []struct {
		name   string
		job    string
		update string // the statement that corrupts the job's row; ?1 is its id
		// what the worker's log line says
		logMsg string
		// what the job's stored error says
		errPart string
	}{
		{
			name: "args not msgpack", job: ids[17],
			update:  `UPDATE jobs SET args = X'C1' WHERE id = ?1`,
			logMsg:  "job quarantined: its payload cannot be decoded",
			errPart: "decode args of task " + workTask,
		},
		{
			name: "args of the wrong arity", job: ids[42],
			update:  `UPDATE jobs SET args = X'91A3626164' WHERE id = ?1`, // ["bad"]
			logMsg:  "job quarantined: its payload cannot be decoded",
			errPart: "payload has 1 args, the task takes 2",
		},
		{
			name: "attempt history undecodable", job: ids[150],
			update:  `UPDATE jobs SET attempts = X'FF' WHERE id = ?1`,
			logMsg:  "quarantined a job whose stored row cannot be decoded",
			errPart: "cannot decode attempts",
		},
	}
	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	bad := map[string]bool{}
	for _, c := range corruptions {
		res, err := raw.Exec(c.update, c.job)
		if err != nil {
			t.Fatalf("%s: corrupt job %s: %v", c.name, c.job, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("%s: corrupting job %s changed %d rows, want 1", c.name, c.job, n)
		}
		bad[c.job] = true
	}
	raw.Close()

	cfg := workerConfig{Backend: "sqlite", Path: db, ExecLog: filepath.Join(dir, "executions.log"), Concurrency: 4, Burst: true}
	w := startWorker(t, "worker", "worker", cfg)
	w.mustExitOK(5 * time.Minute)
	out := w.output()

	for _, c := range corruptions {
		t.Run(c.name, func(t *testing.T) {
			line, ok := lineWith(out, c.logMsg, "job="+c.job)
			if !ok {
				t.Errorf("no log line says %q and names job %s; worker output:\n%s", c.logMsg, c.job, out)
			} else {
				t.Logf("log: %s", line)
			}
			// The quarantined job stays inspectable through the backend.
			j, err := b.Get(context.Background(), c.job)
			switch {
			case err != nil:
				t.Errorf("get quarantined job %s: %v", c.job, err)
			case j.State != nuvom.StateQuarantined || !strings.Contains(j.Error, c.errPart):
				t.Errorf("job %s is %s with error %q; want quarantined with an error containing %q", c.job, j.State, j.Error, c.errPart)
			}
		})
	}

	// One corrupt row must not hide the others from a listing.
	if jobs := listAll(t, b, total); len(jobs) != total {
		t.Errorf("List returned %d jobs, want %d", len(jobs), total)
	}
	runs := runsPerJob(readExecutions(t, cfg.ExecLog))
	for _, id := range ids {
		switch {
		case bad[id] && runs[id] != 0:
			t.Errorf("corrupt job %s ran %d times; it must not run", id, runs[id])
		case !bad[id] && runs[id] != 1:
			t.Errorf("job %s ran %d times, want once", id, runs[id])
		}
		if bad[id] {
			continue
		}
		j, err := b.Get(context.Background(), id)
		if err != nil {
			t.Errorf("get job %s: %v", id, err)
		} else if j.State != nuvom.StateSucceeded {
			t.Errorf("job %s is %s, want succeeded: %s", id, j.State, j.Error)
		}
	}
	n, err := countStates(b)
	if err != nil {
		t.Fatal(err)
	}
	if n[nuvom.StateSucceeded] != total-len(bad) || n[nuvom.StateQuarantined] != len(bad) {
		t.Errorf("states %v; want %d succeeded and %d quarantined", n, total-len(bad), len(bad))
	}
}

// TestCorruptFile overwrites one queued job file of the file backend with
// garbage: a worker process moves it to corrupt/ with a log line naming its
// path, and runs every other job once.
func TestCorruptFile(t *testing.T) {
	const total = 50
	dir := t.TempDir()
	qdir := filepath.Join(dir, "queue")
	b, err := file.Open(qdir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ids := enqueueWork(t, b, total, 2, func(int) int { return 1 })

	badID := ids[7]
	matches, err := filepath.Glob(filepath.Join(qdir, "ready", "*", "*-"+badID))
	if err != nil || len(matches) != 1 {
		t.Fatalf("find the ready file of job %s: %v %v", badID, matches, err)
	}
	badPath := matches[0]
	if err := os.WriteFile(badPath, []byte("\xc1 this is not a job \xff\x00"), 0o644); err != nil {
		t.Fatal(err)
	}

	cfg := workerConfig{Backend: "file", Path: qdir, ExecLog: filepath.Join(dir, "executions.log"), Concurrency: 4, Burst: true}
	w := startWorker(t, "worker", "worker", cfg)
	w.mustExitOK(5 * time.Minute)
	out := w.output()

	// slog's text handler quotes a value only when it must.
	line, ok := lineWith(out, "quarantined undecodable job file", "path="+badPath)
	if !ok {
		line, ok = lineWith(out, "quarantined undecodable job file", "path="+strconv.Quote(badPath))
	}
	if !ok {
		t.Errorf("no log line reports the quarantine of %s; worker output:\n%s", badPath, out)
	} else {
		t.Logf("log: %s", line)
	}
	if _, err := os.Stat(badPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the corrupt file is still at %s (stat: %v)", badPath, err)
	}
	quarantined := filepath.Join(qdir, "corrupt", badID+".corrupt")
	if data, err := os.ReadFile(quarantined); err != nil {
		t.Errorf("the corrupt file is not in quarantine: %v", err)
	} else if !strings.Contains(string(data), "this is not a job") {
		t.Errorf("quarantined file %s holds %q, not the garbage written", quarantined, data)
	}

	runs := runsPerJob(readExecutions(t, cfg.ExecLog))
	if runs[badID] != 0 {
		t.Errorf("corrupt job %s ran %d times", badID, runs[badID])
	}
	for _, id := range ids {
		if id == badID {
			continue
		}
		if runs[id] != 1 {
			t.Errorf("job %s ran %d times, want once", id, runs[id])
		}
		j, err := b.Get(context.Background(), id)
		if err != nil {
			t.Errorf("get job %s: %v", id, err)
		} else if j.State != nuvom.StateSucceeded {
			t.Errorf("job %s is %s, want succeeded: %s", id, j.State, j.Error)
		}
	}
}
