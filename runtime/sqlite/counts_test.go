package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// checkCounts holds Stats (the counters) to the full GROUP BY scan: the
// same count for every queue and state, and for queued jobs the same oldest
// run-at.
func checkCounts(t *testing.T, b *Backend, step string) {
	t.Helper()
	ctx := context.Background()
	got, err := b.Stats(ctx, t0)
	if err != nil {
		t.Fatalf("after %s: Stats: %v", step, err)
	}
	want, err := b.statsByScan(ctx)
	if err != nil {
		t.Fatalf("after %s: scan: %v", step, err)
	}
	type entry struct {
		count  int
		oldest time.Time
	}
	index := func(stats []backend.QueueStat) map[countKey]entry {
		m := map[countKey]entry{}
		for _, s := range stats {
			if s.Count < 0 {
				t.Fatalf("after %s: Stats has %d jobs in queue %s state %s", step, s.Count, s.Queue, s.State)
			}
			if s.Count == 0 {
				continue
			}
			e := entry{count: s.Count}
			// Fewer than dueScanLimit jobs wait here: every oldest
			// run-at of scheduled and retrying jobs is exact too.
			if s.State == backend.StateQueued || s.State == backend.StateScheduled || s.State == backend.StateRetrying {
				e.oldest = s.OldestRunAt
			}
			m[countKey{s.Queue, s.State}] = e
		}
		return m
	}
	g, w := index(got), index(want)
	for k, we := range w {
		ge := g[k]
		if ge.count != we.count || !ge.oldest.Equal(we.oldest) {
			t.Fatalf("after %s: queue %q state %s: counters say %d (oldest %v), the scan %d (oldest %v)\ncounters: %+v\nscan: %+v",
				step, k.queue, k.state, ge.count, ge.oldest, we.count, we.oldest, got, want)
		}
	}
	for k, ge := range g {
		if _, ok := w[k]; !ok {
			t.Fatalf("after %s: counters have %d jobs in queue %q state %s, the scan none", step, ge.count, k.queue, k.state)
		}
	}
}

// TestCountsMatchScan runs random sequences of every operation that changes
// a job's state (enqueue with and without unique keys, scheduled jobs,
// claims that promote due jobs and quarantine damaged rows, completions to
// every final state and to retrying, with stale tokens, releases, lease
// recovery after a crash, cancel, retry, purge, bulk actions, workflows:
// chains, fan-ins and ignore-failure edges whose steps completions release,
// cancel or quarantine, a cancelled parent, a cancelled workflow; claims
// under declared and overridden task limits) on a real file, and after each
// one holds the counters to a full GROUP BY.
func TestCountsMatchScan(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4}
	steps := 250
	if testing.Short() {
		seeds, steps = seeds[:1], 100
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			countsRun(t, seed, steps)
		})
	}
}

