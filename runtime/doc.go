// Package runtime is Nuvom's task runtime: the job model, the client that
// enqueues jobs, the contract that generated code registers tasks through, the
// backend interfaces every storage driver implements, and the worker that
// executes jobs.
//
// Generated code imports it as
//
//	nuvom "github.com/nuvom/nuvom/runtime"
//
// and so can user code, to avoid a clash with the standard library's runtime.
package runtime
