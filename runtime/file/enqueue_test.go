package file

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// wantNothingStored checks that none of jobs is stored, that no temp file is
// left in the ready and scheduled folders, and that the same batch can then
// be enqueued (no id marker is left behind).
func wantNothingStored(t *testing.T, b *Backend, jobs []*backend.Job, others int, unblock func()) {
	t.Helper()
	for _, j := range jobs {
		if _, err := b.Get(t.Context(), j.ID); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("after the failed Enqueue, Get(%s) = %v, want ErrNotFound", j.ID, err)
		}
	}
	_ = filepath.WalkDir(b.Dir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("temp file left behind: %s", p)
		}
		return nil
	})
	unblock()
	if l, err := b.List(t.Context(), backend.ListFilter{}); err != nil || len(l) != others {
		t.Fatalf("after the failed Enqueue, List = %d jobs, %v; want the %d stored before", len(l), err, others)
	}
	res, err := b.Enqueue(t.Context(), jobs)
	if err != nil {
		t.Fatalf("Enqueue of the same batch once the fault is gone: %v", err)
	}
	for i, r := range res {
		if r.Duplicate || r.ID != jobs[i].ID {
			t.Fatalf("result %d of the repeated Enqueue = %+v, want new job %s", i, r, jobs[i].ID)
		}
	}
	if got, err := b.Claim(t.Context(), backend.ClaimRequest{Limit: 1000, Worker: "w", Now: epoch}); err != nil || len(got) != others+len(jobs) {
		t.Fatalf("Claim after the repeated Enqueue = %d jobs, %v; want %d", len(got), err, others+len(jobs))
	}
}

// TestEnqueueWriteFailureStoresNothing: the 13th job of 100 cannot be
// written (its queue folder cannot be created). Enqueue used to leave the
// first 12 stored while reporting an error; now it stores none.
func TestEnqueueWriteFailureStoresNothing(t *testing.T) {
	b := openTest(t)
	jobs := testJobs(1, 100)
	jobs[12].Queue = "blocked"
	jobs[60].UniqueKey, jobs[60].UniqueUntil = "k", epoch.Add(1e12)
	block := b.path(readyDir, "blocked")
	if err := os.WriteFile(block, []byte("a file where the queue folder belongs"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Enqueue(t.Context(), jobs); err == nil {
		t.Fatal("Enqueue with an unwritable queue folder succeeded")
	}
	wantNothingStored(t, b, jobs, 0, func() {
		if err := os.Remove(block); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEnqueuePublishFailureStoresNothing: every job file is written, but
// moving the 51st of 100 into place fails (its name is taken by a folder).
// The key index and the 50 job files already moved are taken back.
func TestEnqueuePublishFailureStoresNothing(t *testing.T) {
	b := openTest(t)
	// An earlier job whose unique window has ended: the batch takes its key over.
	old := testJobs(1000, 1)[0]
	old.CreatedAt, old.RunAt = epoch.Add(-2*time.Hour), epoch.Add(-2*time.Hour)
	old.UniqueKey, old.UniqueUntil = "k", epoch.Add(-time.Hour)
	mustEnqueue(t, b, old)
	index := b.path(uniqueDir, keyFile(old.Task, "k"))
	before, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	jobs := testJobs(1, 100)
	jobs[3].UniqueKey, jobs[3].UniqueUntil = "k", epoch.Add(time.Hour)
	j := jobs[50]
	block := b.path(readyDir, "default", readyName(j.Priority, j.RunAt, j.ID))
	if err := os.MkdirAll(filepath.Join(block, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Enqueue(t.Context(), jobs); err == nil {
		t.Fatal("Enqueue with a folder in the way of a job file succeeded")
	}
	if after, err := os.ReadFile(index); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("unique-key index after the failed Enqueue: %x, %v; want its earlier content %x", after, err, before)
	}
	wantNothingStored(t, b, jobs, 1, func() {
		if err := os.RemoveAll(block); err != nil {
			t.Fatal(err)
		}
	})
}
