package nuvom

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// backoffDelay is the delay before the attempt after attempt (1-based) of a
// task with options o. Fixed backoff waits RetryDelay each time; exponential
// doubles it per attempt (RetryDelay, 2×, 4×, …) with ±20% jitter. Both are
// capped by MaxRetryDelay when it is set. randN returns a number in [0, n).
func backoffDelay(o TaskOptions, attempt int, randN func(n int64) int64) time.Duration {
	base := o.RetryDelay
	if base <= 0 {
		return 0
	}
	d := base
	if o.Backoff != BackoffFixed {
		for i := 1; i < attempt; i++ {
			if d > time.Duration(1<<62)/2 || (o.MaxRetryDelay > 0 && d >= o.MaxRetryDelay) {
				break
			}
			d *= 2
		}
		if o.MaxRetryDelay > 0 && d > o.MaxRetryDelay {
			d = o.MaxRetryDelay
		}
		if spread := int64(d) / 5 * 2; spread > 0 && randN != nil {
			d = d - time.Duration(spread/2) + time.Duration(randN(spread+1))
		}
	}
	if o.MaxRetryDelay > 0 && d > o.MaxRetryDelay {
		d = o.MaxRetryDelay
	}
	return d
}

// defaultRandN is the jitter source of a worker.
func defaultRandN(n int64) int64 { return rand.Int64N(n) }

// errorChain lists the messages of err and of every error it wraps, depth
// first, following both Unwrap() error and Unwrap() []error (errors.Join).
func errorChain(err error) (out []string) {
	defer func() {
		if v := recover(); v != nil { // an Unwrap method panicked: keep what was read
			out = append(out, fmt.Sprintf("(unwrapping %T panicked: %v)", err, v))
		}
	}()
	var walk func(error, int)
	walk = func(e error, depth int) {
		if e == nil || depth > 32 || len(out) >= 64 {
			return
		}
		out = append(out, errorText(e))
		if isNilError(e) {
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x, depth+1)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap(), depth+1)
		}
	}
	walk(err, 0)
	return out
}

// panicStack returns the stack of the first *PanicError in err's chain.
func panicStack(err error) (stack string) {
	defer func() {
		if recover() != nil {
			stack = ""
		}
	}()
	var p *PanicError
	if errors.As(err, &p) {
		return string(p.Stack)
	}
	return ""
}
