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
