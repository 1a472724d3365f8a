package nuvom_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/memory"
	"github.com/nuvom/nuvom/runtime/nuvomimpl"
	"github.com/nuvom/nuvom/runtime/sqlite"
)

// plusOne is a task that takes an int and returns it plus one.
var plusOne = spec("plus", nuvom.TaskOptions{StoreResult: true})

func invokePlusOne(_ context.Context, args []byte) ([]byte, error) {
	r := nuvomimpl.NewArgReader("plus", args, 1)
	n := r.Int()
	if err := r.Err(); err != nil {
		return nil, err
	}
	return nuvomimpl.EncodeResult(n + 1)
}

// sum is a task that takes []int and returns their sum.
var sum = spec("sum", nuvom.TaskOptions{StoreResult: true})

func invokeSum(_ context.Context, args []byte) ([]byte, error) {
	r := nuvomimpl.NewArgReader("sum", args, 1)
	var ns []int64
	r.Value(&ns)
	if err := r.Err(); err != nil {
		return nil, err
	}
	var s int64
	for _, n := range ns {
		s += n
	}
	return nuvomimpl.EncodeResult(s)
}

func intArg(tb testing.TB, n int64) []byte {
	tb.Helper()
	w := nuvomimpl.NewArgWriter(1)
	w.Int(n)
	b, err := w.Finish()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// root is a step of plusOne from n; next one fed by its parent.
func root(tb testing.TB, n int64) nuvom.Step[int64] {
	return nuvom.NewStep[int64](plusOne, intArg(tb, n), nil, nil)
}

func next(parent nuvom.Source[int64]) nuvom.Step[int64] {
	return nuvom.StepFrom[int64, int64](parent, plusOne, noArgs, nil, nil)
}

func runBurst(tb testing.TB, b nuvom.Backend, concurrency int) {
	tb.Helper()
	reg, err := nuvom.NewRegistry(def(plusOne, invokePlusOne), def(sum, invokeSum))
	if err != nil {
		tb.Fatal(err)
	}
	w, err := nuvom.NewWorker(b, reg, nuvom.WorkerOptions{Burst: true, Concurrency: concurrency, Logger: quietLogger(),
		PollInterval: 5 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // hang guard
	defer cancel()
	if err := w.Run(ctx); err != nil {
		tb.Fatal(err)
	}
}

// TestWorkflowRuns runs a chain and a fan-out/fan-in on SQLite and on
// memory with a real worker: each step gets its parent's result, the merge
// every result in order.
func TestWorkflowRuns(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) nuvom.Backend{
		"sqlite": func(t *testing.T) nuvom.Backend {
			b, err := sqlite.Open(filepath.Join(t.TempDir(), "n.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		},
		"memory": func(*testing.T) nuvom.Backend { return memory.New() },
	} {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			c := nuvom.NewClient(b)
			ctx := t.Context()
			last := root(t, 0)
			for range 9 {
				last = next(last)
			}
			chain, err := nuvom.Workflow("chain", last).Enqueue(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			var kids []nuvom.Step[int64]
			top := root(t, 100)
			for range 5 {
				kids = append(kids, next(top))
			}
			merged := nuvom.StepFrom[int64, []int64](nuvom.Group(kids...), sum, noArgs, nil, nil)
			fan, err := nuvom.Workflow("fan", merged).Enqueue(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			runBurst(t, b, 4)
			if got, err := last.Pending(c).Wait(ctx); err != nil || got != 10 {
				t.Errorf("end of a 10-step chain from 0 = %d, %v; want 10", got, err)
			}
			if got, err := merged.Pending(c).Wait(ctx); err != nil || got != 5*102 {
				t.Errorf("fan-in of 5 children of 101 = %d, %v; want 510", got, err)
			}
			for _, id := range []string{chain, fan} {
				info, err := c.GetWorkflow(ctx, id)
				if err != nil || info.State != "succeeded" {
					t.Errorf("workflow %s: %+v, %v; want succeeded", id, info, err)
				}
			}
			list, err := c.ListWorkflows(ctx, 0)
			if err != nil || len(list) != 2 {
				t.Errorf("ListWorkflows = %d, %v; want 2", len(list), err)
			}
		})
	}
}

// TestWorkflowBuildErrors: a step is enqueued once; a zero step, an
// encoding error and an empty workflow are refused, storing nothing.
func TestWorkflowBuildErrors(t *testing.T) {
	b := memory.New()
	c := nuvom.NewClient(b)
	ctx := t.Context()
	a := root(t, 1)
	if _, err := nuvom.Workflow("one", a).Enqueue(ctx, c); err != nil {
		t.Fatal(err)
	}
	if a.ID() == "" {
		t.Error("an enqueued step has no id")
	}
	if _, err := nuvom.Workflow("again", next(a)).Enqueue(ctx, c); err == nil || !strings.Contains(err.Error(), "already enqueued") {
		t.Errorf("a workflow reusing an enqueued step: %v, want an error saying so", err)
	}
	var zero nuvom.Step[int64]
	if _, err := nuvom.Workflow("zero", next(zero)).Enqueue(ctx, c); err == nil {
		t.Error("a workflow with a zero step was enqueued")
	}
	bad := nuvom.NewStep[int64](plusOne, nil, errors.New("cannot encode"), nil)
	if _, err := nuvom.Workflow("bad", next(bad)).Enqueue(ctx, c); err == nil || !strings.Contains(err.Error(), "cannot encode") {
		t.Errorf("a workflow with an encoding error: %v", err)
	}
	if _, err := nuvom.Workflow("empty").Enqueue(ctx, c); err == nil {
		t.Error("an empty workflow was enqueued")
	}
	merged := nuvom.StepFrom[int64, []int64](nuvom.Group[int64](), sum, noArgs, nil, nil)
	if _, err := nuvom.Workflow("nofan", merged).Enqueue(ctx, c); err == nil ||
		!strings.Contains(err.Error(), "step 0 (sum): its fan-in group is empty") {
		t.Errorf("a fan-in of an empty group: %v, want an error naming the step and the empty group", err)
	}
	if list, _ := c.ListWorkflows(ctx, 0); len(list) != 1 {
		t.Errorf("%d workflows stored, want only the first", len(list))
	}
}

// BenchmarkWorkflowHandOff measures a step's hand-off on SQLite: a chain of
// 10,000 steps (each released by its parent's completion) and a fan-out of
// 10,000 children of one parent plus their fan-in, run by one worker.
// It reports jobs/s; the enqueue of the workflow is not timed.
func BenchmarkWorkflowHandOff(b *testing.B) {
	const n = 10_000
	for _, shape := range []string{"chain", "fanout"} {
		b.Run(fmt.Sprintf("%s-%d", shape, n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				be, err := sqlite.Open(filepath.Join(b.TempDir(), "n.db"))
				if err != nil {
					b.Fatal(err)
				}
				c := nuvom.NewClient(be)
				var end nuvom.Node
				var check func() (int64, int64)
				if shape == "chain" {
					last := root(b, 0)
					for range n - 1 {
						last = next(last)
					}
					end = last
					check = func() (int64, int64) { v, _ := last.Pending(c).Wait(b.Context()); return v, n }
				} else {
					top := root(b, 0)
					kids := make([]nuvom.Step[int64], n)
					for i := range kids {
						kids[i] = next(top)
					}
					merged := nuvom.StepFrom[int64, []int64](nuvom.Group(kids...), sum, noArgs, nil, nil)
					end = merged
					check = func() (int64, int64) { v, _ := merged.Pending(c).Wait(b.Context()); return v, 2 * n }
				}
				if _, err := nuvom.Workflow(shape, end).Enqueue(b.Context(), c); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				runBurst(b, be, 8)
				elapsed := time.Since(start)
				b.StopTimer()
				if got, want := check(); got != want {
					b.Fatalf("%s: final result %d, want %d", shape, got, want)
				}
				steps := n + 1
				if shape == "fanout" {
					steps = n + 2
				}
				b.ReportMetric(float64(steps)/elapsed.Seconds(), "jobs/s")
				be.Close()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkWorkflowHandOffStore measures a chain's hand-off on SQLite
// without a worker: one claim of the released step, one completion that
// releases the next (2,000 steps), reporting the time of each.
func BenchmarkWorkflowHandOffStore(b *testing.B) {
	const n = 2000
	for b.Loop() {
		b.StopTimer()
		be, err := sqlite.Open(filepath.Join(b.TempDir(), "n.db"))
		if err != nil {
			b.Fatal(err)
		}
		c := nuvom.NewClient(be)
		last := root(b, 0)
		for range n - 1 {
			last = next(last)
		}
		if _, err := nuvom.Workflow("chain", last).Enqueue(b.Context(), c); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var claimT, completeT time.Duration
		start := time.Now()
		for range n {
			t0 := time.Now()
			js, err := be.Claim(b.Context(), backend.ClaimRequest{Limit: 8, Worker: "w", Now: time.Now(), LeaseFor: time.Minute})
			if err != nil || len(js) != 1 {
				b.Fatalf("claim: %d jobs, %v; want the one released step", len(js), err)
			}
			t1 := time.Now()
			if _, err := be.Complete(b.Context(), []backend.Outcome{{Lease: js[0].Lease(), State: backend.StateSucceeded,
				FinishedAt: time.Now(), Result: []byte{0x01}}}); err != nil {
				b.Fatal(err)
			}
			claimT += t1.Sub(t0)
			completeT += time.Since(t1)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(n/elapsed.Seconds(), "jobs/s")
		b.ReportMetric(float64(claimT.Microseconds())/n, "claim-µs")
		b.ReportMetric(float64(completeT.Microseconds())/n, "complete+release-µs")
		be.Close()
		b.StartTimer()
	}
}
