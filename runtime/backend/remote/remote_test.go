package remote_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/backend/backendtest"
	"github.com/nuvom/nuvom/runtime/backend/remote"
	"github.com/nuvom/nuvom/runtime/memory"
)

// pair serves b over in-memory pipes and returns the client; closing the
// client waits for Serve to return and checks that it ended cleanly.
func pair(t *testing.T, b backend.Backend, opts ...remote.ServeOption) *remote.Client {
	t.Helper()
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		err := remote.Serve(context.Background(), b, reqR, respW, opts...)
		respW.Close()
		served <- err
	}()
	c, err := remote.NewClient(respR, reqW, func() error {
		select {
		case err := <-served:
			return err
		case <-time.After(time.Minute):
			return errors.New("Serve did not return after the client closed")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openRemote serves a fresh memory backend and returns its client.
func openRemote(t *testing.T) backend.Backend {
	b := memory.New()
	c := pair(t, b)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		b.Close()
	})
	return c
}

// TestConformance runs the backend conformance suite through the protocol:
// every call, argument, result and error of the contract, workflows and
// task limits included, survives the trip.
func TestConformance(t *testing.T) {
	if raceEnabled {
		t.Skip("minutes under the race detector; run without it (TestConcurrentCalls covers the locking)")
	}
	backendtest.Run(t, openRemote)
}

// TestConformanceAdmin runs the operator (backend.Admin) conformance cases
// through the protocol.
func TestConformanceAdmin(t *testing.T) {
	if raceEnabled {
		t.Skip("minutes under the race detector; run without it")
	}
	backendtest.RunAdmin(t, openRemote)
}

// coreOnly hides every optional part of the contract of the backend it
// embeds: only backend.Backend's methods are promoted.
type coreOnly struct{ backend.Backend }

// TestMissingCapability: a served backend that lacks an optional part of the
// contract fails those calls with an error naming the backend and what it
// lacks (matching errors.ErrUnsupported), and the core calls still work.
func TestMissingCapability(t *testing.T) {
	b := memory.New()
	defer b.Close()
	c := pair(t, coreOnly{b}, remote.Named("vault"))
	defer c.Close()
	ctx := context.Background()
	now := time.Now()
	for _, tc := range []struct {
		call func() error
		want string
	}{
		{func() error { _, err := c.ListWorkflows(ctx, 10); return err }, `backend "vault" lacks workflows`},
		{func() error { _, err := c.GetWorkflow(ctx, "wf"); return err }, `backend "vault" lacks workflows`},
		{func() error { _, err := c.CancelWorkflow(ctx, "wf", now); return err }, `backend "vault" lacks workflows`},
		{func() error {
			return c.EnqueueWorkflow(ctx, &backend.Workflow{ID: "wf", CreatedAt: now})
		}, `backend "vault" lacks workflows`},
		{func() error { _, err := c.TaskLimits(ctx); return err }, `backend "vault" lacks task limits`},
		{func() error { return c.OverrideLimit(ctx, "t", backend.Limit{MaxConcurrency: 1}, true) }, `backend "vault" lacks task limits`},
		{func() error { _, err := c.Workers(ctx, now); return err }, `backend "vault" lacks operator tools`},
		{func() error { return c.SetPaused(ctx, "q", true) }, `backend "vault" lacks operator tools`},
	} {
		err := tc.call()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("error %v does not match errors.ErrUnsupported", err)
		}
	}
	if _, err := c.Stats(ctx, now); err != nil {
		t.Fatalf("Stats after the unsupported calls: %v", err)
	}
}

// TestWorkflowNotFound: the workflow sentinel survives the trip.
func TestWorkflowNotFound(t *testing.T) {
	b := memory.New()
	defer b.Close()
	c := pair(t, b)
	defer c.Close()
	if _, err := c.GetWorkflow(context.Background(), "nope"); !errors.Is(err, backend.ErrWorkflowNotFound) {
		t.Fatalf("GetWorkflow of an unknown id: %v, want ErrWorkflowNotFound", err)
	}
}

