// Package mail has tasks with blank params, no params and an unexported task function.
package mail

import (
	"context"
	"fmt"
)

// Blank has blank params.
func Blank(ctx context.Context, _ string, _ int, arg0 bool) error {
	if !arg0 {
		return fmt.Errorf("arg0 is false")
	}
	return nil
}

// Ping has a context, no params and returns only an error.
func Ping(ctx context.Context) error { return ctx.Err() }

// sweep is an unexported task.
func sweep(ctx context.Context, days int) error {
	if days < 0 {
		return fmt.Errorf("negative days %d", days)
	}
	return nil
}
