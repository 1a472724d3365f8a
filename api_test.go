package nuvom_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
)

// A job cancelled while it runs has its context cancelled (with the cause
// ErrJobCancelled), ends cancelled with the attempt recorded, and the
// worker's late outcome does not overwrite it.
func TestCancelARunningJob(t *testing.T) {
	b := newBackend(t)
	s := spec("slow", nuvom.TaskOptions{Retries: 3})
	started := make(chan struct{})
	cause := make(chan error, 1)
	reg := registry(t, def(s, func(ctx context.Context, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return nil, ctx.Err()
	}))
	// An hour's heartbeat: only the store's change notification can tell the worker.
	w := newWorker(t, b, reg, nuvom.WorkerOptions{HeartbeatEvery: time.Hour, LeaseFor: 2 * time.Hour, PollInterval: time.Hour})
	stop := start(t, w)
	defer stop()
	id := enqueue(t, b, s)
	<-started

	client := nuvom.NewClient(b)
	if err := client.Cancel(context.Background(), id); err != nil {
		t.Fatalf("cancel a running job: %v", err)
	}
	select {
	case got := <-cause:
		if !errors.Is(got, nuvom.ErrJobCancelled) {
			t.Errorf("the attempt's context cause is %v, want ErrJobCancelled", got)
		}
	case <-time.After(time.Minute): // hang guard only
		t.Fatal("the task's context was never cancelled")
	}
	stop()
	j := getJob(t, b, id)
	if j.State != nuvom.StateCancelled {
		t.Fatalf("state %s, want cancelled", j.State)
	}
	if got := outcomes(j); len(got) != 1 || got[0] != nuvom.OutcomeCancelled {
		t.Errorf("attempts %v, want one cancelled attempt", got)
	}
	if j.Attempts[0].Worker != w.ID() {
		t.Errorf("cancelled attempt's worker %q, want %q", j.Attempts[0].Worker, w.ID())
	}
	_, err := nuvom.PendingOf[struct{}](client, nuvom.EnqueueResult{ID: id}).Wait(context.Background())
	if !errors.Is(err, nuvom.ErrJobCancelled) || errors.Is(err, nuvom.ErrJobFailed) {
		t.Errorf("Wait = %v, want an error matching ErrJobCancelled only", err)
	}
	if err := client.Cancel(context.Background(), id); !errors.Is(err, nuvom.ErrWrongState) {
		t.Errorf("cancel of a finished job = %v, want ErrWrongState", err)
	}
	if err := client.Cancel(context.Background(), "nope"); !errors.Is(err, nuvom.ErrNotFound) {
		t.Errorf("cancel of an unknown job = %v, want ErrNotFound", err)
	}
}

type myErr struct{ msg string }

func (e *myErr) Error() string { return e.msg } // panics on a nil receiver, like most

// A task returning a typed nil error, or NoRetry(nil), fails its attempt with
// a message that says so; the worker survives and runs the next job.
func TestTypedNilErrorsDoNotCrashTheWorker(t *testing.T) {
	b := newBackend(t)
	typedNil := spec("typednil", nuvom.TaskOptions{})
	noRetryNil := spec("noretrynil", nuvom.TaskOptions{Retries: 2})
	fine := spec("fine", nuvom.TaskOptions{})
	reg := registry(t,
		def(typedNil, func(context.Context, []byte) ([]byte, error) {
			var e *myErr
			var err error = e
			return nil, err
		}),
		def(noRetryNil, func(context.Context, []byte) ([]byte, error) { return nil, nuvom.NoRetry(nil) }),
		def(fine, ok))
	a, c, d := enqueue(t, b, typedNil), enqueue(t, b, noRetryNil), enqueue(t, b, fine)
	burst(t, b, reg, nuvom.WorkerOptions{})
	if j := getJob(t, b, a); j.State != nuvom.StateFailed || j.Error == "" {
		t.Errorf("typed nil: state %s error %q, want failed with a message", j.State, j.Error)
	} else if want := "*nuvom_test.myErr"; !strings.Contains(j.Error, want) {
		t.Errorf("typed nil: error %q does not name %s", j.Error, want)
	}
	if j := getJob(t, b, c); j.State != nuvom.StateFailed || len(j.Attempts) != 1 {
		t.Errorf("NoRetry(nil): state %s after %d attempts, want failed after 1", j.State, len(j.Attempts))
	}
	if j := getJob(t, b, d); j.State != nuvom.StateSucceeded {
		t.Errorf("the next job: state %s, want succeeded", j.State)
	}
}

