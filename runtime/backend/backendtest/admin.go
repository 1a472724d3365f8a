package backendtest

import (
	"slices"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// RunAdmin runs the conformance cases of backend.Admin against fresh
// backends made by open; the backend (or the one it wraps, see
// backend.AdminOf) must implement backend.Admin.
func RunAdmin(t *testing.T, open func(t *testing.T) backend.Backend) {
	for _, tc := range []testCase{
		{"WorkerRegistry", testWorkerRegistry},
		{"PausedQueues", testPausedQueues},
		{"MinuteAggregates", testMinuteAggregates},
		{"SearchPages", testSearchPages},
		{"Bulk", testBulk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			if b == nil {
				t.Fatal("open returned a nil backend")
			}
			tc.fn(&suite{t: t, b: b})
		})
	}
}

func (s *suite) admin() backend.Admin {
	s.t.Helper()
	a, ok := backend.AdminOf(s.b)
	if !ok {
		s.t.Fatalf("%T does not implement backend.Admin", s.b)
	}
	return a
}

func testWorkerRegistry(s *suite) {
	a, ctx := s.admin(), s.t.Context()
	w1 := backend.WorkerInfo{ID: "w1", Host: "h1", PID: 11, Version: "v1", ManifestHash: "m1", Concurrency: 4,
		Queues: []string{"a", "b"}, Running: 2, Every: 2 * sec, StartedAt: at(0), LastHeartbeat: at(0)}
	w2 := backend.WorkerInfo{ID: "w2", Host: "h2", PID: 22, Concurrency: 1, StartedAt: at(0), LastHeartbeat: at(5 * sec)}
	for _, w := range []backend.WorkerInfo{w1, w2} {
		if err := a.Heartbeat(ctx, w); err != nil {
			s.t.Fatalf("Heartbeat(%s): %v", w.ID, err)
		}
	}
	ws, err := a.Workers(ctx, at(6*sec))
	if err != nil {
		s.t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].ID != "w1" || ws[1].ID != "w2" {
		s.t.Fatalf("Workers = %+v, want w1, w2", ws)
	}
	if got := ws[0]; got.Host != "h1" || got.PID != 11 || got.Version != "v1" || got.ManifestHash != "m1" ||
		got.Concurrency != 4 || !slices.Equal(got.Queues, []string{"a", "b"}) || got.Running != 2 ||
		!got.StartedAt.Equal(at(0)) || !got.LastHeartbeat.Equal(at(0)) || got.Every != 2*sec {
		s.t.Fatalf("Workers()[0] = %+v, want %+v", got, w1)
	}
	// 6 s after its beat, w1 (every 2 s) missed exactly 3 beats: not gone yet; 1µs later it is.
	if ws[0].Gone || ws[1].Gone {
		s.t.Fatalf("Workers at +6s: gone = %t, %t; want neither", ws[0].Gone, ws[1].Gone)
	}
	ws, _ = a.Workers(ctx, at(6*sec+us))
	if !ws[0].Gone || ws[1].Gone {
		s.t.Fatalf("Workers at +6s+1µs: gone = %t, %t; want w1 only", ws[0].Gone, ws[1].Gone)
	}
	// A new beat replaces the row.
	w1.Running, w1.LastHeartbeat = 0, at(7*sec)
	if err := a.Heartbeat(ctx, w1); err != nil {
		s.t.Fatal(err)
	}
	ws, _ = a.Workers(ctx, at(8*sec))
	if len(ws) != 2 || ws[0].Gone || ws[0].Running != 0 || !ws[0].LastHeartbeat.Equal(at(7*sec)) {
		s.t.Fatalf("Workers after w1's new beat = %+v", ws)
	}
	if err := a.RemoveWorker(ctx, "w2"); err != nil {
		s.t.Fatal(err)
	}
	if err := a.RemoveWorker(ctx, "unknown"); err != nil {
		s.t.Fatalf("RemoveWorker(unknown) = %v, want nil", err)
	}
	// A beat forgets workers silent for longer than WorkerForgetAfter.
	w3 := backend.WorkerInfo{ID: "w3", LastHeartbeat: at(7*sec + backend.WorkerForgetAfter + sec)}
	if err := a.Heartbeat(ctx, w3); err != nil {
		s.t.Fatal(err)
	}
	ws, _ = a.Workers(ctx, w3.LastHeartbeat)
	if len(ws) != 1 || ws[0].ID != "w3" {
		s.t.Fatalf("Workers after w2 was removed and w1 forgotten = %+v, want w3 only", ws)
	}
}

