package nuvom

import (
	"context"
	"fmt"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Job metadata is a set of string pairs that travels with a job from the
// code that enqueues it to every attempt: Job.Meta in the store,
// JobInfo.Meta in middleware, hooks and task code. It is set at enqueue, by
// the Meta option and by the client's enqueue hooks, and never changes after.
// It is meant for small things such as a trace context (the otel plugin's
// "traceparent"), a tenant or a request id, not for payloads: a job's
// metadata is at most backend.MaxMetaBytes.

// Meta sets the metadata pair key=value on the job. Enqueue hooks run after
// the options and may overwrite it.
func Meta(key, value string) EnqueueOption {
	return func(s *enqueueSettings) {
		if s.meta == nil {
			s.meta = map[string]string{}
		}
		s.meta[key] = value
	}
}

// EnqueueHook is called by a Client for every job it enqueues, before the job
// is stored, with the ctx of the enqueueing call: it may add metadata taken
// from ctx to meta, for example the trace context of the request that
// enqueues (see runtime/plugins/otel). job describes the job (ID, Task,
// Queue, Priority, MaxAttempts, CreatedAt; Meta is meta itself); meta holds
// what the Meta options and earlier hooks set. An error fails the enqueue
// call, storing nothing. A hook must be safe for concurrent use.
type EnqueueHook func(ctx context.Context, job JobInfo, meta map[string]string) error

// WithEnqueueHook adds h to the hooks the client runs on every enqueued job,
// in the order they were given. The process that enqueues is usually not a
// worker and runs no plugins: a plugin that carries something from the
// enqueueing code to the job (a trace context) offers a ClientOption that
// the enqueueing service adds to its Client.
func WithEnqueueHook(h EnqueueHook) ClientOption {
	return func(c *Client) {
		if h != nil {
			c.hooks = append(c.hooks, h)
		}
	}
}

// runHooks runs the client's enqueue hooks on j and checks its metadata.
func (c *Client) runHooks(ctx context.Context, j *Job) error {
	if len(c.hooks) > 0 {
		if j.Meta == nil {
			j.Meta = map[string]string{}
		}
		info := JobInfo{ID: j.ID, Task: j.Task, Queue: j.Queue, Priority: j.Priority,
			MaxAttempts: j.MaxAttempts, CreatedAt: j.CreatedAt, Meta: j.Meta}
		for _, h := range c.hooks {
			if err := h(ctx, info, j.Meta); err != nil {
				return fmt.Errorf("enqueue %s: enqueue hook: %w", j.Task, err)
			}
		}
		if len(j.Meta) == 0 {
			j.Meta = nil
		}
	}
	if err := backend.CheckMeta(j.Meta); err != nil {
		return fmt.Errorf("enqueue %s: %w", j.Task, err)
	}
	return nil
}
