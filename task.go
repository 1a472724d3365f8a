package nuvom

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Backoff is how the delay between retries grows.
type Backoff string

// The backoff policies.
const (
	BackoffFixed       Backoff = "fixed"
	BackoffExponential Backoff = "exponential"
)

// TaskOptions are a task's options as generated from its //nuvom:task annotation.
type TaskOptions struct {
	Retries       int
	RetryDelay    time.Duration
	Backoff       Backoff
	MaxRetryDelay time.Duration
	Timeout       time.Duration
	TimeoutPolicy TimeoutPolicy
	Queue         string
	Priority      int
	Tags          []string
	StoreResult   bool
	Version       int
	// Cron, Zone and Every are the schedule declared in the annotation (cron=,
	// tz=, every=); a worker upserts it on start. Empty when none is declared.
	Cron  string
	Zone  string
	Every time.Duration
	// MaxConcurrency and Rate are the task's flow control (max_concurrency=,
	// rate=), enforced by the claims of every worker on the store; zero: none.
	MaxConcurrency int
	Rate           Rate
}

// TaskSpec is what enqueueing needs to know of a task: its name, its signature
// hash and its default options. The CLI builds it from the manifest; generated
// code from the annotation.
type TaskSpec struct {
	Name      string
	Signature string
	Options   TaskOptions
}

// InvokeFunc decodes a job's args, calls the task function and encodes its result.
// Generated code implements it with direct calls, without reflection.
type InvokeFunc func(ctx context.Context, args []byte) (result []byte, err error)

// BeforeHook runs before each attempt of a task; an error fails the attempt without running the task.
type BeforeHook func(ctx context.Context, job JobInfo) error

// AfterHook runs after each attempt of a task with the attempt's error (nil on success).
type AfterHook func(ctx context.Context, job JobInfo, err error)

// ErrorHook runs after each failed attempt of a task.
type ErrorHook func(ctx context.Context, job JobInfo, err error)

// TaskDef is a registered task: its spec, the generated invoker and its per-task hooks.
type TaskDef struct {
	TaskSpec
	Invoke  InvokeFunc
	Before  BeforeHook
	After   AfterHook
	OnError ErrorHook
}

// JobInfo describes the job an attempt belongs to; hooks and task code read it.
type JobInfo struct {
	ID          string
	Task        string
	Queue       string
	Priority    int
	Attempt     int
	MaxAttempts int
	CreatedAt   time.Time
	StartedAt   time.Time
	Worker      string
	// Meta is the job's metadata, set at enqueue (see Meta and EnqueueHook):
	// for example the trace context of the code that enqueued it. It is the
	// job's own map: read it, do not change it.
	Meta map[string]string
}

type jobInfoKey struct{}

// WithJobInfo returns a context carrying info, as the worker gives task code.
func WithJobInfo(ctx context.Context, info JobInfo) context.Context {
	return context.WithValue(ctx, jobInfoKey{}, info)
}

// JobInfoFromContext returns the job an attempt's context belongs to.
func JobInfoFromContext(ctx context.Context) (JobInfo, bool) {
	switch info := ctx.Value(jobInfoKey{}).(type) {
	case JobInfo: // WithJobInfo
		return info, true
	case *JobInfo: // a worker's attempt context
		return *info, true
	}
	return JobInfo{}, false
}

// AttemptFromContext returns the current attempt number (1 for the first run), or 0 outside a job.
func AttemptFromContext(ctx context.Context) int {
	info, _ := JobInfoFromContext(ctx)
	return info.Attempt
}

// Registry holds the tasks a worker can run, by name.
type Registry struct {
	tasks map[string]TaskDef
}

// NewRegistry returns a registry holding defs; it refuses duplicate or incomplete definitions.
func NewRegistry(defs ...TaskDef) (*Registry, error) {
	r := &Registry{tasks: make(map[string]TaskDef, len(defs))}
	for _, d := range defs {
		if err := r.Register(d); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds a task definition.
func (r *Registry) Register(d TaskDef) error {
	if d.Name == "" {
		return fmt.Errorf("register task: empty name")
	}
	if d.Invoke == nil {
		return fmt.Errorf("register task %q: no invoke function", d.Name)
	}
	if _, dup := r.tasks[d.Name]; dup {
		return fmt.Errorf("register task %q: registered twice", d.Name)
	}
	r.tasks[d.Name] = d
	return nil
}

// Lookup returns the task called name.
func (r *Registry) Lookup(name string) (TaskDef, bool) {
	d, ok := r.tasks[name]
	return d, ok
}

// Names returns the registered task names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.tasks))
	for n := range r.tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Queues returns the distinct queues of the registered tasks, sorted.
func (r *Registry) Queues() []string {
	seen := map[string]bool{}
	var qs []string
	for _, d := range r.tasks {
		if !seen[d.Options.Queue] {
			seen[d.Options.Queue] = true
			qs = append(qs, d.Options.Queue)
		}
	}
	sort.Strings(qs)
	return qs
}
