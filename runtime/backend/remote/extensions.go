package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// The optional parts of the storage contract (backend.Admin,
// backend.Workflows, backend.Limits) travel like the core calls. The Client
// implements all three; a server whose backend lacks one answers each of its
// calls with an error naming the backend and the missing capability.

var (
	_ backend.Admin     = (*Client)(nil)
	_ backend.Workflows = (*Client)(nil)
	_ backend.Limits    = (*Client)(nil)
)

// The parameters of the optional calls that take more than one value.
type (
	workersParams struct {
		Now time.Time `json:"now"`
	}
	pausedParams struct {
		Queue  string `json:"queue"`
		Paused bool   `json:"paused"`
	}
	bulkParams struct {
		Action backend.BulkAction `json:"action"`
		Sel    backend.Selection  `json:"sel"`
		Now    time.Time          `json:"now"`
	}
	cancelWorkflowParams struct {
		ID  string    `json:"id"`
		Now time.Time `json:"now"`
	}
	overrideParams struct {
		Task  string        `json:"task"`
		Limit backend.Limit `json:"limit"`
		Set   bool          `json:"set"`
	}
)

// capability names an optional part of the contract in errors.
const (
	capAdmin     = "operator tools (workers, queue pauses, per-minute stats, search, bulk actions: backend.Admin)"
	capWorkflows = "workflows (backend.Workflows)"
	capLimits    = "task limits (backend.Limits)"
)

// unwrapTo returns b, or the first backend it wraps (through an Unwrap()
// backend.Backend method), that is a T.
func unwrapTo[T any](b backend.Backend) (T, bool) {
	for b != nil {
		if t, ok := b.(T); ok {
			return t, true
		}
		u, ok := b.(interface{ Unwrap() backend.Backend })
		if !ok {
			break
		}
		b = u.Unwrap()
	}
	var zero T
	return zero, false
}

