package runtime

import (
	"errors"
	"fmt"
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
	return fmt.Sprintf("%v (retry after %s)", e.err, e.delay)
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

func (e *noRetryError) Error() string { return e.err.Error() }
func (e *noRetryError) Unwrap() error { return e.err }

// IsNoRetry reports whether err's chain holds an error made by NoRetry.
func IsNoRetry(err error) bool {
	var n *noRetryError
	return errors.As(err, &n)
}