func countsRun(t *testing.T, seed uint64, steps int) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "counts.db")
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(30000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	r := rand.New(rand.NewPCG(seed, 42))
	queues := []string{"q1", "q2", "q3"}
	tasks := []string{"a", "b", "c"}
	now := t0
	var ids []string
	var held []backend.Lease
	claimedAs := map[string]*backend.Job{} // what each claim returned, whose queue and task a worker's outcome carries
	var workflows, parents []string        // workflow ids; steps with children
	limited := false                       // some task has a limit: claims take claimLimited
	limitedClaims := 0
	next := uint64(1)
	pick := func() string { return ids[r.IntN(len(ids))] }
	subset := func(names []string) []string {
		var out []string
		for _, n := range names {
			if r.IntN(3) == 0 {
				out = append(out, n)
			}
		}
		return out
	}
	ignore := func(op string, err error) {
		t.Helper()
		if err != nil && !errors.Is(err, backend.ErrWrongState) && !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("%s: %v", op, err)
		}
	}
	for step := range steps {
		var op string
		switch k := r.IntN(125); {
		case k < 20 || len(ids) == 0:
			op = "enqueue"
			n := 1 + r.IntN(12)
			if r.IntN(4) == 0 {
				n = 1
			}
			jobs := make([]*backend.Job, n)
			for i := range jobs {
				j := backendtest.NewJob(backendtest.ID(next), tasks[r.IntN(len(tasks))], now)
				next++
				j.Queue = queues[r.IntN(len(queues))]
				j.Priority = r.IntN(3)
				j.RunAt = now.Add(-time.Duration(r.IntN(60)) * time.Second)
				if r.IntN(4) == 0 {
					j.State = backend.StateScheduled
					j.RunAt = now.Add(time.Duration(1+r.IntN(120)) * time.Second)
				}
				if r.IntN(5) == 0 {
					j.UniqueKey = fmt.Sprint("k", r.IntN(5))
					j.UniqueUntil = now.Add(time.Hour)
				}
				jobs[i] = j
				ids = append(ids, j.ID)
			}
			if _, err := b.Enqueue(ctx, jobs); err != nil {
				t.Fatalf("enqueue: %v", err)
			}
		case k < 38:
			op = "claim"
			if limited {
				op = "limited claim"
			}
			claimed, err := b.Claim(ctx, backend.ClaimRequest{Limit: 1 + r.IntN(8), Worker: "w", Now: now,
				LeaseFor: time.Minute, Queues: subset(queues), Tasks: subset(tasks)})
			if err != nil {
				t.Fatalf("claim: %v", err)
			}
			if limited && len(claimed) > 0 {
				limitedClaims++
			}
			for _, j := range claimed {
				held = append(held, j.Lease())
				claimedAs[j.ID] = j
			}
		case k < 55 && len(held) > 0:
			op = "complete"
			n := 1 + r.IntN(len(held))
			outs := make([]backend.Outcome, n)
			for i, l := range held[:n] {
				if r.IntN(8) == 0 {
					l.Token-- // a stale lease: lost, nothing moves
				}
				o := backend.Outcome{Lease: l, FinishedAt: now, Attempt: backend.Attempt{Number: 1, StartedAt: now,
					FinishedAt: now, Worker: "w", Outcome: backend.OutcomeSucceeded}}
				if j := claimedAs[l.JobID]; j != nil && r.IntN(2) == 0 {
					o.Queue, o.Task = j.Queue, j.Task // as the worker sends it: the path without a read
				}
				switch r.IntN(7) {
				case 0, 6:
					o.State = backend.StateSucceeded
					if r.IntN(2) == 0 {
						o.Result = []byte{0xa1, 'r'} // spliced into a released step's args
					}
				case 1:
					o.State, o.Error = backend.StateFailed, "boom"
				case 2:
					o.State, o.Error, o.RunAt = backend.StateRetrying, "again", now.Add(time.Duration(r.IntN(90))*time.Second)
					o.Refund = r.IntN(2) == 0
				case 3:
					o.State = backend.StateCancelled
				case 4:
					o.State = backend.StateQuarantined
				default:
					o.State = backend.StateRunning // not a state an attempt ends in: refused
				}
				outs[i] = o
			}
			if _, err := b.Complete(ctx, outs); err != nil {
				t.Fatalf("complete: %v", err)
			}
			held = held[n:]
		case k < 62 && len(held) > 0:
			op = "release"
			n := 1 + r.IntN(len(held))
			if err := b.Release(ctx, held[:n]); err != nil {
				t.Fatalf("release: %v", err)
			}
			held = held[n:]
		case k < 68:
			op = "crash and recover"
			now = now.Add(2 * time.Minute) // every lease held ends: the worker is gone
			if _, err := b.RecoverExpired(ctx, now, 2); err != nil {
				t.Fatalf("recover: %v", err)
			}
		case k < 75:
			op = "cancel"
			ignore(op, b.Cancel(ctx, pick(), now))
		case k < 82:
			op = "retry"
			ignore(op, b.Retry(ctx, pick(), now))
		case k < 86:
			op = "purge"
			f := backend.PurgeFilter{}
			switch r.IntN(3) {
			case 0:
				f.IDs = []string{pick(), pick()}
			case 1:
				f.Queue = queues[r.IntN(len(queues))]
				f.States = []backend.State{backend.StateSucceeded, backend.StateCancelled}
			default:
				f.States = []backend.State{backend.StateFailed, backend.StateQuarantined}
			}
			if _, err := b.Purge(ctx, f); err != nil {
				t.Fatalf("purge: %v", err)
			}
		case k < 91:
			action := []backend.BulkAction{backend.BulkRetry, backend.BulkCancel, backend.BulkDelete}[r.IntN(3)]
			op = "bulk " + string(action)
			sel := backend.Selection{IDs: []string{pick(), pick(), pick()}}
			if r.IntN(2) == 0 {
				sel = backend.Selection{State: backend.AllStates()[r.IntN(len(backend.AllStates()))], Task: tasks[r.IntN(len(tasks))]}
			}
			if _, err := b.Bulk(ctx, action, sel, now); err != nil {
				ignore(op, err)
			}
		case k < 95:
			op = "damage a queued row"
			update := []string{`UPDATE jobs SET attempts = x'05ff' WHERE id = ? AND state = 'queued'`,
				`UPDATE jobs SET priority = 'high' WHERE id = ? AND state = 'queued'`}[r.IntN(2)]
			if _, err := raw.Exec(update, pick()); err != nil {
				t.Fatalf("damage: %v", err)
			}
		case k < 108:
			op = "enqueue workflow"
			wf := &backend.Workflow{ID: fmt.Sprint("wf", len(workflows)+1), CreatedAt: now}
			var stepIDs []string
			for i := range 1 + r.IntN(6) {
				j := backendtest.NewJob(backendtest.ID(next), tasks[r.IntN(len(tasks))], now)
				next++
				j.Queue = queues[r.IntN(len(queues))]
				j.Priority = 3 // ahead of the plain jobs: steps end, and release their children, soon
				j.RunAt = now.Add(-time.Duration(r.IntN(60)) * time.Second)
				if r.IntN(5) == 0 {
					j.RunAt = now.Add(time.Duration(1+r.IntN(120)) * time.Second) // released as scheduled
				}
				s := backend.Step{Job: j}
				if i == 0 || r.IntN(4) == 0 {
					if j.RunAt.After(now) {
						j.State = backend.StateScheduled
					}
				} else {
					j.State = backend.StatePending
					var from []string
					switch r.IntN(3) {
					case 0: // a chain: the previous step
						from = stepIDs[len(stepIDs)-1:]
					default: // a fan-in of earlier steps
						for _, id := range stepIDs {
							if len(from) == 0 || r.IntN(2) == 0 {
								from = append(from, id)
							}
						}
					}
					feeding := 0
					for _, p := range from {
						e := backend.Edge{Parent: p, IgnoreFailure: r.IntN(3) == 0, OrderOnly: r.IntN(4) == 0}
						if !e.OrderOnly {
							feeding++
						}
						s.Parents = append(s.Parents, e)
						if !slices.Contains(parents, p) {
							parents = append(parents, p)
						}
					}
					switch {
					case feeding == 1 && r.IntN(2) == 0:
						s.Input = backend.InputResult
					case r.IntN(2) == 0:
						s.Input = backend.InputResults
					}
					if s.Input != backend.InputNone && r.IntN(6) == 0 {
						j.Args = []byte{0x01} // not an array: quarantined when released
					}
				}
				wf.Steps = append(wf.Steps, s)
				stepIDs = append(stepIDs, j.ID)
			}
			if err := b.EnqueueWorkflow(ctx, wf); err != nil {
				t.Fatalf("enqueue workflow: %v", err)
			}
			workflows = append(workflows, wf.ID)
			ids = append(ids, stepIDs...)
		case k < 112 && len(parents) > 0:
			op = "cancel a workflow parent"
			ignore(op, b.Cancel(ctx, parents[r.IntN(len(parents))], now))
		case k < 115 && len(workflows) > 0:
			op = "cancel workflow"
			if _, err := b.CancelWorkflow(ctx, workflows[r.IntN(len(workflows))], now); err != nil {
				t.Fatalf("cancel workflow: %v", err)
			}
		case k < 120:
			task := tasks[r.IntN(len(tasks))]
			var l backend.Limit
			switch r.IntN(3) {
			case 0:
				l.MaxConcurrency = 1 + r.IntN(3)
			case 1:
				l.Rate, l.Per = 1+r.IntN(3), time.Duration(1+r.IntN(2))*time.Minute
			}
			if r.IntN(2) == 0 {
				op = "declare limits"
				if err := b.DeclareLimits(ctx, map[string]backend.Limit{task: l}); err != nil {
					t.Fatalf("declare limits: %v", err)
				}
			} else {
				op = "override limit"
				if err := b.OverrideLimit(ctx, task, l, r.IntN(3) != 0); err != nil {
					t.Fatalf("override limit: %v", err)
				}
			}
			all, err := b.TaskLimits(ctx)
			if err != nil {
				t.Fatal(err)
			}
			limited = slices.ContainsFunc(all, func(tl backend.TaskLimit) bool { return !tl.Effective().IsZero() })
		default:
			op = "time passes"
			now = now.Add(time.Duration(r.IntN(90)) * time.Second)
		}
		checkCounts(t, b, fmt.Sprintf("step %d (%s)", step, op))
	}
	// Every path ran: the counters are not trivially equal.
	stats, err := b.Stats(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	states := map[backend.State]bool{}
	for _, s := range stats {
		states[s.State] = true
	}
	t.Logf("final stats: %+v", stats)
	if len(states) < 5 {
		t.Errorf("the run reached only the states %v", states)
	}
	// Recount (the migration's fill) counts as the counters did, pending
	// steps included.
	if err := b.Recount(ctx); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, b, "recount")
	// The workflow and limit paths ran: steps were released and cancelled
	// by their parents' ends, and claims went through the limits.
	var released, cancelled, quarantined int
	if err := raw.QueryRow(`SELECT count(*) FILTER (WHERE j.state NOT IN ('pending', 'cancelled', 'quarantined')),
			count(*) FILTER (WHERE j.error LIKE 'cancelled: parent step %'),
			count(*) FILTER (WHERE j.error LIKE 'splice parent result%')
		FROM jobs j JOIN workflow_steps s ON s.job_id = j.id
		WHERE EXISTS (SELECT 1 FROM workflow_edges e WHERE e.child = j.id)`).Scan(&released, &cancelled, &quarantined); err != nil {
		t.Fatal(err)
	}
	t.Logf("workflows %d, steps released %d, cancelled by a parent %d, quarantined at release %d, limited claims %d",
		len(workflows), released, cancelled, quarantined, limitedClaims)
	if released == 0 || cancelled == 0 || limitedClaims == 0 {
		t.Errorf("a path did not run: steps released %d, cancelled by a parent %d, limited claims %d", released, cancelled, limitedClaims)
	}
}