// TestBrokenServer: a server that goes away fails the call in progress and
// every later one, instead of hanging.
func TestBrokenServer(t *testing.T) {
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	go func() {
		_, _ = io.WriteString(respW, `{"protocol":1}`+"\n")
		buf := make([]byte, 1)
		_, _ = reqR.Read(buf) // the first request arrives; the server dies
		respW.Close()
		reqR.Close()
	}()
	c, err := remote.NewClient(respR, reqW, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get(context.Background(), "x"); err == nil {
		t.Fatal("Get through a dead server succeeded")
	}
	if _, err := c.List(context.Background(), backend.ListFilter{}); err == nil {
		t.Fatal("List after the server died succeeded")
	}
}

// closeDuringCall starts a Get on c and, once got says the server has its
// request, Close; it returns where each one's error arrives.
func closeDuringCall(c *remote.Client, got <-chan struct{}) (callErr, closed <-chan error) {
	ce, cl := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := c.Get(context.Background(), "x")
		ce <- err
	}()
	<-got // the call is in flight
	go func() { cl <- c.Close() }()
	return ce, cl
}

// TestCloseDoesNotWaitForAHungCall: a server that hangs in a call (it read
// the request and never answers) does not hang Close: after its wait for
// the call, Close calls the closer (which ends the server), and the call in
// flight fails saying the client was closed.
func TestCloseDoesNotWaitForAHungCall(t *testing.T) {
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	got := make(chan struct{})
	go func() {
		_, _ = io.WriteString(respW, `{"protocol":1}`+"\n")
		r := bufio.NewReader(reqR)
		_, _ = r.ReadString('\n') // the whole request arrives; no answer ever comes
		close(got)
		_, _ = io.Copy(io.Discard, r)
	}()
	c, err := remote.NewClient(respR, reqW, func() error {
		return respW.Close() // ends the server: its output closes
	})
	if err != nil {
		t.Fatal(err)
	}
	remote.SetCloseWait(c, 50*time.Millisecond) // the call hangs: no need to wait long for it
	callErr, closed := closeDuringCall(c, got)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(time.Minute): // hang guard
		t.Fatal("Close waited for the hung call")
	}
	select {
	case err := <-callErr:
		if err == nil || !strings.Contains(err.Error(), "client closed") {
			t.Fatalf("the call in flight returned %v, want an error saying the client closed", err)
		}
	case <-time.After(time.Minute): // hang guard
		t.Fatal("the call in flight did not return after Close")
	}
	if _, err := c.List(context.Background(), backend.ListFilter{}); err == nil || !strings.Contains(err.Error(), "client closed") {
		t.Fatalf("a call after Close: %v, want client closed", err)
	}
}

