package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a polling reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNoticeIfSlow: a slow load (the first run on a fresh machine) says what
// nuvomgen is doing instead of a minute of silence; a fast one says nothing.
func TestNoticeIfSlow(t *testing.T) {
	var slow lockedBuffer
	stop := noticeIfSlow(&slow, 0, "nuvomgen: loading packages...")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(slow.String(), "nuvomgen: loading packages...\n") {
		if time.Now().After(deadline) {
			t.Fatal("hang: no notice")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if n := strings.Count(slow.String(), "loading"); n != 1 {
		t.Errorf("notice printed %d times", n)
	}

	var fast lockedBuffer
	noticeIfSlow(&fast, time.Hour, "nuvomgen: loading packages...")()
	if fast.String() != "" {
		t.Errorf("a fast load printed %q", fast.String())
	}
}

// TestNoNoticeOffTerminal: where stderr is not a terminal (CI logs, scripts,
// pipes) nuvomgen's stderr holds diagnostics only, however slow the load:
// a script asserting an empty stderr on a loaded machine used to see the
// notice.
func TestNoNoticeOffTerminal(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("nuvomgen -h: exit %d", code)
	}
	if isTerminal(&errOut) {
		t.Fatal("a buffer is not a terminal")
	}
	var never lockedBuffer
	noticeIfSlow(&never, -1, "nuvomgen: loading packages...")
	time.Sleep(10 * time.Millisecond) // a negative delay must never fire; nothing to wait for
	if never.String() != "" {
		t.Errorf("a disabled notice printed %q", never.String())
	}
}