// TestCountsMigration opens a file written at the previous schema version
// (no counters) holding jobs in every state, a row with a bad state and one
// whose queue is not text: the migration fills the counters to what the
// scan counts, and they follow the next changes.
func TestCountsMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	raw := previousSchema(t, path)
	insert := func(n int, queue any, state string, runAt time.Time) {
		for range n {
			insertRaw(t, raw, queue, state, runAt)
		}
	}
	for i, s := range backend.AllStates() {
		insert(i+1, "q1", string(s), t0.Add(time.Duration(i)*time.Second))
		insert(2, "q2", string(s), t0.Add(-time.Duration(i)*time.Second))
	}
	insert(3, "q1", "bogus", t0)
	insert(1, 7, string(backend.StateFailed), t0)
	raw.Close()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var version int
	if err := b.read.QueryRow(`SELECT max(version) FROM nuvom_migrations`).Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("schema version %d, %v; want %d", version, err, len(migrations))
	}
	checkCounts(t, b, "migration")
	stats, err := b.Stats(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	// q1 holds i+1 jobs of the i-th state; its bad states count as quarantined.
	inQ1 := func(s backend.State) int { return slices.Index(backend.AllStates(), s) + 1 }
	want := map[countKey]int{{"q1", backend.StateQuarantined}: inQ1(backend.StateQuarantined) + 3,
		{"q1", backend.StateQueued}: inQ1(backend.StateQueued), {"q1", backend.StatePending}: inQ1(backend.StatePending),
		{"q2", backend.StateSucceeded}: 2, {"7", backend.StateFailed}: 1} // the TEXT column stores 7 as "7"
	seen := map[countKey]bool{}
	for _, s := range stats {
		if n, ok := want[countKey{s.Queue, s.State}]; ok && n != s.Count {
			t.Errorf("queue %q state %s: %d jobs, want %d", s.Queue, s.State, s.Count, n)
		}
		seen[countKey{s.Queue, s.State}] = true
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("queue %q state %s: no jobs, want %d", k.queue, k.state, want[k])
		}
	}
	mustEnqueue(t, b, newJobs(1, 5, "q2"))
	if _, err := b.Claim(ctx, backend.ClaimRequest{Limit: 100, Worker: "w", Now: t0.Add(time.Hour), LeaseFor: time.Minute}); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, b, "enqueue and claim after the migration")
}

