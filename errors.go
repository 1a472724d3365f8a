package nuvom

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// RetryAfter wraps err so that the worker retries the job after d instead of
// its task's backoff delay (attempts permitting).
func RetryAfter(d time.Duration, err error) error { return &retryAfterError{delay: d, err: err} }

type retryAfterError struct {
	delay time.Duration
	err   error
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("%s (retry after %s)", errorText(e.err), e.delay)
}
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryDelayOf returns the delay asked for by RetryAfter anywhere in err's chain.
func RetryDelayOf(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.delay, true
	}
	return 0, false
}

// NoRetry wraps err so that the job fails at once, whatever attempts remain.
func NoRetry(err error) error { return &noRetryError{err: err} }

type noRetryError struct{ err error }

func (e *noRetryError) Error() string {
	if isNilError(e.err) {
		return "no retry"
	}
	return e.err.Error()
}
func (e *noRetryError) Unwrap() error { return e.err }

// IsNoRetry reports whether err's chain holds an error made by NoRetry.
func IsNoRetry(err error) bool {
	var n *noRetryError
	return errors.As(err, &n)
}

// Sentinels that a *JobError matches with errors.Is, by how the job ended.
var (
	// ErrJobFailed matches a job that ended failed (including after a timeout).
	ErrJobFailed = errors.New("job failed")
	// ErrJobCancelled matches a job that was cancelled.
	ErrJobCancelled = errors.New("job cancelled")
	// ErrJobTimedOut matches a job whose last attempt timed out.
	ErrJobTimedOut = errors.New("job timed out")
	// ErrJobQuarantined matches a job whose payload could not be decoded.
	ErrJobQuarantined = errors.New("job quarantined")
)

// JobError reports a job that ended without success; Pending.Wait returns it.
// Use errors.Is with ErrJobFailed, ErrJobCancelled, ErrJobTimedOut or
// ErrJobQuarantined to tell how, or errors.As to read the fields.
type JobError struct {
	ID    string
	Task  string
	State State
	// Message is the job's stored error.
	Message string
	// LastOutcome is the outcome of the job's last attempt (OutcomeTimedOut, ...), or "".
	LastOutcome string
}

func newJobError(j *Job) *JobError {
	e := &JobError{ID: j.ID, Task: j.Task, State: j.State, Message: j.Error}
	if n := len(j.Attempts); n > 0 {
		e.LastOutcome = j.Attempts[n-1].Outcome
	}
	return e
}

// Error says which job ended how, with its stored error. A stored error
// that already starts with the state ("cancelled: parent step ... ended
// failed", "cancelled with its workflow") is not prefixed with it twice.
func (e *JobError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("job %s (%s) %s", e.ID, e.Task, e.State)
	}
	if strings.HasPrefix(e.Message, string(e.State)+" ") { // "cancelled with its workflow"
		return fmt.Sprintf("job %s (%s) %s", e.ID, e.Task, e.Message)
	}
	msg := strings.TrimPrefix(e.Message, string(e.State)+": ")
	return fmt.Sprintf("job %s (%s) %s: %s", e.ID, e.Task, e.State, msg)
}

// Is reports whether target is the sentinel of how the job ended.
func (e *JobError) Is(target error) bool {
	switch target {
	case ErrJobFailed:
		return e.State == StateFailed
	case ErrJobCancelled:
		return e.State == StateCancelled
	case ErrJobQuarantined:
		return e.State == StateQuarantined
	case ErrJobTimedOut:
		return e.LastOutcome == OutcomeTimedOut || e.LastOutcome == OutcomeAbandoned
	}
	return false
}

// isNilError reports whether err is nil or a typed nil (an interface holding a
// nil pointer, map, slice, func or chan), whose Error method may panic.
func isNilError(err error) bool {
	if err == nil {
		return true
	}
	return isNilValue(err)
}

// errorText is err's message, safe for typed nils and for Error methods that
// panic (the panic's value is reported instead).
func errorText(err error) (msg string) {
	if isNilError(err) {
		return fmt.Sprintf("%T(nil)", err)
	}
	defer func() {
		if v := recover(); v != nil {
			msg = fmt.Sprintf("%T (its Error method panicked: %v)", err, v)
		}
	}()
	return err.Error()
}

// isNilValue reports whether v holds a nil pointer, map, slice, func, chan or interface.
func isNilValue(v any) bool {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}
