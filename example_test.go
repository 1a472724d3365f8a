package nuvom_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/memory"
)

// helloTask is what nuvomgen generates for a task without parameters
// (func Hello(ctx context.Context) error); real code uses the generated
// handle's Definition instead of writing one.
func helloTask(run func(context.Context) error) nuvom.TaskDef {
	return nuvom.TaskDef{
		TaskSpec: nuvom.TaskSpec{Name: "greet.Hello", Options: nuvom.TaskOptions{Queue: "default"}},
		Invoke: func(ctx context.Context, _ []byte) ([]byte, error) {
			return nil, run(ctx)
		},
	}
}

// noArgs is the encoded argument list of a task without parameters: an empty msgpack array.
var noArgs = []byte{0x90}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// A client enqueues, a worker runs, the client reads the outcome. With
// generated code the first lines are images.ResizeTask.Delay(ctx, client, ...)
// and nuvomtasks.Registry().
func Example() {
	ctx := context.Background()
	b := memory.New()
	defer b.Close()

	hello := helloTask(func(context.Context) error {
		fmt.Println("hello from a job")
		return nil
	})
	client := nuvom.NewClient(b)
	res, err := client.Enqueue(ctx, hello.TaskSpec, noArgs)
	if err != nil {
		fmt.Println(err)
		return
	}

	reg, err := nuvom.NewRegistry(hello)
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := nuvom.NewWorker(b, reg, nuvom.WorkerOptions{Burst: true, Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := w.Run(ctx); err != nil { // Burst: returns once the queue is empty
		fmt.Println(err)
		return
	}

	job, err := client.Get(ctx, res.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(job.State, len(job.Attempts), "attempt")
	// Output:
	// hello from a job
	// succeeded 1 attempt
}

// A job that failed is a *JobError; errors.Is tells how it ended.
func ExampleJobError() {
	ctx := context.Background()
	b := memory.New()
	defer b.Close()

	broken := helloTask(func(context.Context) error { return errors.New("smtp: connection refused") })
	client := nuvom.NewClient(b)
	res, _ := client.Enqueue(ctx, broken.TaskSpec, noArgs)
	reg, _ := nuvom.NewRegistry(broken)
	w, _ := nuvom.NewWorker(b, reg, nuvom.WorkerOptions{Burst: true, Logger: quiet})
	_ = w.Run(ctx)

	_, err := nuvom.PendingOf[struct{}](client, res).Wait(ctx)
	fmt.Println(errors.Is(err, nuvom.ErrJobFailed), errors.Is(err, nuvom.ErrJobCancelled))
	var je *nuvom.JobError
	if errors.As(err, &je) {
		fmt.Println(je.State, je.Message)
	}
	// Output:
	// true false
	// failed smtp: connection refused
}

// The inspector lists and administers jobs without running any.
func ExampleInspector() {
	ctx := context.Background()
	b := memory.New()
	defer b.Close()

	hello := helloTask(func(context.Context) error { return nil })
	client := nuvom.NewClient(b)
	for range 3 {
		if _, err := client.Enqueue(ctx, hello.TaskSpec, noArgs); err != nil {
			fmt.Println(err)
			return
		}
	}
	in := client.Inspector()
	jobs, _ := in.List(ctx, nuvom.ListFilter{States: []nuvom.State{nuvom.StateQueued}})
	fmt.Println(len(jobs), "queued")

	if err := in.Cancel(ctx, jobs[0].ID); err != nil {
		fmt.Println(err)
	}
	err := in.Cancel(ctx, jobs[0].ID) // already final
	fmt.Println(errors.Is(err, nuvom.ErrWrongState))

	stats, _ := in.Stats(ctx)
	for _, s := range stats {
		fmt.Println(s.Queue, s.State, s.Count)
	}
	// Output:
	// 3 queued
	// true
	// default queued 2
	// default cancelled 1
}
