package manifest

import (
	"fmt"
	"sort"
	"strings"
)

// ChangeKind says what happened to a task between two manifests.
type ChangeKind string

// The kinds of task-level change.
const (
	Added   ChangeKind = "added"
	Removed ChangeKind = "removed"
	Changed ChangeKind = "changed"
)

// Change is one task's difference between two manifests.
type Change struct {
	Kind ChangeKind `json:"kind"`
	Task string     `json:"task"`
	// Details lists what changed, one "field: old -> new" line each (Changed only).
	Details []string `json:"details,omitempty"`
	// SignatureChanged is true when queued jobs of the old version can no longer run.
	SignatureChanged bool `json:"signature_changed,omitempty"`
}

// String renders the change on one line, for example
// "~ images.Resize: options.retries: 3 -> 5".
func (c Change) String() string {
	switch c.Kind {
	case Added:
		return "+ " + c.Task
	case Removed:
		return "- " + c.Task
	}
	return "~ " + c.Task + ": " + strings.Join(c.Details, "; ")
}

// Diff lists the task-level changes from old to new, sorted by task name.
// A nil manifest counts as empty.
func Diff(old, new *Manifest) []Change {
	byName := func(m *Manifest) map[string]*Task {
		out := map[string]*Task{}
		if m == nil {
			return out
		}
		for i := range m.Tasks {
			out[m.Tasks[i].Name] = &m.Tasks[i]
		}
		return out
	}
	before, after := byName(old), byName(new)
	var changes []Change
	for name, o := range before {
		n, ok := after[name]
		if !ok {
			changes = append(changes, Change{Kind: Removed, Task: name})
			continue
		}
		if details := taskDetails(o, n); len(details) > 0 {
			changes = append(changes, Change{Kind: Changed, Task: name, Details: details,
				SignatureChanged: o.Signature != n.Signature})
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			changes = append(changes, Change{Kind: Added, Task: name})
		}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Task < changes[j].Task })
	return changes
}

func taskDetails(o, n *Task) []string {
	var d []string
	add := func(field string, a, b any) {
		as, bs := fmt.Sprint(a), fmt.Sprint(b)
		if as != bs {
			d = append(d, fmt.Sprintf("%s: %s -> %s", field, as, bs))
		}
	}
	if o.Signature != n.Signature {
		d = append(d, fmt.Sprintf("signature: %s [%s] -> %s [%s]", SignatureText(o), o.Signature, SignatureText(n), n.Signature))
	}
	add("package", o.Package, n.Package)
	add("func", o.Func, n.Func)
	add("file", o.File, n.File)
	oo, no := o.Options, n.Options
	add("options.retries", oo.Retries, no.Retries)
	add("options.retry_delay", oo.RetryDelay.Std(), no.RetryDelay.Std())
	add("options.backoff", oo.Backoff, no.Backoff)
	add("options.max_retry_delay", oo.MaxRetryDelay.Std(), no.MaxRetryDelay.Std())
	add("options.timeout", oo.Timeout.Std(), no.Timeout.Std())
	add("options.timeout_policy", oo.TimeoutPolicy, no.TimeoutPolicy)
	add("options.queue", oo.Queue, no.Queue)
	add("options.priority", oo.Priority, no.Priority)
	add("options.tags", strings.Join(oo.Tags, ","), strings.Join(no.Tags, ","))
	add("options.store_result", oo.StoreResult, no.StoreResult)
	add("options.version", oo.Version, no.Version)
	add("options.before", oo.Before, no.Before)
	add("options.after", oo.After, no.After)
	add("options.on_error", oo.OnError, no.OnError)
	if o.Doc != n.Doc {
		d = append(d, "doc changed")
	}
	return d
}

// SignatureText renders a task's Go-like signature, for example
// "(ctx, src string, width int) (images.Thumb, error)".
func SignatureText(t *Task) string {
	var b strings.Builder
	b.WriteByte('(')
	parts := make([]string, 0, len(t.Params)+1)
	if t.Context {
		parts = append(parts, "ctx")
	}
	for _, p := range t.Params {
		parts = append(parts, p.Name+" "+p.Type.String())
	}
	b.WriteString(strings.Join(parts, ", "))
	b.WriteString(") ")
	if t.Result == nil {
		b.WriteString("error")
	} else {
		b.WriteString("(" + t.Result.String() + ", error)")
	}
	return b.String()
}
