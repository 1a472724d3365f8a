package nuvom_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
)

// countingHandler counts the log records whose message contains sub.
type countingHandler struct {
	sub string
	n   *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.sub) {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestBurstDoesNotWaitForConcurrencyHeldByLiveWorker: a task limited both by
// rate and by MaxConcurrency 1 has a job running in another live worker (a
// long one) and more queued. Those queued jobs are held by the concurrency
// limit, not the rate: they become claimable only when the live worker's job
// ends, however long that is. A burst worker returns, as it does for a task
// with only a concurrency limit ("burst done; jobs still run in other live
// workers"), instead of polling every Per/Rate until the other job ends
// (forever for a job that never ends) and logging "burst done" each time.
func TestBurstDoesNotWaitForConcurrencyHeldByLiveWorker(t *testing.T) {
	b := newBackend(t)
	s := spec("limited", nuvom.TaskOptions{MaxConcurrency: 1, Rate: nuvom.Rate{N: 100, Per: time.Second}})
	started := make(chan struct{}, 8)
	release := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	reg := registry(t, def(s, func(ctx context.Context, _ []byte) ([]byte, error) {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	}))
	enqueue(t, b, s)
	live := newWorker(t, b, reg, nuvom.WorkerOptions{Concurrency: 1, LeaseFor: 300 * time.Millisecond, PollInterval: 5 * time.Millisecond})
	liveCtx, stopLive := context.WithCancel(context.Background())
	liveDone := make(chan error, 1)
	go func() { liveDone <- live.Run(liveCtx) }()
	defer func() {
		once.Do(func() { close(release) })
		stopLive()
		<-liveDone
	}()
	<-started // the live worker runs the long job
	enqueue(t, b, s)
	enqueue(t, b, s)

	var doneLogs atomic.Int64
	w := newWorker(t, b, reg, nuvom.WorkerOptions{Burst: true, PollInterval: 5 * time.Millisecond,
		Logger: slog.New(countingHandler{sub: "burst done", n: &doneLogs})})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // hang guard
	defer cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the burst worker did not return while another live worker held the task's only concurrency slot "+
			"(it polled for the queued jobs it cannot claim; logged 'burst done' %d times)", doneLogs.Load())
	}
}