// callExtension runs req when it is a call of an optional part of the
// contract; handled is false for any other method.
func (s *server) callExtension(ctx context.Context, req request, params func(any) error) (result any, handled bool, err error) {
	lacks := func(capability string) error {
		return fmt.Errorf("remote: %s: the backend %q lacks %s: %w", req.Method, s.name, capability, errors.ErrUnsupported)
	}
	admin := func() (backend.Admin, error) {
		a, ok := backend.AdminOf(s.b)
		if !ok {
			return nil, lacks(capAdmin)
		}
		return a, nil
	}
	flows := func() (backend.Workflows, error) {
		w, ok := unwrapTo[backend.Workflows](s.b)
		if !ok {
			return nil, lacks(capWorkflows)
		}
		return w, nil
	}
	limits := func() (backend.Limits, error) {
		l, ok := unwrapTo[backend.Limits](s.b)
		if !ok {
			return nil, lacks(capLimits)
		}
		return l, nil
	}
	handled = true
	switch req.Method {
	// backend.Admin
	case "Heartbeat":
		var w backend.WorkerInfo
		var a backend.Admin
		if a, err = admin(); err == nil {
			if err = params(&w); err == nil {
				err = a.Heartbeat(ctx, w)
			}
		}
	case "RemoveWorker":
		var id string
		var a backend.Admin
		if a, err = admin(); err == nil {
			if err = params(&id); err == nil {
				err = a.RemoveWorker(ctx, id)
			}
		}
	case "Workers":
		var p workersParams
		var a backend.Admin
		if a, err = admin(); err == nil {
			if err = params(&p); err == nil {
				result, err = a.Workers(ctx, p.Now)
			}
		}
	case "SetPaused":
		var p pausedParams
		var a backend.Admin
		if a, err = admin(); err == nil {
			if err = params(&p); err == nil {
				err = a.SetPaused(ctx, p.Queue, p.Paused)
			}
		}
	case "Paused":
		var a backend.Admin
		if a, err = admin(); err == nil {
			result, err = a.Paused(ctx)
		}
	case "Minutes":
		var f backend.MinuteFilter
		var a backend.Admin
		if a, err = admin(); err == nil {
			if err = params(&f); err == nil {
				result, err = a.Minutes(ctx, f)
			}
		}
	case "Search":
		var q backend.JobQuery
		var a backend.Admin
		if a, err = admin(); err == nil {
			if err = params(&q); err == nil {
				result, err = a.Search(ctx, q)
			}
		}
	case "Bulk":
		var p bulkParams
		var a backend.Admin
		if a, err = admin(); err == nil {
			if err = params(&p); err == nil {
				result, err = a.Bulk(ctx, p.Action, p.Sel, p.Now)
			}
		}

	// backend.Workflows
	case "EnqueueWorkflow":
		var wf *backend.Workflow
		var w backend.Workflows
		if w, err = flows(); err == nil {
			if err = params(&wf); err == nil {
				err = w.EnqueueWorkflow(ctx, wf)
			}
		}
	case "GetWorkflow":
		var id string
		var w backend.Workflows
		if w, err = flows(); err == nil {
			if err = params(&id); err == nil {
				result, err = w.GetWorkflow(ctx, id)
			}
		}
	case "ListWorkflows":
		var limit int
		var w backend.Workflows
		if w, err = flows(); err == nil {
			if err = params(&limit); err == nil {
				result, err = w.ListWorkflows(ctx, limit)
			}
		}
	case "CancelWorkflow":
		var p cancelWorkflowParams
		var w backend.Workflows
		if w, err = flows(); err == nil {
			if err = params(&p); err == nil {
				result, err = w.CancelWorkflow(ctx, p.ID, p.Now)
			}
		}

	// backend.Limits
	case "DeclareLimits":
		var declared map[string]backend.Limit
		var l backend.Limits
		if l, err = limits(); err == nil {
			if err = params(&declared); err == nil {
				err = l.DeclareLimits(ctx, declared)
			}
		}
	case "OverrideLimit":
		var p overrideParams
		var l backend.Limits
		if l, err = limits(); err == nil {
			if err = params(&p); err == nil {
				err = l.OverrideLimit(ctx, p.Task, p.Limit, p.Set)
			}
		}
	case "TaskLimits":
		var l backend.Limits
		if l, err = limits(); err == nil {
			result, err = l.TaskLimits(ctx)
		}
	case "StepOrigin": // backend.StepOrigins: see steporigin.go
		result, err = s.stepOrigin(ctx, params)
	default:
		handled = false
	}
	return result, handled, err
}

// doExt is do for a call of an optional part of the contract: a server
// from before they were carried is told apart from one whose backend lacks them.
func (c *Client) doExt(ctx context.Context, method string, params, out any) ([]*wireError, error) {
	if !c.extended {
		return nil, fmt.Errorf("remote: %s: the backend's server (the module's worker) is built with an older nuvom "+
			"that carries no operator, workflow or task limit calls; update github.com/nuvom/nuvom in the module: %w",
			method, errors.ErrUnsupported)
	}
	return c.do(ctx, method, params, out)
}

// Heartbeat implements backend.Admin.
func (c *Client) Heartbeat(ctx context.Context, w backend.WorkerInfo) error {
	_, err := c.doExt(ctx, "Heartbeat", w, nil)
	return err
}

// RemoveWorker implements backend.Admin.
func (c *Client) RemoveWorker(ctx context.Context, id string) error {
	_, err := c.doExt(ctx, "RemoveWorker", id, nil)
	return err
}

// Workers implements backend.Admin.
func (c *Client) Workers(ctx context.Context, now time.Time) ([]backend.WorkerInfo, error) {
	var out []backend.WorkerInfo
	_, err := c.doExt(ctx, "Workers", workersParams{Now: now}, &out)
	return out, err
}

// SetPaused implements backend.Admin.
func (c *Client) SetPaused(ctx context.Context, queue string, paused bool) error {
	_, err := c.doExt(ctx, "SetPaused", pausedParams{Queue: queue, Paused: paused}, nil)
	return err
}