func testPausedQueues(s *suite) {
	a, ctx := s.admin(), s.t.Context()
	j1 := s.job("t", onQueue("q1"), withPriority(9))
	j2 := s.job("t", onQueue("q2"))
	s.enqueue(j1, j2)
	if err := a.SetPaused(ctx, "q1", true); err != nil {
		s.t.Fatal(err)
	}
	if err := a.SetPaused(ctx, "q1", true); err != nil {
		s.t.Fatalf("pausing a paused queue: %v", err)
	}
	if p, err := a.Paused(ctx); err != nil || !slices.Equal(p, []string{"q1"}) {
		s.t.Fatalf("Paused = %v, %v; want [q1]", p, err)
	}
	if got := s.claim(backend.ClaimRequest{Queues: []string{"q1"}, Limit: 10, Worker: "w", Now: at(0), LeaseFor: min1}); len(got) != 0 {
		s.t.Fatalf("claim from paused q1 = %v, want none", idsOf(got))
	}
	if got := s.claim(backend.ClaimRequest{Tasks: []string{"t"}, Limit: 10, Worker: "w", Now: at(0), LeaseFor: min1}); !slices.Equal(idsOf(got), []string{j2.ID}) {
		s.t.Fatalf("claim of task t with q1 paused = %v, want [%s]", idsOf(got), j2.ID)
	}
	if got := s.claimAt(at(0), 10); len(got) != 0 {
		s.t.Fatalf("claim of any queue with q1 paused = %v, want none left", idsOf(got))
	}
	if err := a.SetPaused(ctx, "q1", false); err != nil {
		s.t.Fatal(err)
	}
	if p, err := a.Paused(ctx); err != nil || len(p) != 0 {
		s.t.Fatalf("Paused after resume = %v, %v; want none", p, err)
	}
	if got := s.claimAt(at(0), 10); !slices.Equal(idsOf(got), []string{j1.ID}) {
		s.t.Fatalf("claim after resuming q1 = %v, want [%s]", idsOf(got), j1.ID)
	}
}

