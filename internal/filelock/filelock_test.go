package filelock

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTryLockExcludesInProcess: a lock belongs to an open file, so a second
// TryLock in the same process fails until the first is released.
func TestTryLockExcludesInProcess(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	a, err := TryLock(p)
	if err != nil || a == nil {
		t.Fatalf("first TryLock = %v, %v", a, err)
	}
	if b, err := TryLock(p); err != nil || b != nil {
		t.Fatalf("second TryLock while held = %v, %v; want nil, nil", b, err)
	}
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("Unlock removed the lock file: %v", err)
	}
	b, err := TryLock(p)
	if err != nil || b == nil {
		t.Fatalf("TryLock after Unlock = %v, %v", b, err)
	}
	if err := b.UnlockRemove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("UnlockRemove left the lock file: %v", err)
	}
}

// TestOneHolderWhileFilesAreRemoved has many goroutines take one lock and
// remove its file at every release, the case where a waiter may lock a file
// that its previous holder is removing: never do two hold it at once.
func TestOneHolderWhileFilesAreRemoved(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // hang guard
	defer cancel()
	var holders, overlaps atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 300 {
				l, err := Wait(ctx, p)
				if err != nil {
					t.Error(err)
					return
				}
				if holders.Add(1) != 1 {
					overlaps.Add(1)
				}
				time.Sleep(time.Microsecond) // let others pile up on this file
				holders.Add(-1)
				if err := l.UnlockRemove(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("%d times a goroutine took the lock while another held it", n)
	}
}

// TestWaitHonoursContext: Wait gives up when its context ends.
func TestWaitHonoursContext(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	l, err := TryLock(p)
	if err != nil || l == nil {
		t.Fatalf("TryLock = %v, %v", l, err)
	}
	defer l.Unlock()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Wait(ctx, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context = %v", err)
	}
}
