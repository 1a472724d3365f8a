package file

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/filelock"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

var epoch = backendtest.Epoch()

// jobs returns n queued jobs with ids from the backendtest sequence, starting at first.
func testJobs(first, n int) []*backend.Job {
	out := make([]*backend.Job, n)
	for i := range out {
		out[i] = backendtest.NewJob(backendtest.ID(uint64(first+i)), "t", epoch)
	}
	return out
}

func mustEnqueue(t testing.TB, b *Backend, jobs ...*backend.Job) {
	t.Helper()
	if _, err := b.Enqueue(t.Context(), jobs); err != nil {
		t.Fatal(err)
	}
}

func claimReq(worker string, limit int) backend.ClaimRequest {
	return backend.ClaimRequest{Limit: limit, Worker: worker, Now: epoch.Add(time.Second), LeaseFor: time.Hour}
}

// readyPath returns the path of the ready file of job id on queue "default".
func readyPath(t *testing.T, b *Backend, id string) string {
	t.Helper()
	names, err := readNames(b.path(readyDir, "default"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, "-"+id) {
			return b.path(readyDir, "default", n)
		}
	}
	t.Fatalf("no ready file for job %s in %v", id, names)
	return ""
}

func TestNameOrder(t *testing.T) {
	at := func(s int) time.Time { return epoch.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name        string
		first, next string // first must sort before next
	}{
		{"higher priority first", readyName(5, at(9), "B"), readyName(4, at(0), "A")},
		{"negative priorities", readyName(-1, at(9), "B"), readyName(-2, at(0), "A")},
		{"zero before negative", readyName(0, at(9), "B"), readyName(-1, at(0), "A")},
		{"huge priority", readyName(1<<40, at(9), "B"), readyName(1, at(0), "A")},
		{"earlier run-at", readyName(1, at(1), "B"), readyName(1, at(2), "A")},
		{"before 1970", readyName(1, time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), "B"), readyName(1, at(0), "A")},
		{"zero time first", readyName(1, time.Time{}, "B"), readyName(1, at(0), "A")},
		{"then id", readyName(1, at(1), "A"), readyName(1, at(1), "B")},
		{"scheduled by run-at", scheduledName(0, at(1), "B"), scheduledName(9, at(2), "A")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.first >= tc.next {
				t.Errorf("%s sorts after %s", tc.first, tc.next)
			}
			a, ok1 := parseName(tc.first)
			c, ok2 := parseName(tc.next)
			if !ok1 || !ok2 || !a.less(c) {
				t.Errorf("parsed entries out of order: %+v %+v", a, c)
			}
		})
	}
}