// previousSchema creates a database at path at the schema version before
// the counters, as the previous release left it, and returns a raw
// connection to it.
func previousSchema(t *testing.T, path string) *sql.DB {
	t.Helper()
	return schemaBefore(t, path, sqlCountsMigration, "the counters")
}

// schemaBefore creates a database at path at the schema version before the
// migration (named what in failures) and returns a raw connection to it.
func schemaBefore(t *testing.T, path, migration, what string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	prev := slices.Index(migrations, migration)
	if prev < 0 {
		t.Fatalf("the %s migration is not in the list", what)
	}
	if _, err := raw.Exec(`CREATE TABLE nuvom_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations[:prev] {
		if _, err := raw.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
		if _, err := raw.Exec(`INSERT INTO nuvom_migrations VALUES (?, 1)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	return raw
}

// insertRaw writes a job row with plain SQL.
func insertRaw(t *testing.T, raw *sql.DB, queue any, state string, runAt time.Time) {
	t.Helper()
	var n int64
	if err := raw.QueryRow(`SELECT count(*) FROM jobs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO jobs (id, task, queue, state, run_at, created_at) VALUES (?, 't', ?, ?, ?, ?)`,
		backendtest.ID(uint64(n+1000)), queue, state, nanos(runAt), nanos(t0)); err != nil {
		t.Fatal(err)
	}
}

// TestCountsReadOnlyPreviousSchema: a read-only open migrates nothing, so
// on a database of the previous schema Stats counts by scanning, as before.
func TestCountsReadOnlyPreviousSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	raw := previousSchema(t, path)
	insertRaw(t, raw, "q", string(backend.StateQueued), t0)
	insertRaw(t, raw, "q", string(backend.StateQueued), t0.Add(-time.Second))
	insertRaw(t, raw, "q", string(backend.StateFailed), t0)
	raw.Close()
	ro, err := Open(path, WithReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	stats, err := ro.Stats(context.Background(), t0)
	if err != nil {
		t.Fatal(err)
	}
	want := []backend.QueueStat{{Queue: "q", State: backend.StateQueued, Count: 2, OldestRunAt: t0.Add(-time.Second)},
		{Queue: "q", State: backend.StateFailed, Count: 1, OldestRunAt: t0}}
	if len(stats) != 2 || stats[0].Count != 2 || !stats[0].OldestRunAt.Equal(want[0].OldestRunAt) || stats[1].Count != 1 || stats[1].State != backend.StateFailed {
		t.Fatalf("Stats = %+v, want %+v", stats, want)
	}
}

// TestCountsPlans checks that Stats reads only the counters and the claim
// index: no statement of it scans the jobs.
func TestCountsPlans(t *testing.T) {
	b := openTest(t)
	for _, tc := range []struct {
		name, sql string
		args      []any
		want      string
	}{
		{"counters", `SELECT queue, state, n FROM nuvom_counts WHERE n <> 0`, nil, "nuvom_counts"},
		{"due", sqlDue, []any{1}, "jobs_due"},
		{"first priority", sqlFirstPriority, []any{"t"}, "jobs_ready_task"},
		{"next priority", sqlNextPriority, []any{"t", 1}, "jobs_ready_task"},
		{"oldest in queue", sqlOldestIn, []any{"t", 1, "q"}, "jobs_ready_task"},
		{"oldest waiting", sqlWaitingOldest, []any{dueScanLimit}, "jobs_due"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := b.read.Query(`EXPLAIN QUERY PLAN `+tc.sql, tc.args...)
			if err != nil {
				t.Fatal(err)
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
			p := strings.Join(lines, "\n")
			t.Logf("plan:\n%s", p)
			if !strings.Contains(p, tc.want) {
				t.Errorf("plan does not use %s:\n%s", tc.want, p)
			}
			for _, bad := range []string{"SCAN jobs", "TEMP B-TREE"} {
				// The due count groups the due jobs only, the rows the
				// promotion then writes.
				// The oldest waiting jobs walk jobs_due in run-at order,
				// bounded by the LIMIT; the grouping is of those rows.
				allowed := tc.name == "oldest waiting" && !strings.Contains(strings.ReplaceAll(p, "SCAN jobs USING INDEX jobs_due", ""), "SCAN jobs")
				if strings.Contains(p, bad) && !((tc.name == "due" || tc.name == "oldest waiting") && bad == "TEMP B-TREE") && !allowed {
					t.Errorf("plan has %s:\n%s", bad, p)
				}
			}
			if tc.name != "counters" && tc.name != "due" && tc.name != "oldest waiting" && !slices.ContainsFunc(lines, func(l string) bool {
				return strings.Contains(l, "SEARCH") && strings.Contains(l, "=?")
			}) {
				t.Errorf("plan does not seek the index:\n%s", p)
			}
		})
	}
}

// TestCountsFirstClaimOfTasks claims named tasks as the first write of a
// freshly opened file: the counters' statements are prepared before the
// claim's transaction, not inside it, where preparing waits forever for the
// writer's one connection the transaction holds. The 60 s guard only
// bounds a hang.
func TestCountsFirstClaimOfTasks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "first.db")
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Enqueue(ctx, []*backend.Job{backendtest.NewJob(backendtest.ID(1), "a", t0)}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err = Open(path); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		jobs, err := b.Claim(ctx, backend.ClaimRequest{Limit: 1, Worker: "w", Now: t0, LeaseFor: time.Minute, Tasks: []string{"a"}})
		if err == nil && len(jobs) != 1 {
			err = fmt.Errorf("claimed %d jobs, want 1", len(jobs))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the first claim of named tasks did not return") // b is left open: Close would wait for it too
	}
	checkCounts(t, b, "first claim")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// statsAndScan returns b's Stats, read from the counters, and the same
// counts from a scan of the jobs.
func statsAndScan(t *testing.T, b *Backend) (stats, scan []backend.QueueStat) {
	t.Helper()
	stats, err := b.Stats(context.Background(), t0)
	if err != nil {
		t.Fatal(err)
	}
	if scan, err = b.statsByScan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return stats, scan
}

// TestPurgeInBatches purges more jobs than one transaction deletes
// (purgeBatch), interleaved with jobs the purge keeps: every selected job
// goes, the others stay, and the counters match the jobs left.
func TestPurgeInBatches(t *testing.T) {
	b := openTest(t)
	ctx := context.Background()
	const n = 2*purgeBatch + purgeBatch/2
	var jobs []*backend.Job
	for i := range n + n/5 {
		j := backendtest.NewJob(backendtest.ID(uint64(i+1)), "t", t0)
		if i%6 == 5 {
			j.Queue = "keep"
		}
		jobs = append(jobs, j)
	}
	mustEnqueue(t, b, jobs)
	want := 0
	for _, j := range jobs {
		if j.Queue != "keep" {
			want++
		}
	}
	got, err := b.Purge(ctx, backend.PurgeFilter{Queue: jobs[0].Queue})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Purge deleted %d jobs, want %d", got, want)
	}
	stats, scan := statsAndScan(t, b)
	if len(stats) != 1 || stats[0].Queue != "keep" || stats[0].Count != len(jobs)-want ||
		len(scan) != 1 || scan[0].Count != len(jobs)-want {
		t.Fatalf("after the purge: counters %+v, scan %+v; want %d jobs of queue keep", stats, scan, len(jobs)-want)
	}
}