func testMinuteAggregates(s *suite) {
	a, ctx := s.admin(), s.t.Context()
	jobs := s.jobs(4, "t", onQueue("q"))
	other := s.job("u")
	s.enqueue(append(jobs, other)...)
	c := s.claim(backend.ClaimRequest{Limit: 10, Worker: "w", Now: at(0), LeaseFor: hour})
	byID := map[string]*backend.Job{}
	for _, j := range c {
		byID[j.ID] = j
	}
	// Durations 3 ms, 40 ms, 40 ms (retrying) in the first minute; 2 s failed in the next.
	minute := Epoch().UTC().Truncate(time.Minute)
	o1 := outcome(byID[jobs[0].ID], backend.StateSucceeded, at(3*time.Millisecond))
	o2 := outcome(byID[jobs[1].ID], backend.StateSucceeded, at(40*time.Millisecond))
	o3 := outcome(byID[jobs[2].ID], backend.StateRetrying, at(40*time.Millisecond))
	o3.RunAt = at(hour)
	o4 := outcome(byID[other.ID], backend.StateSucceeded, at(time.Millisecond))
	s.completeOK(o1, o2, o3, o4)
	o5 := outcome(byID[jobs[3].ID], backend.StateFailed, minute.Add(min1).Add(sec))
	o5.Attempt.StartedAt = o5.FinishedAt.Add(-2 * sec)
	s.completeOK(o5)
	// A lost lease adds nothing.
	if errs := s.complete(o1); errs[0] == nil {
		s.t.Fatal("completing a finished job again succeeded")
	}
	if _, err := s.b.Purge(ctx, backend.PurgeFilter{}); err != nil {
		s.t.Fatal(err)
	}
	ms, err := a.Minutes(ctx, backend.MinuteFilter{Since: at(-hour), Queue: "q"})
	if err != nil {
		s.t.Fatal(err)
	}
	if len(ms) != 2 {
		s.t.Fatalf("Minutes of queue q after the jobs were purged = %+v, want 2 rows", ms)
	}
	m0, m1 := ms[0], ms[1]
	if !m0.Minute.Equal(minute) || m0.Task != "t" || m0.Succeeded != 2 || m0.Retried != 1 || m0.Failed != 0 ||
		m0.Duration != 83*time.Millisecond || m0.Processed() != 3 {
		s.t.Fatalf("first minute = %+v, want 2 succeeded + 1 retried taking 83ms in %s", m0, minute)
	}
	if m0.Buckets[backend.BucketOf(3*time.Millisecond)] != 1 || m0.Buckets[backend.BucketOf(40*time.Millisecond)] != 2 {
		s.t.Fatalf("first minute's histogram = %v", m0.Buckets)
	}
	if p := m0.Quantile(0.5); p != 50*time.Millisecond {
		s.t.Fatalf("p50 of 3ms, 40ms, 40ms = %s, want the 50ms bucket bound", p)
	}
	if !m1.Minute.Equal(minute.Add(min1)) || m1.Failed != 1 || m1.Duration != 2*sec {
		s.t.Fatalf("second minute = %+v, want 1 failed taking 2s", m1)
	}
	all, _ := a.Minutes(ctx, backend.MinuteFilter{Since: at(-hour)})
	if len(all) != 3 {
		s.t.Fatalf("Minutes of every queue = %+v, want 3 rows", all)
	}
	if got, _ := a.Minutes(ctx, backend.MinuteFilter{Since: at(-hour), Until: minute.Add(min1), Task: "t"}); len(got) != 1 {
		s.t.Fatalf("Minutes until the second minute of task t = %+v, want the first row only", got)
	}
	// Summed per hour over everything: one row of 5 attempts.
	f := backend.MinuteFilter{Since: at(-hour), Step: hour, Group: backend.GroupAll}
	sum, err := a.Minutes(ctx, f)
	if err != nil {
		s.t.Fatal(err)
	}
	if len(sum) != 1 || sum[0].Processed() != 5 || sum[0].Queue != "" || sum[0].Task != "" ||
		!sum[0].Minute.Equal(f.Bucket(minute)) || sum[0].Duration != 83*time.Millisecond+time.Millisecond+2*sec {
		s.t.Fatalf("Minutes per hour of everything = %+v, want 5 attempts in the hour of %s", sum, f.Bucket(minute))
	}
	byTask, err := a.Minutes(ctx, backend.MinuteFilter{Since: at(-hour), Step: 24 * hour, Group: backend.GroupTask})
	if err != nil {
		s.t.Fatal(err)
	}
	if len(byTask) != 2 || byTask[0].Task != "t" || byTask[0].Processed() != 4 || byTask[0].Queue != "" ||
		byTask[1].Task != "u" || byTask[1].Processed() != 1 {
		s.t.Fatalf("Minutes per day by task = %+v, want t: 4, u: 1", byTask)
	}
	byQueue, err := a.Minutes(ctx, backend.MinuteFilter{Since: at(-hour), Group: backend.GroupQueue})
	if err != nil {
		s.t.Fatal(err)
	}
	if len(byQueue) != 3 || byQueue[0].Queue != "default" || byQueue[0].Task != "" || byQueue[1].Queue != "q" || byQueue[1].Processed() != 3 {
		s.t.Fatalf("Minutes per minute by queue = %+v", byQueue)
	}
}

