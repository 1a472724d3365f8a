package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

var t0 = backendtest.Epoch()

// newJobs returns n queued jobs of task "t" on queue q, ids from..from+n-1.
func newJobs(from, n int, q string) []*backend.Job {
	out := make([]*backend.Job, n)
	for i := range out {
		j := backendtest.NewJob(backendtest.ID(uint64(from+i)), "t", t0)
		j.Queue = q
		out[i] = j
	}
	return out
}

func mustEnqueue(t testing.TB, b *Backend, jobs []*backend.Job) {
	t.Helper()
	if _, err := b.Enqueue(context.Background(), jobs); err != nil {
		t.Fatal(err)
	}
}

func TestOpenOptions(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		opts    []Option
		wantErr string
	}{
		{"defaults", nil, ""},
		{"full", []Option{WithSynchronous("full")}, ""},
		{"normal", []Option{WithSynchronous("NORMAL")}, ""},
		{"bad sync", []Option{WithSynchronous("OFF")}, `synchronous mode "OFF"`},
		{"bad poll", []Option{WithPollInterval(0)}, "poll interval"},
		{"bad busy", []Option{WithBusyTimeout(-time.Second)}, "busy timeout"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprint(i), "deep", "q.db")
			b, err := Open(path, tc.opts...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("Open err = %v, want one naming %q and the path", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.Path() != path {
				t.Errorf("Path() = %q, want %q", b.Path(), path)
			}
			var mode string
			if err := b.write.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("journal_mode = %q, %v; want wal", mode, err)
			}
		})
	}
}

func TestReopenKeepsSchemaAndJobs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, b, newJobs(1, 3, "default"))
	b.Close()
	b, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var versions int
	if err := b.read.QueryRow(`SELECT count(*) FROM nuvom_migrations`).Scan(&versions); err != nil || versions != len(migrations) {
		t.Fatalf("migrations recorded = %d, %v; want %d", versions, err, len(migrations))
	}
	if jobs, err := b.List(context.Background(), backend.ListFilter{}); err != nil || len(jobs) != 3 {
		t.Fatalf("List after reopen = %d jobs, %v; want 3", len(jobs), err)
	}
	if _, err := b.write.Exec(`INSERT INTO nuvom_migrations VALUES (99, 0)`); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: err = %v, want a refusal", err)
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	as := []backend.Attempt{
		{Number: 1, StartedAt: t0, FinishedAt: t0.Add(time.Second), Worker: "w", Outcome: "failed", Error: "nul \x00 and \xff bytes"},
		{Number: 300, StartedAt: time.Unix(0, -5), Outcome: "lost"},
	}
	got, err := decodeAttempts(encodeAttempts(as))
	opt := cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })
	if err != nil || !cmp.Equal(as, got, opt) {
		t.Fatalf("attempts round trip: %v\n%s", err, cmp.Diff(as, got, opt))
	}
	ss := []string{"", "a", strings.Repeat("x", 1000), "\x00"}
	if got, err := decodeStrings(encodeStrings(ss)); err != nil || !slices.Equal(ss, got) {
		t.Fatalf("strings round trip = %q, %v", got, err)
	}
	for _, bad := range [][]byte{{0x05, 0x01}, {0xff}, {0x03, 0x01, 0x00, 0x00}} {
		if _, err := decodeAttempts(bad); err == nil {
			t.Errorf("decodeAttempts(% x) succeeded", bad)
		}
	}
}

// TestAttemptAppendKeepsBytes checks that SQL blob concatenation appends the
// history byte for byte, through Complete.
func TestAttemptAppendKeepsBytes(t *testing.T) {
	b := openTest(t)
	ctx := context.Background()
	mustEnqueue(t, b, newJobs(1, 1, "default"))
	want := []backend.Attempt{}
	for i := 1; i <= 3; i++ {
		cs, err := b.Claim(ctx, backend.ClaimRequest{Limit: 1, Worker: "w\x00", Now: t0.Add(time.Duration(i) * time.Hour), LeaseFor: time.Minute})
		if err != nil || len(cs) != 1 {
			t.Fatalf("claim %d: %d jobs, %v", i, len(cs), err)
		}
		a := backend.Attempt{Number: i, StartedAt: cs[0].StartedAt, FinishedAt: cs[0].StartedAt.Add(time.Second),
			Worker: "w\x00", Outcome: backend.OutcomeFailed, Error: "bytes \x00\xff\xfe"}
		want = append(want, a)
		errs, err := b.Complete(ctx, []backend.Outcome{{Lease: cs[0].Lease(), State: backend.StateRetrying,
			RunAt: a.FinishedAt, FinishedAt: a.FinishedAt, Attempt: a, Error: "e", ErrorChain: []string{"e", "\x00"}}})
		if err != nil || errs[0] != nil {
			t.Fatalf("complete %d: %v %v", i, err, errs)
		}
	}
	j, err := b.Get(ctx, backendtest.ID(1))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, j.Attempts, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); d != "" {
		t.Fatalf("history (-want +got):\n%s", d)
	}
	if !slices.Equal(j.ErrorChain, []string{"e", "\x00"}) {
		t.Fatalf("error chain = %q", j.ErrorChain)
	}
}

