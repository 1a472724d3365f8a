package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom/internal/locktest"
	"github.com/nuvom/nuvom/runtime/schedule"
)

// When roleEnv is set, the test binary runs as a child process with that role
// (see child), configured by the JSON childArgs in argsEnv.
const (
	roleEnv = "NUVOM_FILESTORE_TEST_ROLE"
	argsEnv = "NUVOM_FILESTORE_TEST_ARGS"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(child(role, os.Getenv(argsEnv)))
	}
	os.Exit(m.Run())
}

// childArgs configures a child process.
type childArgs struct {
	Stores     []string `json:"stores"`     // contend: the store folder of each round; others: Stores[0]
	Sync       string   `json:"sync"`       // folder for barriers, markers and signals
	Name       string   `json:"name"`       // the child's name in markers and signals
	Goroutines int      `json:"goroutines"` // contend: goroutines in this process
	Contenders int      `json:"contenders"` // contend: contenders in all processes
}

// child runs the role and returns the exit code:
//
//   - contend: Goroutines goroutines run contend; every violation is printed
//     on stdout as a line starting with "VIOLATION";
//   - hold: takes the store's lock, signals Sync/holding, then waits for the
//     end of stdin (the parent kills it first);
//   - write-temp: takes the lock and writes half of a schedule into a temp
//     file as writeAtomic does, signals Sync/<Name> with the temp path, then
//     waits for the end of stdin (the parent kills it first).
func child(role, raw string) int {
	var a childArgs
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		fmt.Fprintf(os.Stderr, "bad %s: %v\n", argsEnv, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), locktest.HangGuard)
	defer cancel()
	var err error
	switch role {
	case "contend":
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		for g := range a.Goroutines {
			wg.Go(func() {
				violations, err := contend(ctx, a.Stores, a.Sync, fmt.Sprintf("%s-g%d", a.Name, g), a.Contenders)
				mu.Lock()
				defer mu.Unlock()
				for _, v := range violations {
					fmt.Println("VIOLATION", v)
				}
				errs = append(errs, err)
			})
		}
		wg.Wait()
		err = errors.Join(errs...)
	case "hold", "write-temp":
		err = hold(ctx, role, a)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// hold is the hold and write-temp roles.
func hold(ctx context.Context, role string, a childArgs) error {
	s, err := Open(a.Stores[0])
	if err != nil {
		return err
	}
	if _, err := s.lock(ctx); err != nil {
		return err
	}
	text := "holding"
	if role == "write-temp" {
		f, err := os.CreateTemp(s.dir, ".tmp-*")
		if err != nil {
			return err
		}
		if _, err := f.WriteString(`{"id": "half-written", "spec": `); err != nil {
			return err
		}
		text = f.Name()
	}
	if err := locktest.Signal(a.Sync, a.Name, text); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// contend takes the lock of the store of each round once, all contenders
// starting each round together (a file barrier); inside, locktest.Critical
// reports a second holder as a violation.
func contend(ctx context.Context, stores []string, syncDir, name string, contenders int) ([]string, error) {
	var violations []string
	for r, dir := range stores {
		if err := locktest.Barrier(ctx, filepath.Join(syncDir, fmt.Sprintf("round-%03d", r)), name, contenders); err != nil {
			return violations, err
		}
		s, err := Open(dir)
		if err != nil {
			return violations, err
		}
		unlock, err := s.lock(ctx)
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
// take the lock of a store, all at once, in each of many rounds (a fresh store
// per round), and checks inside the critical section that nobody else is in
// it. Each store starts with the lock folder an earlier version left behind
// when it crashed, a minute old: that version broke such a folder as stale
// with a stat and then a remove, and two breakers could both end up owners.
func TestOneLockOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const (
		rounds     = 100
		goroutines = 3 // in this process
		procs      = 2
		perProc    = 2
		contenders = goroutines + procs*perProc
	)
	base, syncDir := t.TempDir(), t.TempDir()
	stores := make([]string, rounds)
	old := time.Now().Add(-time.Minute)
	for r := range stores {
		stores[r] = filepath.Join(base, fmt.Sprintf("store-%03d", r))
		leftover := filepath.Join(stores[r], "lock.d")
		if err := os.MkdirAll(leftover, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(leftover, old, old); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), locktest.HangGuard)
	defer cancel()
	var children []*locktest.Proc
	for i := range procs {
		children = append(children, startChild(t, "contend", childArgs{
			Stores: stores, Sync: syncDir, Name: fmt.Sprintf("p%d", i), Goroutines: perProc, Contenders: contenders,
		}))
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			violations, err := contend(ctx, stores, syncDir, fmt.Sprintf("parent-g%d", g), contenders)
			for _, v := range violations {
				t.Error(v)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
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
	for r, n := range locktest.Entries(t, syncDir, rounds) {
		if n != contenders {
			t.Errorf("round %d: %d entries into the critical section, want %d", r, n, contenders)
		}
	}
}

// lockNow takes the store's lock if it is free now: with an ended context,
// lock tries once and does not wait. On Windows, which releases the locks of
// a terminated process soon but not at once, it polls up to the hang guard.
func lockNow(t *testing.T, s *Store) (func(), error) {
	t.Helper()
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	unlock, err := s.lock(ended)
	for deadline := time.Now().Add(locktest.HangGuard); err != nil && runtime.GOOS == "windows" && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		unlock, err = s.lock(ended)
	}
	return unlock, err
}

// TestKilledHolderFreesLock kills (SIGKILL) a child process that holds the
// store's lock: the lock is free as soon as the child is gone, with no
// stale-lock age to wait out.
func TestKilledHolderFreesLock(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir, syncDir := t.TempDir(), t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := startChild(t, "hold", childArgs{Stores: []string{dir}, Sync: syncDir, Name: "holding"})
	p.WaitSignal(t, syncDir, "holding")
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	if unlock, err := s.lock(ended); err == nil {
		unlock()
		t.Fatal("took the lock while the child holds it")
	}
	p.Kill(t)
	unlock, err := lockNow(t, s)
	if err != nil {
		t.Fatalf("lock after its holder was killed: %v", err)
	}
	unlock()
	if err := s.Upsert(t.Context(), schedule.Schedule{ID: "a"}); err != nil {
		t.Fatal(err)
	}
}

// TestKilledWriterTempFileRemoved kills (SIGKILL) a child process in the
// middle of a write: its temp file is not read as a schedule, and the next
// holder of the lock removes it.
func TestKilledWriterTempFileRemoved(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir, syncDir := t.TempDir(), t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := startChild(t, "write-temp", childArgs{Stores: []string{dir}, Sync: syncDir, Name: "writer"})
	temp := p.WaitSignal(t, syncDir, "writer")
	p.Kill(t)
	if _, err := os.Stat(temp); err != nil {
		t.Fatalf("the killed writer left no temp file: %v", err)
	}
	if list, err := s.List(t.Context()); err != nil || len(list) != 0 {
		t.Fatalf("List = %v, %v; want nothing", list, err)
	}
	unlock, err := lockNow(t, s)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if _, err := os.Stat(temp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp file %s of the killed writer is still there after the next lock (stat: %v)", temp, err)
	}
}