// TestCloseLetsTheCallInFlightFinish: Close while a call runs waits for
// its answer (which the closer, ending the server, would otherwise cut off):
// the call returns its result, and the closer runs after it.
func TestCloseLetsTheCallInFlightFinish(t *testing.T) {
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	got, answer := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = io.WriteString(respW, `{"protocol":1}`+"\n")
		r := bufio.NewReader(reqR)
		_, _ = r.ReadString('\n')
		close(got)
		<-answer
		_, _ = io.WriteString(respW, `{"r":{"id":"x","task":"t","queue":"q","state":"queued"}}`+"\n")
		_, _ = io.Copy(io.Discard, r)
	}()
	closerRan := make(chan struct{})
	c, err := remote.NewClient(respR, reqW, func() error {
		close(closerRan)
		return respW.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	callErr, closed := closeDuringCall(c, got)
	select {
	case <-closerRan:
		t.Fatal("the closer ran while a call was waiting for its answer")
	case <-time.After(20 * time.Millisecond): // a moment for a wrong Close to show itself; not a budget
	}
	close(answer)
	select {
	case err := <-callErr:
		if err != nil {
			t.Fatalf("the call in flight when Close began failed: %v", err)
		}
	case <-time.After(time.Minute): // hang guard
		t.Fatal("the call did not return")
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestNoHello: a server that exits before its hello (its backend did not
// open) is an error at once, and another protocol version is refused.
func TestNoHello(t *testing.T) {
	for _, c := range []struct{ out, want string }{
		{"", "no hello"},
		{`{"protocol":99}` + "\n", "protocol 99"},
	} {
		reqR, reqW := io.Pipe()
		go io.Copy(io.Discard, reqR)
		_, err := remote.NewClient(strings.NewReader(c.out), reqW, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("server output %q: %v, want an error containing %q", c.out, err, c.want)
		}
	}
}

// TestConcurrentCalls: goroutines sharing one client each get their own
// answers (the client makes one call at a time on the stream).
func TestConcurrentCalls(t *testing.T) {
	b := memory.New()
	defer b.Close()
	c := pair(t, b)
	defer c.Close()
	ctx := context.Background()
	now := time.Now()
	const n = 8
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("01JD3Z5K8Q9W6V2N4M7R1T0X%02d", i)
		j := &backend.Job{ID: ids[i], Task: fmt.Sprintf("task%d", i), Queue: "q", State: backend.StateQueued,
			MaxAttempts: 1, RunAt: now, CreatedAt: now}
		if _, err := c.Enqueue(ctx, []*backend.Job{j}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 50; k++ {
				j, err := c.Get(ctx, ids[i])
				if err != nil || j.Task != fmt.Sprintf("task%d", i) {
					t.Errorf("Get %s: %v, %v", ids[i], j, err)
					return
				}
				if _, err := c.Get(ctx, "nope"); !errors.Is(err, backend.ErrNotFound) {
					t.Errorf("Get of an unknown id: %v, want ErrNotFound", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestOldServer: a server from before the optional parts were carried (its
// hello has no "ext") gets no such call; the error says to update nuvom in
// the module, and the core calls still work.
func TestOldServer(t *testing.T) {
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	go func() {
		_, _ = io.WriteString(respW, `{"protocol":1}`+"\n")
		dec := json.NewDecoder(reqR)
		for {
			var req struct {
				M string `json:"m"`
			}
			if err := dec.Decode(&req); err != nil {
				respW.Close()
				return
			}
			if req.M != "Paused" && req.M != "Stats" {
				_, _ = io.WriteString(respW, `{"e":{"msg":"unexpected call `+req.M+`"}}`+"\n")
				continue
			}
			// What an old server answers to any call it does not know.
			answer := `{"e":{"msg":"remote: unknown method \"Paused\""}}`
			if req.M == "Stats" {
				answer = `{"r":[]}`
			}
			_, _ = io.WriteString(respW, answer+"\n")
		}
	}()
	c, err := remote.NewClient(respR, reqW, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Paused(ctx); err == nil || !strings.Contains(err.Error(), "older nuvom") || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Paused through an old server: %v, want an error about an older nuvom", err)
	}
	if _, err := c.ListWorkflows(ctx, 1); err == nil || !strings.Contains(err.Error(), "older nuvom") {
		t.Errorf("ListWorkflows through an old server: %v, want an error about an older nuvom", err)
	}
	if _, err := c.Stats(ctx, time.Now()); err != nil {
		t.Errorf("Stats through an old server: %v", err)
	}
}

// TestGetWorkflowFromServerWithoutSeq: a server built with a nuvom from
// before StepInfo.Seq (the same protocol) answers GetWorkflow without
// "seq". Its steps are those left, in the order enqueued: the client
// numbers them by their place, as such a server's nuvom did, not every one
// #0 (which made workflow show and the dashboard show every step, and
// every parent, as step #0).
func TestGetWorkflowFromServerWithoutSeq(t *testing.T) {
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	go func() {
		_, _ = io.WriteString(respW, `{"protocol":1,"ext":true}`+"\n")
		dec := json.NewDecoder(reqR)
		for {
			var req struct {
				M string `json:"m"`
			}
			if err := dec.Decode(&req); err != nil {
				respW.Close()
				return
			}
			answer := `{"e":{"msg":"unexpected call ` + req.M + `"}}`
			if req.M == "GetWorkflow" {
				answer = `{"r":{"id":"wf","created_at":"2026-01-01T00:00:00Z","state":"running","counts":{"queued":3},"steps":[` +
					`{"job":{"ID":"a","Task":"t","State":"queued"},"input":0},` +
					`{"job":{"ID":"b","Task":"t","State":"queued"},"parents":[{"parent":"a"}],"input":0},` +
					`{"job":{"ID":"c","Task":"t","State":"queued"},"parents":[{"parent":"b"}],"input":0}]}}`
			}
			_, _ = io.WriteString(respW, answer+"\n")
		}
	}()
	c, err := remote.NewClient(respR, reqW, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.GetWorkflow(context.Background(), "wf")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Steps) != 3 {
		t.Fatalf("GetWorkflow = %d steps, want 3", len(info.Steps))
	}
	for i, s := range info.Steps {
		if s.Seq != i {
			t.Errorf("step %d (%s) has Seq %d, want %d", i, s.Job.ID, s.Seq, i)
		}
	}
}
