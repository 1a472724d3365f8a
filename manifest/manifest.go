// Package manifest is the model of .nuvom_tasks.json, the committed, reviewed
// list of every task of a module: deterministic encoding and decoding, the
// version check, the type schema of params and results, the signature hash and
// a task-level diff.
package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// FileName is the manifest's file name at the module root.
const FileName = ".nuvom_tasks.json"

// Version is the manifest format written by this package: "major.minor".
// A reader refuses a manifest whose major version is newer than its own.
const Version = "1.0"

// DefaultRegistry is the registry package's folder, relative to the module root.
const DefaultRegistry = "nuvomtasks"

// Manifest is the whole file: every task of one module.
type Manifest struct {
	Version  string `json:"version"`
	Module   string `json:"module"`
	Registry string `json:"registry"`
	Tasks    []Task `json:"tasks"`
	// Plugins are the plugins of .nuvom_plugins.toml, in the file's (start)
	// order, with their settings schema; absent when the module has none.
	Plugins []Plugin `json:"plugins,omitempty"`
}

// Plugin is one plugin the module's worker runs.
type Plugin struct {
	// Name is the plugin's name ("prometheus").
	Name string `json:"name"`
	// Import is the plugin package's import path.
	Import string `json:"import"`
	// Builtin is true for a plugin that ships with Nuvom, named by name alone.
	Builtin bool `json:"builtin,omitempty"`
	// Settings are the fields of the plugin's Settings type, in declaration order.
	Settings []Setting `json:"settings"`
}

// Setting is one field of a plugin's settings.
type Setting struct {
	// Key is the setting's key in [plugin.settings].
	Key string `json:"key"`
	// Type is its kind: string, bool, int, float, duration, []string, map[string]string or other.
	Type string `json:"type"`
	// Doc is the first sentence of the field's doc comment.
	Doc string `json:"doc,omitempty"`
}

// Task is one function marked //nuvom:task.
type Task struct {
	// Name is unique module-wide; by default "<package dir>.<Func>".
	Name string `json:"name"`
	// Package is the Go import path of the task's package.
	Package string `json:"package"`
	// Dir is the package folder relative to the module root, slash-separated ("." for the root).
	Dir string `json:"dir"`
	// Func is the Go function's name.
	Func string `json:"func"`
	// File is the source file relative to the module root, slash-separated.
	File string `json:"file"`
	// Doc is the function's doc comment without directives.
	Doc string `json:"doc"`
	// Context is true when the function's first parameter is a context.Context.
	Context bool `json:"context"`
	// Params are the function's parameters after the optional context.
	Params []Param `json:"params"`
	// Result is the schema of the non-error result, nil for functions returning only error.
	Result *Type `json:"result"`
	// Options are the effective options, defaults included.
	Options Options `json:"options"`
	// Signature is the hash of the wire schema; see ComputeSignature.
	Signature string `json:"signature"`
}

// Param is one parameter: its Go name and type schema.
type Param struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
}

// Kind names the shape of a type on the wire.
type Kind string

// The kinds of the type schema.
const (
	KindBool     Kind = "bool"
	KindInt      Kind = "int"
	KindInt8     Kind = "int8"
	KindInt16    Kind = "int16"
	KindInt32    Kind = "int32"
	KindInt64    Kind = "int64"
	KindUint     Kind = "uint"
	KindUint8    Kind = "uint8"
	KindUint16   Kind = "uint16"
	KindUint32   Kind = "uint32"
	KindUint64   Kind = "uint64"
	KindFloat32  Kind = "float32"
	KindFloat64  Kind = "float64"
	KindString   Kind = "string"
	KindBytes    Kind = "bytes"    // []byte
	KindTime     Kind = "time"     // time.Time
	KindDuration Kind = "duration" // time.Duration
	KindSlice    Kind = "slice"
	KindArray    Kind = "array"
	KindMap      Kind = "map"
	KindPointer  Kind = "pointer"
	KindStruct   Kind = "struct"
	// KindRef refers back to an enclosing named type by Name (recursive types).
	KindRef Kind = "ref"
)