func TestQueueDir(t *testing.T) {
	tests := []struct{ queue, want string }{
		{"default", "default"},
		{"images_v2-x", "images_v2-x"},
	}
	for _, tc := range tests {
		if got := queueDir(tc.queue); got != tc.want {
			t.Errorf("queueDir(%q) = %q, want %q", tc.queue, got, tc.want)
		}
	}
	// Names that differ only in case, or hold path characters, get distinct hashed folders.
	odd := []string{"Images", "images/../x", "a b", "", "ünï"}
	seen := map[string]bool{"images": true}
	for _, q := range odd {
		d := queueDir(q)
		if !strings.HasPrefix(d, "~") || strings.ContainsAny(d, `/\ .`) || seen[d] {
			t.Errorf("queueDir(%q) = %q, want a distinct ~hash name", q, d)
		}
		seen[d] = true
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"01J0ABC", "job-1", "a.b_c"} {
		if err := checkID(id); err != nil {
			t.Errorf("checkID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "../x", "a/b", `a\b`, ".hidden", "-x", "a b", strings.Repeat("x", 200)} {
		if err := checkID(id); err == nil {
			t.Errorf("checkID(%q) accepted an unsafe id", id)
		}
	}
}

func TestCorruptReadyFileIsQuarantined(t *testing.T) {
	var logs bytes.Buffer
	b := openTest(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	jobs := testJobs(1, 3)
	mustEnqueue(t, b, jobs...)
	bad := jobs[1].ID
	path := readyPath(t, b, bad)
	if err := os.WriteFile(path, []byte("this is not msgpack \x00\xff garbage"), 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := b.Claim(t.Context(), claimReq("w", 10))
	if err != nil {
		t.Fatalf("Claim with a corrupt file among the jobs: %v", err)
	}
	if ids := idsOf(got); !slices.Equal(ids, []string{jobs[0].ID, jobs[2].ID}) {
		t.Fatalf("claimed %v, want the two good jobs %s %s", ids, jobs[0].ID, jobs[2].ID)
	}
	dst := b.path(corruptDir, bad+corruptExt)
	if data, err := os.ReadFile(dst); err != nil || !bytes.Contains(data, []byte("garbage")) {
		t.Fatalf("quarantined copy %s: %q, %v", dst, data, err)
	}
	if !strings.Contains(logs.String(), "quarantined") || !strings.Contains(logs.String(), path) {
		t.Fatalf("log does not name the corrupt file %s:\n%s", path, logs.String())
	}

	// List and Get show it as quarantined under its id.
	list, err := b.List(t.Context(), backend.ListFilter{States: []backend.State{backend.StateQuarantined}})
	if err != nil || len(list) != 1 || list[0].ID != bad || list[0].State != backend.StateQuarantined {
		t.Fatalf("List quarantined = %v, %v; want job %s", list, err, bad)
	}
	if j, err := b.Get(t.Context(), bad); err != nil || j.State != backend.StateQuarantined || !strings.Contains(j.Error, "cannot be decoded") {
		t.Fatalf("Get of the quarantined file = %+v, %v", j, err)
	}
	// Retry fails clearly; Purge drops it.
	err = b.Retry(t.Context(), bad, epoch)
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, backend.ErrWrongState) || !strings.Contains(err.Error(), "unreadable") {
		t.Fatalf("Retry of an undecodable file = %v, want ErrCorrupt and ErrWrongState saying the payload is unreadable", err)
	}
	if n, err := b.Purge(t.Context(), backend.PurgeFilter{States: []backend.State{backend.StateQuarantined}}); err != nil || n != 1 {
		t.Fatalf("Purge quarantined = %d, %v; want 1", n, err)
	}
	if _, err := b.Get(t.Context(), bad); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Get after Purge = %v, want ErrNotFound", err)
	}
	// The good jobs still complete normally.
	for _, j := range got {
		if errs, err := b.Complete(t.Context(), []backend.Outcome{{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: epoch}}); err != nil || errs[0] != nil {
			t.Fatalf("Complete %s: %v %v", j.ID, err, errs)
		}
	}
}

func TestCorruptRunningFileIsQuarantinedByRecover(t *testing.T) {
	var logs bytes.Buffer
	b := openTest(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	mustEnqueue(t, b, testJobs(1, 2)...)
	got, err := b.Claim(t.Context(), claimReq("w", 2))
	if err != nil || len(got) != 2 {
		t.Fatalf("Claim = %d, %v", len(got), err)
	}
	path := b.path(runningDir, got[0].ID)
	if err := os.WriteFile(path, nil, 0o644); err != nil { // truncated to nothing
		t.Fatal(err)
	}
	n, err := b.RecoverExpired(t.Context(), epoch.Add(2*time.Hour), 5)
	if err != nil || n != 1 {
		t.Fatalf("RecoverExpired = %d, %v; want the one good expired job", n, err)
	}
	if !exists(b.path(corruptDir, got[0].ID+corruptExt)) || !strings.Contains(logs.String(), path) {
		t.Fatalf("truncated running file not quarantined with a log line naming %s:\n%s", path, logs.String())
	}
	// A worker still holding the lease of the corrupt job loses it.
	errs, err := b.Complete(t.Context(), []backend.Outcome{{Lease: got[0].Lease(), State: backend.StateSucceeded}})
	if err != nil || !errors.Is(errs[0], backend.ErrLeaseLost) {
		t.Fatalf("Complete of a quarantined job = %v, %v; want ErrLeaseLost", errs, err)
	}
}

// TestCrashRepair plants the files a crash between a content write and the
// move to the matching folder leaves behind, and checks that the sweeps in
// Claim and RecoverExpired put each where its content says.
func TestCrashRepair(t *testing.T) {
	b := openTest(t)
	jobs := testJobs(1, 3)
	mustEnqueue(t, b, jobs...)
	now := epoch.Add(time.Second)

	// 1. Claim renamed ready -> running, then crashed before writing the lease.
	if err := rename(readyPath(t, b, jobs[0].ID), b.path(runningDir, jobs[0].ID)); err != nil {
		t.Fatal(err)
	}
	// 2. Cancel wrote "cancelled" over the ready file, then crashed before the move.
	cancelled := *jobs[1]
	cancelled.State, cancelled.FinishedAt = backend.StateCancelled, now
	if err := b.save(readyPath(t, b, jobs[1].ID), &cancelled); err != nil {
		t.Fatal(err)
	}
	// 3. Complete wrote "succeeded" over the running file, then crashed.
	c, err := b.Claim(t.Context(), claimReq("w", 1))
	if err != nil || len(c) != 1 || c[0].ID != jobs[2].ID {
		t.Fatalf("Claim = %v, %v; want %s", idsOf(c), err, jobs[2].ID)
	}
	done := *c[0]
	done.State, done.LeaseOwner, done.LeaseUntil = backend.StateSucceeded, "", time.Time{}
	if err := b.save(b.path(runningDir, done.ID), &done); err != nil {
		t.Fatal(err)
	}

	if n, err := b.RecoverExpired(t.Context(), now, 5); err != nil || n != 0 {
		t.Fatalf("RecoverExpired = %d, %v; repairs are not lost leases", n, err)
	}
	if !exists(b.path(doneDir, done.ID)) || exists(b.path(runningDir, done.ID)) {
		t.Errorf("succeeded file left in running/ was not moved to done/")
	}
	if exists(b.path(runningDir, jobs[0].ID)) {
		t.Errorf("queued file left in running/ was not moved back to ready/")
	}
	got, err := b.Claim(t.Context(), claimReq("w", 10))
	if err != nil || !slices.Equal(idsOf(got), []string{jobs[0].ID}) {
		t.Fatalf("Claim after repair = %v, %v; want only %s (the cancelled job must not run)", idsOf(got), err, jobs[0].ID)
	}
	if got[0].Attempt != 1 || got[0].LeaseToken != 1 {
		t.Errorf("repaired job claimed at attempt %d token %d, want 1 and 1", got[0].Attempt, got[0].LeaseToken)
	}
	if j, err := b.Get(t.Context(), jobs[1].ID); err != nil || j.State != backend.StateCancelled || !exists(b.path(doneDir, jobs[1].ID)) {
		t.Fatalf("cancelled job after repair: %+v, %v; want cancelled in done/", j, err)
	}
}

// TestLeftoverLockFileIsFree: a lock file that nobody holds (what a crash
// leaves, however recent) does not keep a job from being claimed, and the
// claim removes it; a lock that another open file holds does.
func TestLeftoverLockFileIsFree(t *testing.T) {
	b := openTest(t)
	jobs := testJobs(1, 2)
	mustEnqueue(t, b, jobs...)
	held, err := filelock.TryLock(b.path(locksDir, jobLock(jobs[0].ID)))
	if err != nil || held == nil {
		t.Fatalf("TryLock = %v, %v", held, err)
	}
	leftover := b.path(locksDir, jobLock(jobs[1].ID))
	if err := os.WriteFile(leftover, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := b.Claim(t.Context(), claimReq("w", 10))
	if err != nil || !slices.Equal(idsOf(got), []string{jobs[1].ID}) {
		t.Fatalf("Claim = %v, %v; want only %s (the other job's lock is held)", idsOf(got), err, jobs[1].ID)
	}
	if exists(leftover) {
		t.Errorf("the claim left the leftover lock file %s", leftover)
	}
	if err := held.UnlockRemove(); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Claim(t.Context(), claimReq("w", 10)); err != nil || !slices.Equal(idsOf(got), []string{jobs[0].ID}) {
		t.Fatalf("Claim after the lock was released = %v, %v", idsOf(got), err)
	}
}

func TestEnqueueRefusesUnsafeID(t *testing.T) {
	b := openTest(t)
	j := backendtest.NewJob("../escape", "t", epoch)
	if _, err := b.Enqueue(t.Context(), []*backend.Job{j}); err == nil {
		t.Fatal("Enqueue of id ../escape succeeded")
	}
	if _, err := b.Get(t.Context(), "../escape"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Get(../escape) = %v, want ErrNotFound", err)
	}
}

// TestTwoBackendsOneFolder runs claimers on two Backends that share only the
// folder: every job is claimed exactly once and completes.
func TestTwoBackendsOneFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "queue")
	var bs []*Backend
	for range 2 {
		b, err := Open(dir, WithSync(false))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		bs = append(bs, b)
	}
	const total = 300
	mustEnqueue(t, bs[0], testJobs(1, total)...)
	claimed := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 6 {
		b := bs[w%2]
		worker := fmt.Sprintf("b%d-w%d", w%2, w)
		wg.Go(func() {
			for {
				jobs, err := b.Claim(t.Context(), claimReq(worker, 7))
				if err != nil {
					t.Errorf("%s: %v", worker, err)
					return
				}
				if len(jobs) == 0 {
					return
				}
				outs := make([]backend.Outcome, len(jobs))
				mu.Lock()
				for i, j := range jobs {
					if prev, dup := claimed[j.ID]; dup {
						t.Errorf("job %s claimed by %s and by %s", j.ID, prev, worker)
					}
					claimed[j.ID] = worker
					outs[i] = backend.Outcome{Lease: j.Lease(), State: backend.StateSucceeded, FinishedAt: epoch}
				}
				mu.Unlock()
				errs, err := b.Complete(t.Context(), outs)
				if err != nil {
					t.Errorf("%s: Complete: %v", worker, err)
					return
				}
				for _, e := range errs {
					if e != nil {
						t.Errorf("%s: %v", worker, e)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(claimed) != total {
		t.Fatalf("claimed %d distinct jobs, want %d", len(claimed), total)
	}
	stats, err := bs[1].Stats(t.Context(), epoch)
	if err != nil || len(stats) != 1 || stats[0].State != backend.StateSucceeded || stats[0].Count != total {
		t.Fatalf("Stats = %+v, %v; want %d succeeded", stats, err, total)
	}
}

// TestNotifyAcrossBackends checks that a Backend learns of a job enqueued by
// another Backend on the same folder (as another process would) without
// polling the queue.
func TestNotifyAcrossBackends(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "queue")
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	other, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ch, cancel := a.Subscribe()
	defer cancel()
	for i, q := range []string{"default", "brand-new-queue"} {
		drain(ch)
		j := backendtest.NewJob(backendtest.ID(uint64(i+1)), "t", epoch)
		j.Queue = q
		start := time.Now()
		mustEnqueue(t, other, j)
		select {
		case <-ch:
			t.Logf("queue %s: notified after %s", q, time.Since(start))
		case <-time.After(5 * time.Second):
			t.Fatalf("queue %s: no notification within 5s of an enqueue by another Backend", q)
		}
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		case <-time.After(20 * time.Millisecond):
			return
		}
	}
}

func idsOf(jobs []*backend.Job) []string {
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	slices.Sort(ids)
	return ids
}