// TestCorruptRows: a row whose stored contents cannot be decoded does not
// fail Get, List or Stats (it shows as quarantined, with an error naming the
// job and what cannot be read); a claim quarantines it and still hands out
// the others.
func TestCorruptRows(t *testing.T) {
	b := openTest(t)
	ctx := context.Background()
	mustEnqueue(t, b, newJobs(1, 4, "default"))
	bad, badState := backendtest.ID(2), backendtest.ID(3)
	if _, err := b.write.Exec(`UPDATE jobs SET attempts = x'05ff' WHERE id = ?`, bad); err != nil {
		t.Fatal(err)
	}
	if j, err := b.Get(ctx, bad); err != nil || j.State != backend.StateQuarantined || !strings.Contains(j.Error, bad) || !strings.Contains(j.Error, "attempts") {
		t.Fatalf("Get of a corrupt row = %+v, %v; want it quarantined with an error naming %s and attempts", j, err, bad)
	}
	if _, err := b.write.Exec(`UPDATE jobs SET state = 'bogus' WHERE id = ?`, badState); err != nil {
		t.Fatal(err)
	}
	if j, err := b.Get(ctx, badState); err != nil || j.State != backend.StateQuarantined || !strings.Contains(j.Error, badState) || !strings.Contains(j.Error, `"bogus"`) {
		t.Fatalf("Get of a bad state = %+v, %v; want it quarantined with an error naming %s and the state", j, err, badState)
	}
	if jobs, err := b.List(ctx, backend.ListFilter{}); err != nil || len(jobs) != 4 {
		t.Fatalf("List over corrupt rows = %d jobs, %v; want all 4", len(jobs), err)
	}
	if jobs, err := b.List(ctx, backend.ListFilter{States: []backend.State{backend.StateQueued}}); err != nil || len(jobs) != 2 {
		t.Fatalf("List of queued jobs over corrupt rows = %d jobs, %v; want the 2 good ones", len(jobs), err)
	}
	// A state damaged behind the backend's back reaches the counters
	// Stats reads when they are rebuilt.
	if err := b.Recount(ctx); err != nil {
		t.Fatal(err)
	}
	stats, err := b.Stats(ctx, t0)
	if err != nil {
		t.Fatalf("Stats over a bad state: %v", err)
	}
	if !slices.ContainsFunc(stats, func(s backend.QueueStat) bool {
		return s.State == backend.StateQuarantined && s.Count == 1
	}) {
		t.Fatalf("Stats = %+v, want the bad state counted as quarantined", stats)
	}
	cs, err := b.Claim(ctx, backend.ClaimRequest{Limit: 10, Worker: "w", Now: t0, LeaseFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, c := range cs {
		got = append(got, c.ID)
	}
	if want := []string{backendtest.ID(1), backendtest.ID(4)}; !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want %v (the corrupt row quarantined, the bad state never ready)", got, want)
	}
	var state, msg string
	if err := b.read.QueryRow(`SELECT state, error FROM jobs WHERE id = ?`, bad).Scan(&state, &msg); err != nil {
		t.Fatal(err)
	}
	if state != "quarantined" || !strings.Contains(msg, bad) {
		t.Fatalf("corrupt row: state %s error %q, want quarantined naming the job", state, msg)
	}
}

// TestQueryPlans checks that claiming reads jobs_ready_task in order (no table
// scan, no sort for one queue) and that the other hot statements use indexes.
func TestQueryPlans(t *testing.T) {
	b := openTest(t)
	listRunning, listRunningArgs := listQuery(backend.ListFilter{States: []backend.State{backend.StateRunning}, Limit: 100000})
	plan := func(q string, args ...any) string {
		rows, err := b.write.Query(`EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatalf("explain %s: %v", firstLine(q), err)
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, detail)
		}
		return strings.Join(lines, "\n")
	}
	tests := []struct {
		name      string
		sql       string
		args      []any
		want      []string
		forbidden []string
	}{
		{"claim one task", claimSQL(claimShape{arms: 1}), []any{"w", 1, 1, 10, "t"},
			[]string{"jobs_ready_task"}, []string{"SCAN jobs", "TEMP B-TREE"}},
		{"claim one task of one queue", claimSQL(claimShape{arms: 1, filter: 1}), []any{"w", 1, 1, 10, "t", "q"},
			[]string{"jobs_ready_task"}, []string{"SCAN jobs", "TEMP B-TREE"}},
		{"claim three tasks", claimSQL(claimShape{arms: 3}), []any{"w", 1, 1, 10, "a", "b", "c"},
			[]string{"jobs_ready_task"}, []string{"SCAN jobs"}},
		{"claim two tasks of two queues", claimSQL(claimShape{arms: 2, filter: 2}), []any{"w", 1, 1, 10, "a", "b", "q1", "q2"},
			[]string{"jobs_ready_task"}, []string{"SCAN jobs"}},
		{"promote", sqlPromote, []any{1}, []string{"jobs_due"}, []string{"SCAN jobs"}},
		{"tasks", sqlTasks, nil, []string{"jobs_ready_task"}, []string{"SCAN jobs"}},
		{"complete", sqlComplete, []any{"succeeded", 0, 1, nil, "", nil, "", []byte{}, "id", 1, 0},
			[]string{"sqlite_autoindex_jobs_1"}, []string{"SCAN jobs"}},
		{"recover", `SELECT id FROM jobs WHERE state = 'running' AND lease_until < ?`, []any{1},
			[]string{"jobs_lease"}, []string{"SCAN jobs"}},
		{"unique", sqlUnique, []any{"t", "k", 1}, []string{"jobs_unique"}, []string{"SCAN jobs"}},
		{"list running", listRunning, listRunningArgs, []string{"jobs_lease"}, []string{"autoindex"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := plan(tc.sql, tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(p, w) {
					t.Errorf("plan does not use %s:\n%s", w, p)
				}
			}
			for _, f := range tc.forbidden {
				if strings.Contains(p, f) {
					t.Errorf("plan has %s:\n%s", f, p)
				}
			}
			t.Logf("plan:\n%s", p)
		})
	}
}

// TestTwoBackendsClaimConcurrently opens the file twice (two connections sets,
// as two processes would) and burns jobs down from both at once: no job is
// claimed twice and every job ends succeeded.
func TestTwoBackendsClaimConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	var bs [2]*Backend
	for i := range bs {
		b, err := Open(path, WithBusyTimeout(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		bs[i] = b
	}
	const n = 3000
	mustEnqueue(t, bs[0], newJobs(1, n, "default"))
	var mu sync.Mutex
	seen := map[string]string{}
	var dup []string
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for g := range 6 {
		b := bs[g%2]
		worker := fmt.Sprintf("b%d-g%d", g%2, g)
		wg.Go(func() {
			ctx := context.Background()
			for {
				cs, err := b.Claim(ctx, backend.ClaimRequest{Limit: 7, Worker: worker, Now: t0, LeaseFor: time.Hour})
				if err != nil {
					errc <- err
					return
				}
				if len(cs) == 0 {
					return
				}
				outs := make([]backend.Outcome, len(cs))
				mu.Lock()
				for i, c := range cs {
					if prev, ok := seen[c.ID]; ok {
						dup = append(dup, c.ID+" by "+prev+" and "+worker)
					}
					seen[c.ID] = worker
					outs[i] = backend.Outcome{Lease: c.Lease(), State: backend.StateSucceeded, FinishedAt: t0,
						Attempt: backend.Attempt{Number: c.Attempt, Worker: worker, Outcome: backend.OutcomeSucceeded}}
				}
				mu.Unlock()
				errs, err := b.Complete(ctx, outs)
				if err == nil {
					err = errors.Join(errs...)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if len(dup) > 0 {
		t.Fatalf("%d jobs claimed twice, e.g. %s", len(dup), dup[0])
	}
	if len(seen) != n {
		t.Fatalf("claimed %d distinct jobs, want %d", len(seen), n)
	}
	stats, err := bs[1].Stats(context.Background(), t0)
	if err != nil {
		t.Fatal(err)
	}
	want := []backend.QueueStat{{Queue: "default", State: backend.StateSucceeded, Count: n}}
	if d := cmp.Diff(want, stats, cmpopts.EquateApproxTime(0)); d != "" {
		t.Fatalf("stats (-want +got):\n%s", d)
	}
}

// TestCrossBackendWakeUp: a subscriber of one Backend hears about a job
// enqueued through another Backend on the same file (another process, as far
// as SQLite knows) within a few poll intervals, and measures the delay.
func TestCrossBackendWakeUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	sub, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ch, cancel := sub.Subscribe()
	defer cancel()
	own, cancelOwn := pub.Subscribe()
	defer cancelOwn()

	// The poller reads its baseline version on its first tick; a commit before
	// that is covered by the subscriber's own first claim, not by a signal.
	time.Sleep(50 * time.Millisecond)
	const rounds = 60
	var delays []time.Duration
	for i := range rounds {
		time.Sleep(DefaultPollInterval + time.Millisecond) // let the poller settle on the current version
		drain(ch)
		drain(own)
		start := time.Now()
		mustEnqueue(t, pub, newJobs(1+i, 1, "default"))
		select {
		case <-own:
		default:
			t.Fatal("an enqueue did not signal its own Backend's subscriber at once")
		}
		select {
		case <-ch:
			delays = append(delays, time.Since(start))
		case <-time.After(time.Minute): // a hang guard, not a budget: the figures are logged
			t.Fatalf("round %d: no cross-connection wake-up after a minute", i)
		}
	}
	slices.Sort(delays)
	t.Logf("cross-connection wake-up after commit (poll %v): p50 %v p95 %v p99 %v", DefaultPollInterval,
		delays[len(delays)/2], delays[len(delays)*95/100], delays[len(delays)*99/100])
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func TestSubscribeAfterClose(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, cancel := b.Subscribe()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	cancel() // after Close: must not block or panic
	_, cancel2 := b.Subscribe()
	cancel2()
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