var validKinds = map[Kind]bool{
	KindBool: true, KindInt: true, KindInt8: true, KindInt16: true, KindInt32: true, KindInt64: true,
	KindUint: true, KindUint8: true, KindUint16: true, KindUint32: true, KindUint64: true,
	KindFloat32: true, KindFloat64: true, KindString: true, KindBytes: true, KindTime: true,
	KindDuration: true, KindSlice: true, KindArray: true, KindMap: true, KindPointer: true,
	KindStruct: true, KindRef: true,
}

// IsBasic reports whether k is a scalar kind (numbers, bool, string, bytes, time, duration).
func (k Kind) IsBasic() bool {
	switch k {
	case KindSlice, KindArray, KindMap, KindPointer, KindStruct, KindRef:
		return false
	}
	return validKinds[k]
}

// Type is the schema of a parameter or result type.
type Type struct {
	Kind Kind `json:"kind"`
	// Name is the qualified name of a named type ("example.com/shop/images.Thumb"), empty otherwise.
	Name string `json:"name,omitempty"`
	// Elem is the element type of slices, arrays, maps and pointers.
	Elem *Type `json:"elem,omitempty"`
	// Key is the key type of maps.
	Key *Type `json:"key,omitempty"`
	// Len is the length of arrays.
	Len int64 `json:"len,omitempty"`
	// Fields are the exported fields of structs, in declaration order.
	Fields []Field `json:"fields,omitempty"`
}

// Field is one exported struct field.
type Field struct {
	// Name is the Go field name.
	Name string `json:"name"`
	// Wire is the key the field has on the wire (its msgpack tag name, else Name).
	Wire string `json:"wire"`
	// OmitEmpty is true when the field's msgpack tag says omitempty.
	OmitEmpty bool `json:"omitempty,omitempty"`
	Type      Type `json:"type"`
}

// String renders the type the way Go would spell it, with package-qualified names shortened
// to their last path element ("images.Thumb").
func (t Type) String() string {
	if t.Name != "" {
		return shortName(t.Name)
	}
	switch t.Kind {
	case KindBytes:
		return "[]byte"
	case KindTime:
		return "time.Time"
	case KindDuration:
		return "time.Duration"
	case KindSlice:
		return "[]" + t.Elem.String()
	case KindArray:
		return "[" + strconv.FormatInt(t.Len, 10) + "]" + t.Elem.String()
	case KindMap:
		return "map[" + t.Key.String() + "]" + t.Elem.String()
	case KindPointer:
		return "*" + t.Elem.String()
	case KindStruct:
		var b strings.Builder
		b.WriteString("struct{")
		for i, f := range t.Fields {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(f.Name + " " + f.Type.String())
		}
		b.WriteString("}")
		return b.String()
	}
	return string(t.Kind)
}

func shortName(qualified string) string {
	if i := strings.LastIndex(qualified, "/"); i >= 0 {
		return qualified[i+1:]
	}
	return qualified
}

// Backoff policies.
const (
	BackoffFixed       = "fixed"
	BackoffExponential = "exponential"
)

// Timeout policies: what happens when a task runs past its timeout.
const (
	TimeoutRetry  = "retry"
	TimeoutFail   = "fail"
	TimeoutIgnore = "ignore"
)

// DefaultQueue is the queue of tasks that name none.
const DefaultQueue = "default"

