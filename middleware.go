package nuvom

import (
	"context"
	"fmt"
	"runtime/debug"
)

// Handler runs one attempt of a job. The innermost handler, supplied by the
// worker, calls the task's Before hook, the task itself and its After/OnError
// hooks; it returns the attempt's error (nil on success). A panic in the task
// or a hook reaches the middleware as a *PanicError.
type Handler func(ctx context.Context, job JobInfo) error

// Middleware wraps the handler of every attempt a worker runs, for plugins and
// metrics: code before calling next observes the start, code after it observes
// the finish, the error and the duration. WorkerOptions.Middleware[0] is the
// outermost. Jobs rejected before running (unknown task, signature mismatch) do
// not pass through middleware; WorkerOptions.OnOutcome sees every attempt.
type Middleware func(next Handler) Handler

// PanicError is the error of an attempt whose task or hook panicked.
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

// Error gives the panic's value.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// safeCall runs f, turning a panic into a *PanicError.
func safeCall(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}

// chain wraps h in mw, mw[0] outermost.
func chain(h Handler, mw []Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}
