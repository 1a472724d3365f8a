package nuvom

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	mid := func(n int64) int64 { return n / 2 } // jitter at its centre
	low := func(int64) int64 { return 0 }
	cases := []struct {
		name    string
		o       TaskOptions
		attempt int
		randN   func(int64) int64
		want    time.Duration
	}{
		{"no delay", TaskOptions{}, 3, mid, 0},
		{"fixed", TaskOptions{RetryDelay: time.Second, Backoff: BackoffFixed}, 5, low, time.Second},
		{"fixed capped", TaskOptions{RetryDelay: time.Minute, Backoff: BackoffFixed, MaxRetryDelay: time.Second}, 1, low, time.Second},
		{"exp 1", TaskOptions{RetryDelay: time.Second, Backoff: BackoffExponential}, 1, mid, time.Second},
		{"exp 3", TaskOptions{RetryDelay: time.Second, Backoff: BackoffExponential}, 3, mid, 4 * time.Second},
		{"exp jitter low", TaskOptions{RetryDelay: 10 * time.Second, Backoff: BackoffExponential}, 1, low, 8 * time.Second},
		{"exp capped", TaskOptions{RetryDelay: time.Second, Backoff: BackoffExponential, MaxRetryDelay: 10 * time.Second}, 10, mid, 10 * time.Second},
		{"exp capped jitter never exceeds cap", TaskOptions{RetryDelay: time.Second, MaxRetryDelay: 10 * time.Second}, 10, func(n int64) int64 { return n - 1 }, 10 * time.Second},
		{"exp huge attempt does not overflow", TaskOptions{RetryDelay: time.Second}, 500, mid, time.Duration(1 << 62)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := backoffDelay(c.o, c.attempt, c.randN)
			if c.name == "exp huge attempt does not overflow" {
				if got <= 0 {
					t.Fatalf("overflowed: %s", got)
				}
				return
			}
			if got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestErrorChain(t *testing.T) {
	base := errors.New("root")
	cases := []struct {
		err  error
		want []string
	}{
		{base, []string{"root"}},
		{fmt.Errorf("a: %w", base), []string{"a: root", "root"}},
		{NoRetry(fmt.Errorf("b: %w", base)), []string{"b: root", "b: root", "root"}},
		{errors.Join(errors.New("x"), errors.New("y")), []string{"x\ny", "x", "y"}},
	}
	for _, c := range cases {
		if got := errorChain(c.err); !slices.Equal(got, c.want) {
			t.Errorf("errorChain(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