// Options are a task's options, as written in its annotation, with defaults filled in.
type Options struct {
	Retries       int      `json:"retries"`
	RetryDelay    Duration `json:"retry_delay"`
	Backoff       string   `json:"backoff"`
	MaxRetryDelay Duration `json:"max_retry_delay"`
	Timeout       Duration `json:"timeout"`
	TimeoutPolicy string   `json:"timeout_policy"`
	Queue         string   `json:"queue"`
	Priority      int      `json:"priority"`
	Tags          []string `json:"tags"`
	StoreResult   bool     `json:"store_result"`
	Version       int      `json:"version"`
	Before        string   `json:"before,omitempty"`
	After         string   `json:"after,omitempty"`
	OnError       string   `json:"on_error,omitempty"`
	// Cron is the schedule the annotation declares with cron= (tasks without params only).
	Cron string `json:"cron,omitempty"`
	// TZ is the IANA time zone of Cron (tz=); empty means UTC.
	TZ string `json:"tz,omitempty"`
	// Every is the interval schedule the annotation declares with every=.
	Every Duration `json:"every,omitempty"`
	// MaxConcurrency is the most jobs of the task running at once across
	// every worker (max_concurrency=); 0 means no limit.
	MaxConcurrency int `json:"max_concurrency,omitempty"`
	// Rate is the most starts per period (rate=10/s, rate=600/m); empty means no limit.
	Rate string `json:"rate,omitempty"`
}

// DefaultOptions are the options of a task whose annotation names none.
func DefaultOptions() Options {
	return Options{
		Retries:       0,
		RetryDelay:    Duration(time.Second),
		Backoff:       BackoffExponential,
		MaxRetryDelay: Duration(time.Hour),
		Timeout:       0,
		TimeoutPolicy: TimeoutFail,
		Queue:         DefaultQueue,
		Priority:      0,
		Tags:          []string{},
		StoreResult:   true,
		Version:       1,
	}
}

// Duration is a time.Duration that reads and writes as a Go duration string ("30s").
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string such as "1m30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// New returns an empty manifest of the current version for module.
func New(module string) *Manifest {
	return &Manifest{Version: Version, Module: module, Registry: DefaultRegistry, Tasks: []Task{}}
}

// Sort orders tasks by name, the order in which they are written.
func (m *Manifest) Sort() {
	sort.Slice(m.Tasks, func(i, j int) bool { return m.Tasks[i].Name < m.Tasks[j].Name })
}

// Lookup returns the task called name, or nil.
func (m *Manifest) Lookup(name string) *Task {
	for i := range m.Tasks {
		if m.Tasks[i].Name == name {
			return &m.Tasks[i]
		}
	}
	return nil
}