// Paused implements backend.Admin.
func (c *Client) Paused(ctx context.Context) ([]string, error) {
	var out []string
	_, err := c.doExt(ctx, "Paused", nil, &out)
	return out, err
}

// Minutes implements backend.Admin.
func (c *Client) Minutes(ctx context.Context, f backend.MinuteFilter) ([]backend.MinuteStat, error) {
	var out []backend.MinuteStat
	_, err := c.doExt(ctx, "Minutes", f, &out)
	return out, err
}

// Search implements backend.Admin.
func (c *Client) Search(ctx context.Context, q backend.JobQuery) (backend.JobPage, error) {
	var out backend.JobPage
	_, err := c.doExt(ctx, "Search", q, &out)
	return out, err
}

// Bulk implements backend.Admin.
func (c *Client) Bulk(ctx context.Context, action backend.BulkAction, sel backend.Selection, now time.Time) (int, error) {
	var n int
	_, err := c.doExt(ctx, "Bulk", bulkParams{Action: action, Sel: sel, Now: now}, &n)
	return n, err
}

// EnqueueWorkflow implements backend.Workflows.
func (c *Client) EnqueueWorkflow(ctx context.Context, wf *backend.Workflow) error {
	_, err := c.doExt(ctx, "EnqueueWorkflow", wf, nil)
	return err
}

// GetWorkflow implements backend.Workflows.
func (c *Client) GetWorkflow(ctx context.Context, id string) (*backend.WorkflowInfo, error) {
	var raw json.RawMessage
	if _, err := c.doExt(ctx, "GetWorkflow", id, &raw); err != nil {
		return nil, err
	}
	var info *backend.WorkflowInfo
	if len(raw) == 0 {
		return nil, fmt.Errorf("remote: GetWorkflow %s: no workflow in the answer", id)
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, fmt.Errorf("remote: GetWorkflow %s: decode result: %w", id, err)
	}
	if info == nil {
		return nil, fmt.Errorf("remote: GetWorkflow %s: no workflow in the answer", id)
	}
	// A server built before StepInfo.Seq sends none: its steps are those
	// left, in the order enqueued, numbered by their place as its nuvom did.
	var seqs struct {
		Steps []struct {
			Seq *int `json:"seq"`
		} `json:"steps"`
	}
	if json.Unmarshal(raw, &seqs) == nil {
		for i, s := range seqs.Steps {
			if s.Seq == nil && i < len(info.Steps) {
				info.Steps[i].Seq = i
			}
		}
	}
	return info, nil
}

// ListWorkflows implements backend.Workflows.
func (c *Client) ListWorkflows(ctx context.Context, limit int) ([]backend.WorkflowSummary, error) {
	var out []backend.WorkflowSummary
	_, err := c.doExt(ctx, "ListWorkflows", limit, &out)
	return out, err
}

// CancelWorkflow implements backend.Workflows.
func (c *Client) CancelWorkflow(ctx context.Context, id string, now time.Time) (int, error) {
	var n int
	_, err := c.doExt(ctx, "CancelWorkflow", cancelWorkflowParams{ID: id, Now: now}, &n)
	return n, err
}

// DeclareLimits implements backend.Limits.
func (c *Client) DeclareLimits(ctx context.Context, declared map[string]backend.Limit) error {
	_, err := c.doExt(ctx, "DeclareLimits", declared, nil)
	return err
}

// OverrideLimit implements backend.Limits.
func (c *Client) OverrideLimit(ctx context.Context, task string, l backend.Limit, set bool) error {
	_, err := c.doExt(ctx, "OverrideLimit", overrideParams{Task: task, Limit: l, Set: set}, nil)
	return err
}

// TaskLimits implements backend.Limits.
func (c *Client) TaskLimits(ctx context.Context) ([]backend.TaskLimit, error) {
	var out []backend.TaskLimit
	_, err := c.doExt(ctx, "TaskLimits", nil, &out)
	return out, err
}
