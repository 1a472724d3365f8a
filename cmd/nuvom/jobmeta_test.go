package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
)

// TestInspectShowsMeta: nuvom inspect job's table lists the job's metadata
// (a trace context, for one), a row per key in key order, and none for a
// job without it.
func TestInspectShowsMeta(t *testing.T) {
	now := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	j := &nuvom.Job{ID: "01JOB", Task: "shop.Ping", Queue: "default", State: nuvom.StateQueued, MaxAttempts: 1,
		RunAt: now, CreatedAt: now, Args: []byte{0x90},
		Meta: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "baggage": "tenant=acme"}}
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: os.Getenv, wd: t.TempDir()}
	if code := a.printJobTable(j); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	re := regexp.MustCompile(`(?m)^meta baggage: +tenant=acme\nmeta traceparent: +00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01$`)
	if !re.MatchString(out.String()) {
		t.Fatalf("no meta rows in key order:\n%s", out.String())
	}
	out.Reset()
	j.Meta = nil
	a.printJobTable(j)
	if strings.Contains(out.String(), "meta") {
		t.Fatalf("a job without metadata shows meta rows:\n%s", out.String())
	}
}
