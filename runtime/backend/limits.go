package backend

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limit is a task's flow control: how many of its jobs may run at once
// across every worker on the store, and how many may start per period.
// Zero fields mean no limit.
type Limit struct {
	// MaxConcurrency is the most jobs of the task running at once.
	MaxConcurrency int `json:"max_concurrency,omitempty"`
	// Rate jobs of the task start at most per Per, over any window of that length.
	Rate int           `json:"rate,omitempty"`
	Per  time.Duration `json:"per,omitempty"`
}

// IsZero reports whether l limits nothing.
func (l Limit) IsZero() bool { return l.MaxConcurrency <= 0 && (l.Rate <= 0 || l.Per <= 0) }

// String is "max_concurrency=5 rate=10/s", or "none".
func (l Limit) String() string {
	var parts []string
	if l.MaxConcurrency > 0 {
		parts = append(parts, "max_concurrency="+strconv.Itoa(l.MaxConcurrency))
	}
	if l.Rate > 0 && l.Per > 0 {
		parts = append(parts, "rate="+FormatRate(l.Rate, l.Per))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// FormatRate is "10/s", "600/m", "5/h", or "3/2s" for other periods.
func FormatRate(n int, per time.Duration) string {
	switch per {
	case time.Second:
		return strconv.Itoa(n) + "/s"
	case time.Minute:
		return strconv.Itoa(n) + "/m"
	case time.Hour:
		return strconv.Itoa(n) + "/h"
	}
	return strconv.Itoa(n) + "/" + per.String()
}

// ParseRate reads "10/s", "600/m", "5/h" or "3/2s" (N per a Go duration).
func ParseRate(s string) (n int, per time.Duration, err error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, 0, fmt.Errorf("rate %q: want N/s, N/m, N/h or N/<duration>", s)
	}
	n, err = strconv.Atoi(num)
	if err != nil || n <= 0 {
		return 0, 0, fmt.Errorf("rate %q: %q is not a positive whole number", s, num)
	}
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		if per, err = time.ParseDuration(unit); err != nil || per <= 0 {
			return 0, 0, fmt.Errorf("rate %q: period %q is not s, m, h or a positive duration", s, unit)
		}
	}
	return n, per, nil
}

// TaskLimit is the stored flow control of one task: the limit its workers
// declare (from the //nuvom:task annotation) and an override set by an
// operator (CLI or Client.SetTaskLimit), which wins while it is set.
type TaskLimit struct {
	Task     string `json:"task"`
	Declared Limit  `json:"declared"`
	// Override, when HasOverride, replaces Declared (a zero Override lifts the limit).
	Override    Limit `json:"override"`
	HasOverride bool  `json:"has_override"`
}

// Effective is the limit the claim enforces.
func (t TaskLimit) Effective() Limit {
	if t.HasOverride {
		return t.Override
	}
	return t.Declared
}

// Limits is the part of the storage contract that enforces per-task flow
// control in Claim, for every claimer of the store (every process). A backend
// that implements it never lets Claim start a job of a task when that would
// put more than its effective MaxConcurrency jobs of the task in state
// running, or more than Rate jobs of the task with StartedAt in any window
// [t, t+Per) (claims in one store are ordered; their Now may be a little out
// of order across processes, and the rule holds on the StartedAt values).
// Tasks without a limit cost the claim nothing beyond reading the (small)
// set of limits.
type Limits interface {
	// DeclareLimits stores the declared limits of tasks (a zero Limit removes
	// a declaration), leaving overrides alone. Workers call it on start.
	DeclareLimits(ctx context.Context, declared map[string]Limit) error
	// OverrideLimit sets (set true) or clears the override of task.
	OverrideLimit(ctx context.Context, task string, l Limit, set bool) error
	// TaskLimits lists the stored limits, by task name.
	TaskLimits(ctx context.Context) ([]TaskLimit, error)
}