func testSearchPages(s *suite) {
	a, ctx := s.admin(), s.t.Context()
	var all []*backend.Job
	for i := range 7 {
		q := "q1"
		if i%2 == 1 {
			q = "q2"
		}
		j := s.job("t", onQueue(q), createdAt(at(time.Duration(i)*sec)))
		all = append(all, j)
	}
	all[3].Args = []byte(`{"name":"<needle>"}`)
	all[5].UniqueKey, all[5].UniqueUntil = "order-42", at(hour)
	s.enqueue(all...)
	// Pages of 3, newest first, by keyset.
	var got []string
	after := ""
	for range 4 {
		page, err := a.Search(ctx, backend.JobQuery{Limit: 3, After: after})
		if err != nil {
			s.t.Fatal(err)
		}
		got = append(got, idsOfOrdered(page.Jobs)...)
		if page.Next == "" {
			break
		}
		if page.Next != page.Jobs[len(page.Jobs)-1].ID {
			s.t.Fatalf("page %v has Next %s, want its last id", idsOfOrdered(page.Jobs), page.Next)
		}
		after = page.Next
	}
	var want []string
	for i := len(all) - 1; i >= 0; i-- {
		want = append(want, all[i].ID)
	}
	if !slices.Equal(got, want) {
		s.t.Fatalf("pages = %v, want %v", got, want)
	}
	check := func(q backend.JobQuery, want ...string) {
		s.t.Helper()
		page, err := a.Search(ctx, q)
		if err != nil {
			s.t.Fatal(err)
		}
		if g := idsOfOrdered(page.Jobs); !slices.Equal(g, want) && !(len(g) == 0 && len(want) == 0) {
			s.t.Fatalf("Search(%+v) = %v, want %v", q, g, want)
		}
	}
	check(backend.JobQuery{Queue: "q2"}, all[5].ID, all[3].ID, all[1].ID)
	check(backend.JobQuery{Queue: "q2", After: all[3].ID}, all[1].ID)
	check(backend.JobQuery{Since: at(2 * sec), Until: at(4 * sec)}, all[3].ID, all[2].ID)
	check(backend.JobQuery{MinID: all[2].ID, After: all[5].ID}, all[4].ID, all[3].ID, all[2].ID)
	check(backend.JobQuery{Text: "needle"}, all[3].ID)
	check(backend.JobQuery{Text: "order-42"}, all[5].ID)
	check(backend.JobQuery{Text: all[4].ID}, all[4].ID)
	check(backend.JobQuery{Text: all[4].ID, Queue: "q2"})
	check(backend.JobQuery{States: []backend.State{backend.StateFailed}})
	check(backend.JobQuery{Task: "other"})
}

func testBulk(s *suite) {
	a, ctx := s.admin(), s.t.Context()
	xs := s.jobs(3, "x", withAttempts(1))
	y := s.job("y", withAttempts(1))
	s.enqueue(append(xs, y)...)
	for _, j := range s.claimAt(at(0), 10) {
		s.completeOK(outcome(j, backend.StateFailed, at(sec)))
	}
	// All failed jobs of task x.
	n, err := a.Bulk(ctx, backend.BulkRetry, backend.Selection{State: backend.StateFailed, Task: "x"}, at(2*sec))
	if err != nil || n != 3 {
		s.t.Fatalf("bulk retry of failed x = %d, %v; want 3", n, err)
	}
	for _, j := range xs {
		s.wantState(j.ID, backend.StateQueued, "bulk retried")
	}
	s.wantState(y.ID, backend.StateFailed, "not of task x")
	// A selection of ids; the failed y is skipped by cancel.
	n, err = a.Bulk(ctx, backend.BulkCancel, backend.Selection{IDs: []string{xs[0].ID, xs[1].ID, y.ID, "missing"}}, at(3*sec))
	if err != nil || n != 2 {
		s.t.Fatalf("bulk cancel = %d, %v; want 2", n, err)
	}
	s.wantState(xs[0].ID, backend.StateCancelled, "bulk cancelled")
	s.wantState(y.ID, backend.StateFailed, "a failed job cannot be cancelled")
	n, err = a.Bulk(ctx, backend.BulkDelete, backend.Selection{State: backend.StateCancelled}, at(4*sec))
	if err != nil || n != 2 {
		s.t.Fatalf("bulk delete of cancelled = %d, %v; want 2", n, err)
	}
	if _, err := s.b.Get(ctx, xs[0].ID); !isErr(err, backend.ErrNotFound) {
		s.t.Fatalf("Get of a bulk-deleted job = %v, want ErrNotFound", err)
	}
	if n, err := a.Bulk(ctx, backend.BulkRetry, backend.Selection{}, at(5*sec)); err != nil || n != 0 {
		s.t.Fatalf("bulk retry of an empty selection = %d, %v; want 0", n, err)
	}
}