// OnStored sees each outcome after the store committed it, with the stored
// state; OnOutcome and OnStored panicking do not stop the worker or lose outcomes.
func TestOnStoredRunsAfterTheCommitAndHooksMayPanic(t *testing.T) {
	b := newBackend(t)
	s := spec("stored", nuvom.TaskOptions{})
	reg := registry(t, def(s, ok))
	var mu sync.Mutex
	var seen []string
	var problems []string
	opts := nuvom.WorkerOptions{
		OnOutcome: func(nuvom.JobInfo, nuvom.Outcome) { panic("observer bug") },
		OnStored: func(info nuvom.JobInfo, o nuvom.Outcome) {
			j, err := b.Get(context.Background(), info.ID)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				problems = append(problems, err.Error())
			case j.State != o.State:
				problems = append(problems, fmt.Sprintf("job %s is %s in the store when OnStored sees %s", info.ID, j.State, o.State))
			}
			seen = append(seen, info.ID)
			if len(seen)%2 == 0 {
				panic("metrics bug")
			}
		},
	}
	var ids []string
	for range 20 {
		ids = append(ids, enqueue(t, b, s))
	}
	burst(t, b, reg, opts)
	for _, id := range ids {
		if j := getJob(t, b, id); j.State != nuvom.StateSucceeded {
			t.Errorf("job %s: %s, want succeeded", id, j.State)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(ids) {
		t.Errorf("OnStored saw %d outcomes, want %d", len(seen), len(ids))
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// Printing a Pending shows its job, not its internals.
func TestPendingPrintsItsJob(t *testing.T) {
	p := nuvom.PendingOf[int](nil, nuvom.EnqueueResult{ID: "01ABC"})
	if got := fmt.Sprint(p); got != "job 01ABC" {
		t.Errorf("fmt.Sprint(pending) = %q", got)
	}
}

// A typed batch whose request failed to encode stores nothing and names the request.
func TestEnqueueBatchIsAllOrNothing(t *testing.T) {
	b := newBackend(t)
	s := spec("batch", nuvom.TaskOptions{})
	boom := errors.New("encode boom")
	reqs := []nuvom.Request{{Spec: s, Args: []byte{0x90}}, {Spec: s, Args: []byte{0x90}}, {Spec: s, Err: boom}}
	_, err := nuvom.NewClient(b).EnqueueBatch(context.Background(), reqs)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "request 2") {
		t.Fatalf("EnqueueBatch = %v, want the encode error naming request 2", err)
	}
	jobs, err := nuvom.NewInspector(b).List(context.Background(), nuvom.ListFilter{})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("after a failed batch: %d jobs stored (%v), want none", len(jobs), err)
	}
}

// A client made without OwnBackend leaves the backend open for the worker that shares it.
func TestClientDoesNotCloseABackendItDoesNotOwn(t *testing.T) {
	b := newBackend(t)
	s := spec("own", nuvom.TaskOptions{})
	if err := nuvom.NewClient(b).Close(); err != nil {
		t.Fatal(err)
	}
	enqueue(t, b, s) // still open
	if err := nuvom.NewClient(b, nuvom.OwnBackend()).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := nuvom.NewClient(b).Enqueue(context.Background(), s, []byte{0x90}); err == nil {
		t.Fatal("enqueue after an owning client closed the backend: want an error")
	}
}
