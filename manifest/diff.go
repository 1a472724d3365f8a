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
		d = append(d, typeDetails(o, n)...)
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

// typeDetails names what changed inside the params and result whose type
// reads the same in the signature line ("req kinds.Req" both sides), so that a
// change to a struct's fields is not shown as an identical before and after:
// "param req: field Note (note string) added".
func typeDetails(o, n *Task) []string {
	var d []string
	for _, op := range o.Params {
		for _, np := range n.Params {
			if op.Name == np.Name && op.Type.String() == np.Type.String() {
				d = append(d, fieldChanges("param "+op.Name, "", op.Type, np.Type)...)
			}
		}
	}
	if o.Result != nil && n.Result != nil && o.Result.String() == n.Result.String() {
		d = append(d, fieldChanges("result", "", *o.Result, *n.Result)...)
	}
	return d
}

// fieldChanges lists the differences of two schemas spelt alike, at path
// (the field path below subject, "" at the top).
func fieldChanges(subject, path string, a, b Type) []string {
	at := func(p string) string {
		if p == "" {
			return subject
		}
		return subject + ": field " + p
	}
	if a.Kind != b.Kind || a.Len != b.Len || a.Name != b.Name || a.String() != b.String() && a.Kind != KindStruct {
		return []string{fmt.Sprintf("%s: %s -> %s", at(path), a.String(), b.String())}
	}
	var d []string
	if a.Key != nil && b.Key != nil {
		d = append(d, fieldChanges(subject, path+"[key]", *a.Key, *b.Key)...)
	}
	if a.Elem != nil && b.Elem != nil {
		elem := path
		if a.Kind != KindPointer {
			elem += "[]"
		}
		d = append(d, fieldChanges(subject, elem, *a.Elem, *b.Elem)...)
	}
	if a.Kind != KindStruct {
		return d
	}
	join := func(f Field) string {
		if path == "" {
			return f.Name
		}
		return path + "." + f.Name
	}
	wire := func(f Field) string {
		if f.Wire != f.Name {
			return " (" + f.Wire + " " + f.Type.String() + ")"
		}
		return " (" + f.Type.String() + ")"
	}
	// The order of the fields both sides have, to report a reorder (not the
	// shift an added or removed field causes).
	has := func(fs []Field, name string) bool {
		for _, f := range fs {
			if f.Name == name {
				return true
			}
		}
		return false
	}
	var orderA, orderB []string
	for _, f := range a.Fields {
		if has(b.Fields, f.Name) {
			orderA = append(orderA, f.Name)
		}
	}
	for _, f := range b.Fields {
		if has(a.Fields, f.Name) {
			orderB = append(orderB, f.Name)
		}
	}
	if strings.Join(orderA, ",") != strings.Join(orderB, ",") {
		d = append(d, fmt.Sprintf("%s: fields reordered: %s -> %s", at(path), strings.Join(orderA, ", "), strings.Join(orderB, ", ")))
	}
	for _, af := range a.Fields {
		var bf *Field
		for j := range b.Fields {
			if b.Fields[j].Name == af.Name {
				bf = &b.Fields[j]
			}
		}
		if bf == nil {
			d = append(d, at(join(af))+wire(af)+" removed")
			continue
		}
		if af.Wire != bf.Wire {
			d = append(d, fmt.Sprintf("%s: msgpack key %q -> %q", at(join(af)), af.Wire, bf.Wire))
		}
		if af.OmitEmpty != bf.OmitEmpty {
			d = append(d, fmt.Sprintf("%s: omitempty %t -> %t", at(join(af)), af.OmitEmpty, bf.OmitEmpty))
		}
		d = append(d, fieldChanges(subject, join(af), af.Type, bf.Type)...)
	}
	for _, bf := range b.Fields {
		if !has(a.Fields, bf.Name) {
			d = append(d, at(join(bf))+wire(bf)+" added")
		}
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
