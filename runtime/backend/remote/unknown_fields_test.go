package remote_test

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
	"github.com/nuvom/nuvom/runtime/backend/remote"
	"github.com/nuvom/nuvom/runtime/memory"
)

// TestUnknownParameterFieldsAreRefused sends a Purge whose filter carries a
// field this server does not know (one that would narrow the purge): the
// server must refuse the call, not read it without the field and delete
// every job.
func TestUnknownParameterFieldsAreRefused(t *testing.T) {
	ctx := context.Background()
	b := memory.New()
	t0 := backendtest.Epoch()
	if _, err := b.Enqueue(ctx, []*backend.Job{backendtest.NewJob(backendtest.ID(1), "t", t0), backendtest.NewJob(backendtest.ID(2), "t", t0)}); err != nil {
		t.Fatal(err)
	}
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	go remote.Serve(ctx, b, sr, sw)
	br := bufio.NewReader(cr)
	_, _ = br.ReadString('\n') // hello
	req := `{"m":"Purge","p":{"IDs":null,"Queue":"","States":null,"FinishedBefore":"` + time.Now().Add(-720*time.Hour).UTC().Format(time.RFC3339Nano) + `"}}` + "\n"
	if _, err := io.WriteString(cw, req); err != nil {
		t.Fatal(err)
	}
	resp, _ := br.ReadString('\n')
	if !strings.Contains(resp, "bad parameters") || !strings.Contains(resp, "FinishedBefore") {
		t.Errorf("response %s, want a refusal naming the unknown field", resp)
	}
	if st, _ := b.Stats(ctx, t0); len(st) == 0 {
		t.Fatal("a purge with an unknown narrowing field deleted the two queued jobs")
	}
}
