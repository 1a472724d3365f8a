package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/filelock"
	"github.com/nuvom/nuvom/internal/locktest"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
)

// When roleEnv is set, the test binary runs as a child process with that role
// (see child), configured by the JSON childArgs in argsEnv.
const (
	roleEnv = "NUVOM_FILE_TEST_ROLE"
	argsEnv = "NUVOM_FILE_TEST_ARGS"
)

// childArgs configures a child process.
type childArgs struct {
	Queue      string   `json:"queue"`      // backend folder
	Sync       string   `json:"sync"`       // folder for barriers, markers and signals
	Name       string   `json:"name"`       // the child's name in markers and signals
	Goroutines int      `json:"goroutines"` // contend: goroutines in this process
	Contenders int      `json:"contenders"` // contend: contenders in all processes
	IDs        []string `json:"ids"`        // contend: the job of each round
	Job        string   `json:"job"`        // hold, write-temp: the job id
}

// child runs the role and returns the exit code:
//
//   - contend: Goroutines goroutines run contend; every violation is printed
//     on stdout as a line starting with "VIOLATION";
//   - hold: takes the lock of Job, creates Sync/holding, then waits for the
//     end of stdin (the parent kills it first);
//   - write-temp: enqueues job Job up to the middle of its atomic write (the
//     id marker is made and the temp file holds the complete job), signals
//     Sync/<Name> with the temp path and its owner name, waits for the end of
//     stdin, then finishes the write (renames the temp file into ready/).
func child(role, raw string) int {
	var a childArgs
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		fmt.Fprintf(os.Stderr, "bad %s: %v\n", argsEnv, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), locktest.HangGuard)
	defer cancel()
	b, err := Open(a.Queue, WithSync(false))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer b.Close()
	switch role {
	case "contend":
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		for g := range a.Goroutines {
			wg.Go(func() {
				name := fmt.Sprintf("%s-g%d", a.Name, g)
				violations, err := contend(ctx, b, a.Sync, name, a.Contenders, a.IDs)
				mu.Lock()
				defer mu.Unlock()
				for _, v := range violations {
					fmt.Println("VIOLATION", v)
				}
				errs = append(errs, err)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "hold":
		if _, err := b.lock(ctx, jobLock(a.Job)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := locktest.Signal(a.Sync, "holding", "yes"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_, _ = io.Copy(io.Discard, os.Stdin)
		return 0
	case "write-temp":
		if err := writeTemp(b, a, os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown role %q\n", role)
	return 2
}

// writeTemp is the write-temp role.
func writeTemp(b *Backend, a childArgs, stdin io.Reader) error {
	j := backendtest.NewJob(a.Job, "t", epoch)
	if err := b.claimID(j.ID); err != nil { // as Enqueue does first
		return err
	}
	data, err := encodeJob(j)
	if err != nil {
		return err
	}
	f, err := b.tempFile()
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err := errors.Join(err, f.Close()); err != nil {
		return err
	}
	if err := locktest.Signal(a.Sync, a.Name, f.Name()+"\n"+b.owner); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, stdin)
	to, err := b.home(j, epoch)
	if err != nil {
		return err
	}
	return rename(f.Name(), to)
}

// contend takes the lock of the job of each round once. Before each round it
// waits until all contenders have reached it (a barrier of files under
// syncDir), so that they all go for the lock at the same moment. Inside the
// critical section, locktest.Critical reports a second holder as a violation
// and logs the entry.
func contend(ctx context.Context, b *Backend, syncDir, name string, contenders int, ids []string) ([]string, error) {
	var violations []string
	for r, id := range ids {
		if err := locktest.Barrier(ctx, filepath.Join(syncDir, fmt.Sprintf("round-%03d", r)), name, contenders); err != nil {
			return violations, err
		}
		unlock, err := b.lock(ctx, jobLock(id))
		if err != nil {
			return violations, err
		}
		v, err := locktest.Critical(syncDir, r, name)
		unlock()
		if v != "" {
			violations = append(violations, v)
		}
		if err != nil {
			return violations, err
		}
	}
	return violations, nil
}

// startChild runs the test binary as a child process with role and args.
func startChild(t *testing.T, role string, a childArgs) *locktest.Proc {
	t.Helper()
	raw, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return locktest.Start(t, roleEnv+"="+role, argsEnv+"="+string(raw))
}

// TestOneLockOwner has goroutines of this process and of two child processes
// contend for the lock of one job per round, all starting each round at the
// same moment, and checks inside the critical section that nobody else is in
// it. Each round starts with the lock file a crashed holder leaves behind,
// two minutes old: the former lock files broke such a file as stale with a
// stat and then a rename, and two breakers could both end up owners. A sweep
// runs all along, locking and removing free lock files as Open and
// RecoverExpired do.
func TestOneLockOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const (
		rounds     = 200
		goroutines = 3 // in this process
		procs      = 2
		perProc    = 2
		contenders = goroutines + procs*perProc
	)
	b := openTest(t, WithSync(false))
	syncDir := t.TempDir()
	ids := make([]string, rounds)
	old := time.Now().Add(-2 * time.Minute)
	for r := range ids {
		ids[r] = backendtest.ID(uint64(r + 1))
		p := b.path(locksDir, jobLock(ids[r]))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), locktest.HangGuard)
	defer cancel()

	var children []*locktest.Proc
	for i := range procs {
		children = append(children, startChild(t, "contend", childArgs{
			Queue: b.Dir(), Sync: syncDir, Name: fmt.Sprintf("p%d", i),
			Goroutines: perProc, Contenders: contenders, IDs: ids,
		}))
	}
	stopSweep := make(chan struct{})
	var sweeps sync.WaitGroup
	sweeps.Go(func() {
		for {
			select {
			case <-stopSweep:
				return
			default:
				b.sweep()
			}
		}
	})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			violations, err := contend(ctx, b, syncDir, fmt.Sprintf("parent-g%d", g), contenders, ids)
			for _, v := range violations {
				t.Error(v)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(stopSweep)
	sweeps.Wait()
	for i, p := range children {
		err := p.Wait(t)
		for _, line := range strings.Split(p.Stdout.String(), "\n") {
			if strings.HasPrefix(line, "VIOLATION") {
				t.Errorf("child p%d: %s", i, line)
			}
		}
		if err != nil {
			t.Errorf("child p%d: %v\n%s", i, err, p.Stderr.String())
		}
	}
	if t.Failed() {
		return
	}
	perRound := locktest.Entries(t, syncDir, rounds)
	for r, n := range perRound {
		if n != contenders {
			t.Errorf("round %d: %d entries into the critical section, want %d", r, n, contenders)
		}
	}
	// Every lock file is gone: released locks remove theirs, and the planted
	// leftovers went with the first release.
	if left, err := allNames(b.path(locksDir)); err != nil || slices.ContainsFunc(left, func(n string) bool { return strings.HasPrefix(n, jobPrefix) }) {
		t.Errorf("job lock files left in locks/: %v, %v", left, err)
	}
}

// TestKilledHolderFreesLock kills (SIGKILL) a child process that holds a
// job's lock: the job can be claimed as soon as the child is gone, with no
// stale-lock age to wait out, and the lock file the child left is removed.
func TestKilledHolderFreesLock(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	b := openTest(t, WithSync(false))
	job := testJobs(1, 1)[0]
	mustEnqueue(t, b, job)
	syncDir := t.TempDir()
	p := startChild(t, "hold", childArgs{Queue: b.Dir(), Sync: syncDir, Job: job.ID})
	p.WaitSignal(t, syncDir, "holding")

	// The child holds the lock: a claim passes the job by.
	if got, err := b.Claim(t.Context(), claimReq("w", 1)); err != nil || len(got) != 0 {
		t.Fatalf("Claim while the child holds the job's lock = %v, %v; want nothing", idsOf(got), err)
	}
	p.Kill(t)
	lockFile := b.path(locksDir, jobLock(job.ID))
	if !exists(lockFile) {
		t.Fatalf("the killed child left no lock file %s: the test does not show what it means to", lockFile)
	}

	// The kernel released the lock with the process. On Unix that is done by
	// the time Wait returns, so the very next claim must get the job. Windows
	// releases the locks of a terminated process soon, not at once: there the
	// test polls (the hang guard only turns a hang into a failure).
	claim := func() []*backend.Job {
		got, err := b.Claim(t.Context(), claimReq("w", 1))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := claim()
	if runtime.GOOS == "windows" {
		for deadline := time.Now().Add(locktest.HangGuard); len(got) == 0 && time.Now().Before(deadline); got = claim() {
			time.Sleep(time.Millisecond)
		}
	}
	if !slices.Equal(idsOf(got), []string{job.ID}) {
		t.Fatalf("Claim after the holder was killed = %v; want %s", idsOf(got), job.ID)
	}
	if exists(lockFile) {
		t.Errorf("lock file %s left by the killed child is still there after the claim", lockFile)
	}
}

// TestKilledWriterTempFilesRemoved kills (SIGKILL) a child process in the
// middle of an atomic write, whose temp file already holds a complete job,
// while another child is in the middle of a write too and stays alive. The
// dead writer's temp file is never read as a job, and the next sweep
// (RecoverExpired) removes it and its owner lock file; the live writer's temp
// file survives, and its write completes.
func TestKilledWriterTempFilesRemoved(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	b := openTest(t, WithSync(false))
	syncDir := t.TempDir()
	deadID, liveID := backendtest.ID(1), backendtest.ID(2)
	dead := startChild(t, "write-temp", childArgs{Queue: b.Dir(), Sync: syncDir, Name: "dead", Job: deadID})
	live := startChild(t, "write-temp", childArgs{Queue: b.Dir(), Sync: syncDir, Name: "live", Job: liveID})
	deadTemp, deadOwner, _ := strings.Cut(dead.WaitSignal(t, syncDir, "dead"), "\n")
	liveTemp, liveOwner, _ := strings.Cut(live.WaitSignal(t, syncDir, "live"), "\n")
	dead.Kill(t)
	if !exists(deadTemp) {
		t.Fatalf("the killed writer left no temp file %s", deadTemp)
	}

	// A temp file is not a job, however complete its content.
	for _, id := range []string{deadID, liveID} {
		if j, err := b.Get(t.Context(), id); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("Get(%s) of a job only in a temp file = %+v, %v; want ErrNotFound", id, j, err)
		}
	}
	if list, err := b.List(t.Context(), backend.ListFilter{}); err != nil || len(list) != 0 {
		t.Errorf("List = %v, %v; want no jobs", idsOf(list), err)
	}
	if got, err := b.Claim(t.Context(), claimReq("w", 10)); err != nil || len(got) != 0 {
		t.Errorf("Claim = %v, %v; want no jobs", idsOf(got), err)
	}

	if n, err := b.RecoverExpired(t.Context(), epoch, 0); err != nil || n != 0 {
		t.Fatalf("RecoverExpired = %d, %v", n, err)
	}
	if exists(deadTemp) || exists(b.path(locksDir, ownerLock(deadOwner))) {
		t.Errorf("after the sweep, the dead writer's temp file (%v) or owner lock file (%v) is still there",
			exists(deadTemp), exists(b.path(locksDir, ownerLock(deadOwner))))
	}
	if !exists(liveTemp) || !exists(b.path(locksDir, ownerLock(liveOwner))) {
		t.Fatalf("the sweep removed the live writer's temp file (%v) or owner lock file (%v)",
			!exists(liveTemp), !exists(b.path(locksDir, ownerLock(liveOwner))))
	}
	// A Backend opened now sweeps too, and leaves the live writer alone.
	other, err := Open(b.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if !exists(liveTemp) {
		t.Fatal("Open removed the live writer's temp file")
	}

	// The live writer completes its write: its job appears.
	_ = live.Stdin.Close()
	if err := live.Wait(t); err != nil {
		t.Fatalf("live writer: %v\n%s", err, live.Stderr.String())
	}
	if j, err := b.Get(t.Context(), liveID); err != nil || j.State != backend.StateQueued {
		t.Fatalf("Get(%s) after the live writer finished = %+v, %v", liveID, j, err)
	}
	if left, err := allNames(b.path(tmpDir)); err != nil || len(left) != 0 {
		t.Errorf("tmp/ holds %v, %v; want nothing", left, err)
	}
}

// TestSweep plants what crashes and earlier versions leave behind, next to
// the files of live Backends and a held lock, and checks that a sweep removes
// exactly the former.
func TestSweep(t *testing.T) {
	b := openTest(t)
	// A second live Backend on b's folder, with a write in progress.
	peer, err := Open(b.Dir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peer.Close() })
	peerTemp, err := peer.tempFile()
	if err != nil {
		t.Fatal(err)
	}
	_ = peerTemp.Close()
	ownTemp, err := b.tempFile()
	if err != nil {
		t.Fatal(err)
	}
	_ = ownTemp.Close()
	held, err := filelock.TryLock(b.path(locksDir, jobLock("held")))
	if err != nil || held == nil {
		t.Fatalf("TryLock = %v, %v", held, err)
	}
	t.Cleanup(func() { _ = held.UnlockRemove() })

	plant := func(parts ...string) string {
		p := b.path(parts...)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gone := []string{
		plant(locksDir, ownerLock("DEAD")),  // owner lock of a killed Backend
		plant(tmpDir, "DEAD-1"),             // and its temp files
		plant(tmpDir, "DEAD-2"),             //
		plant(tmpDir, "VANISHED-1"),         // temp file whose owner lock file is gone
		plant(locksDir, jobLock("crashed")), // a crash's job lock file
		plant(locksDir, keyLock("abc")),     // and key lock file
		plant(locksDir, ".token-123"),       // earlier versions' token
		plant(locksDir, "j-x.123.stale"),    // and broken lock
	}
	kept := []string{
		peerTemp.Name(), ownTemp.Name(), held.Path(),
		b.path(locksDir, ownerLock(b.owner)), b.path(locksDir, ownerLock(peer.owner)),
	}
	b.sweep()
	for _, p := range gone {
		if exists(p) {
			t.Errorf("sweep left %s", p)
		}
	}
	for _, p := range kept {
		if !exists(p) {
			t.Errorf("sweep removed %s, which a live Backend or lock holder uses", p)
		}
	}
}

// TestWriteAfterClose: a closed Backend has released its owner lock, so it
// refuses to write (a sweep could remove its temp files mid-write).
func TestWriteAfterClose(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), "queue"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Enqueue(t.Context(), testJobs(1, 1)); !errors.Is(err, errClosed) {
		t.Fatalf("Enqueue after Close = %v, want errClosed", err)
	}
	if exists(b.path(locksDir, ownerLock(b.owner))) {
		t.Error("Close left its owner lock file")
	}
}
