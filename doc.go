// Package nuvom is the user API of Nuvom, a background task engine for Go:
// the client that enqueues jobs, the worker that runs them, typed handles to
// pending results, enqueue and schedule options, job errors, middleware and
// the inspector.
//
// # Tasks
//
// A task is an ordinary function marked with a directive at the end of its
// doc comment:
//
//	// Resize makes a thumbnail of the image at src.
//	//
//	//nuvom:task retries=3 timeout=30s queue=images
//	func Resize(ctx context.Context, src string, width int) (Thumb, error)
//
// `go generate` runs nuvomgen, which writes the module's manifest
// (.nuvom_tasks.json) and, beside each such function, a typed handle
// (images.ResizeTask) and a registry package (nuvomtasks) for the worker.
// Nothing is called through reflection.
//
// # Enqueueing and waiting
//
//	cfg, err := config.Load(".", os.Getenv) // package runtime/config: NUVOM_* settings
//	if err != nil { ... }
//	client, err := cfg.OpenClient(ctx) // the embedded SQLite queue by default
//	if err != nil { ... }
//	defer client.Close()
//
//	pending, err := images.ResizeTask.Delay(ctx, client, "cat.png", 128, nuvom.Queue("bulk"))
//	if err != nil { ... }
//	thumb, err := pending.Wait(ctx) // a Thumb, or a *JobError
//
// Many jobs go in one call and one transaction with typed requests:
//
//	reqs := []nuvom.Request{
//		images.ResizeTask.Request("a.png", 64),
//		images.ResizeTask.Request("b.png", 64, nuvom.Priority(5)),
//	}
//	results, err := client.EnqueueBatch(ctx, reqs)
//
// # Running workers
//
// `nuvom runworker` builds and runs the worker main that nuvomgen generates.
// To run one inside your own program:
//
//	reg, err := nuvomtasks.Registry()
//	if err != nil { ... }
//	w, err := nuvom.NewWorker(client.Backend(), reg, nuvom.WorkerOptions{Concurrency: 32})
//	if err != nil { ... }
//	err = w.Run(ctx) // until ctx is cancelled, then a graceful shutdown
//
// # Administration
//
// An Inspector lists jobs, counts them per queue and state, cancels (also
// running jobs), retries, purges and handles the quarantine; the nuvom CLI is
// built on it.
//
// # Ownership
//
// Clients, workers and inspectors do not close the backend they are given,
// except a client made with OwnBackend (as runtime/config's OpenClient does),
// so one backend can serve a client and a worker in the same process.
//
// # Packages around this one
//
// The storage contract is package runtime/backend; the drivers are
// runtime/sqlite, runtime/file and runtime/memory; runtime/config opens them
// from NUVOM_* settings; runtime/schedule is the scheduler. Generated code
// also imports runtime/nuvomimpl, its support package, which user code does
// not need.
package nuvom