// Encode returns the manifest's canonical bytes: tasks sorted by name, stable key
// order, 2-space indent, no HTML escaping, one trailing newline.
func (m *Manifest) Encode() ([]byte, error) {
	c := *m
	c.Tasks = append([]Task(nil), m.Tasks...)
	if c.Tasks == nil {
		c.Tasks = []Task{}
	}
	for i := range c.Tasks {
		if c.Tasks[i].Params == nil {
			c.Tasks[i].Params = []Param{}
		}
		if c.Tasks[i].Options.Tags == nil {
			c.Tasks[i].Options.Tags = []string{}
		}
	}
	c.Sort()
	for i := range c.Plugins {
		if c.Plugins[i].Settings == nil {
			c.Plugins[i].Settings = []Setting{}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode reads a manifest, refusing unknown fields, a newer major version and
// inconsistent content. Errors name the task and field at fault.
func Decode(r io.Reader) (*Manifest, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decode manifest: unexpected data after the manifest object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Load reads and decodes the manifest file at path.
func Load(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// CheckVersion reports an error for a missing or malformed version, or a major
// version newer than this reader's.
func CheckVersion(v string) error {
	if v == "" {
		return fmt.Errorf("manifest has no version field")
	}
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	if err != nil || n < 0 {
		return fmt.Errorf("manifest version %q is not of the form MAJOR.MINOR", v)
	}
	own, _, _ := strings.Cut(Version, ".")
	ownMajor, _ := strconv.Atoi(own)
	if n > ownMajor {
		return fmt.Errorf("manifest version %s is newer than this nuvom understands (%s): upgrade nuvom", v, Version)
	}
	return nil
}

// Validate checks the version and that every task is complete and consistent.
func (m *Manifest) Validate() error {
	if err := CheckVersion(m.Version); err != nil {
		return err
	}
	seen := make(map[string]bool, len(m.Tasks))
	for i := range m.Tasks {
		t := &m.Tasks[i]
		where := fmt.Sprintf("tasks[%d]", i)
		if t.Name != "" {
			where = fmt.Sprintf("task %q", t.Name)
		}
		if err := t.validate(); err != nil {
			return fmt.Errorf("manifest %s: %w", where, err)
		}
		if seen[t.Name] {
			return fmt.Errorf("manifest %s: duplicate task name", where)
		}
		seen[t.Name] = true
	}
	names := map[string]bool{}
	for i, p := range m.Plugins {
		switch {
		case p.Name == "" || p.Import == "":
			return fmt.Errorf("manifest plugins[%d]: name and import must be set", i)
		case names[p.Name]:
			return fmt.Errorf("manifest plugin %q: duplicate plugin name", p.Name)
		}
		names[p.Name] = true
	}
	return nil
}

func (t *Task) validate() error {
	switch {
	case t.Name == "":
		return fmt.Errorf("name is empty")
	case t.Func == "":
		return fmt.Errorf("func is empty")
	case t.Package == "":
		return fmt.Errorf("package is empty")
	}
	for i, p := range t.Params {
		if err := p.Type.validate(0); err != nil {
			return fmt.Errorf("param %d (%s): %w", i, p.Name, err)
		}
	}
	if t.Result != nil {
		if err := t.Result.validate(0); err != nil {
			return fmt.Errorf("result: %w", err)
		}
	}
	o := t.Options
	if o.Retries < 0 {
		return fmt.Errorf("options.retries is negative")
	}
	if o.Backoff != BackoffFixed && o.Backoff != BackoffExponential {
		return fmt.Errorf("options.backoff %q is neither %q nor %q", o.Backoff, BackoffFixed, BackoffExponential)
	}
	switch o.TimeoutPolicy {
	case TimeoutRetry, TimeoutFail, TimeoutIgnore:
	default:
		return fmt.Errorf("options.timeout_policy %q is not one of retry, fail, ignore", o.TimeoutPolicy)
	}
	if o.Queue == "" {
		return fmt.Errorf("options.queue is empty")
	}
	if err := o.checkLimits(); err != nil {
		return err
	}
	if t.Signature != "" && t.Signature != t.ComputeSignature() {
		return fmt.Errorf("signature %s does not match the params and result (%s): regenerate with nuvomgen", t.Signature, t.ComputeSignature())
	}
	return nil
}

const maxTypeDepth = 64

func (t *Type) validate(depth int) error {
	if depth > maxTypeDepth {
		return fmt.Errorf("type nests deeper than %d levels", maxTypeDepth)
	}
	if !validKinds[t.Kind] {
		return fmt.Errorf("unknown kind %q", t.Kind)
	}
	needElem := t.Kind == KindSlice || t.Kind == KindArray || t.Kind == KindMap || t.Kind == KindPointer
	if needElem && t.Elem == nil {
		return fmt.Errorf("%s type has no elem", t.Kind)
	}
	if t.Kind == KindMap && t.Key == nil {
		return fmt.Errorf("map type has no key")
	}
	if t.Kind == KindRef && t.Name == "" {
		return fmt.Errorf("ref type has no name")
	}
	if t.Kind == KindArray && t.Len < 0 {
		return fmt.Errorf("array has negative length")
	}
	if t.Elem != nil {
		if err := t.Elem.validate(depth + 1); err != nil {
			return err
		}
	}
	if t.Key != nil {
		if err := t.Key.validate(depth + 1); err != nil {
			return err
		}
	}
	for _, f := range t.Fields {
		if f.Name == "" || f.Wire == "" {
			return fmt.Errorf("struct field has an empty name")
		}
		if err := f.Type.validate(depth + 1); err != nil {
			return fmt.Errorf("field %s: %w", f.Name, err)
		}
	}
	return nil
}
