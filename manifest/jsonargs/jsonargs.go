// Package jsonargs converts a task's arguments given as JSON into the msgpack
// wire format a worker decodes, guided only by the manifest's type schema, so
// tools can enqueue any task without its Go code. It also renders stored
// msgpack results as JSON-ready values.
package jsonargs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/nuvom/nuvom/internal/clip"
	"github.com/nuvom/nuvom/manifest"
)

// Encode converts raw, a JSON array of the task's arguments in order or a JSON
// object keyed by parameter name, to the msgpack argument list. Empty input
// means no arguments. Errors name the parameter (and field path), the type
// expected and what was given.
func Encode(task *manifest.Task, raw []byte) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		raw = []byte("[]")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("args of %s are not valid JSON: %w", task.Name, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("args of %s: unexpected data after the JSON value", task.Name)
	}
	if err := duplicateKeys(raw); err != nil {
		return nil, fmt.Errorf("args of %s: %w", task.Name, err)
	}
	vals, err := positional(task, v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	if err := enc.EncodeArrayLen(len(vals)); err != nil {
		return nil, err
	}
	c := converter{enc: enc, named: map[string]*manifest.Type{}}
	for i, p := range task.Params {
		if err := c.value(&p.Type, vals[i], "param "+p.Name); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// duplicateKeys reports a key given twice in one JSON object of raw (valid
// JSON): decoding keeps only the last value, so {"src": "a", "src": "b"}
// would enqueue "b" without a word. The error names the object by its path
// ("" for the top level, then .key and [index]).
func duplicateKeys(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		path   string
		index  int  // next element index (arrays)
		key    bool // objects: the next string token is a key
		last   string
	}
	var stack []*frame
	childPath := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.object {
			return f.path + "." + f.last
		}
		return f.path + "[" + strconv.Itoa(f.index) + "]"
	}
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.object {
			f.key = true
		} else {
			f.index++
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // io.EOF: the value was read whole (Encode checked it is valid)
		}
		if len(stack) > 0 {
			if f := stack[len(stack)-1]; f.object && f.key {
				if d, ok := tok.(json.Delim); ok && d == '}' {
					stack = stack[:len(stack)-1]
					valueDone()
					continue
				}
				k, _ := tok.(string)
				if f.keys[k] {
					where := ""
					if f.path != "" {
						where = " in " + strings.TrimPrefix(f.path, ".")
					}
					return fmt.Errorf("key %s given twice%s", clip.Quote(k), where)
				}
				f.keys[k], f.last, f.key = true, k, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, path: childPath(), key: true})
		case json.Delim('['):
			stack = append(stack, &frame{path: childPath()})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

func positional(task *manifest.Task, v any) ([]any, error) {
	want := paramList(task)
	switch v := v.(type) {
	case []any:
		if len(v) != len(task.Params) {
			return nil, fmt.Errorf("%s takes %d args (%s), got %d", task.Name, len(task.Params), want, len(v))
		}
		return v, nil
	case map[string]any:
		out := make([]any, len(task.Params))
		known := map[string]bool{}
		var missing []string
		for i, p := range task.Params {
			known[p.Name] = true
			val, ok := v[p.Name]
			if !ok {
				missing = append(missing, p.Name)
				continue
			}
			out[i] = val
		}
		var unknown []string
		for k := range v {
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		if len(unknown) > 0 {
			return nil, fmt.Errorf("%s has no param %s (params: %s)", task.Name, clip.Text(strings.Join(unknown, ", ")), want)
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%s: missing param %s (params: %s)", task.Name, strings.Join(missing, ", "), want)
		}
		return out, nil
	}
	return nil, fmt.Errorf("args of %s must be a JSON array or an object keyed by param name (params: %s), got %s",
		task.Name, want, describe(v))
}

func paramList(task *manifest.Task) string {
	if len(task.Params) == 0 {
		return "none"
	}
	parts := make([]string, len(task.Params))
	for i, p := range task.Params {
		parts[i] = p.Name + " " + p.Type.String()
	}
	return strings.Join(parts, ", ")
}

type converter struct {
	enc   *msgpack.Encoder
	named map[string]*manifest.Type // named types seen on the way down, for refs
	depth int
}

const maxDepth = 100

func (c *converter) value(t *manifest.Type, v any, path string) error {
	if c.depth > maxDepth {
		return fmt.Errorf("%s: nested deeper than %d levels", path, maxDepth)
	}
	c.depth++
	defer func() { c.depth-- }()
	if t.Kind == manifest.KindRef {
		target, ok := c.named[t.Name]
		if !ok {
			return fmt.Errorf("%s: type %s refers to an unknown type", path, t.Name)
		}
		t = target
	} else if t.Name != "" {
		if prev, ok := c.named[t.Name]; !ok {
			c.named[t.Name] = t
			defer delete(c.named, t.Name)
		} else if prev != t {
			c.named[t.Name] = t
			defer func() { c.named[t.Name] = prev }()
		}
	}
	mismatch := func() error {
		return fmt.Errorf("%s: expected %s, got %s", path, t.String(), describe(v))
	}
	switch t.Kind {
	case manifest.KindBool:
		b, ok := v.(bool)
		if !ok {
			return mismatch()
		}
		return c.enc.EncodeBool(b)
	case manifest.KindInt, manifest.KindInt8, manifest.KindInt16, manifest.KindInt32, manifest.KindInt64:
		n, ok := v.(json.Number)
		if !ok {
			return mismatch()
		}
		i, err := strconv.ParseInt(n.String(), 10, bitSize(t.Kind))
		if err != nil {
			return fmt.Errorf("%s: expected %s, got %s (not an integer in range)", path, t.String(), clip.Text(n.String()))
		}
		return c.enc.EncodeInt(i)
	case manifest.KindUint, manifest.KindUint8, manifest.KindUint16, manifest.KindUint32, manifest.KindUint64:
		n, ok := v.(json.Number)
		if !ok {
			return mismatch()
		}
		u, err := strconv.ParseUint(n.String(), 10, bitSize(t.Kind))
		if err != nil {
			return fmt.Errorf("%s: expected %s, got %s (not a non-negative integer in range)", path, t.String(), clip.Text(n.String()))
		}
		return c.enc.EncodeUint(u)
	case manifest.KindFloat32, manifest.KindFloat64:
		n, ok := v.(json.Number)
		if !ok {
			return mismatch()
		}
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil {
			return fmt.Errorf("%s: expected %s, got %s", path, t.String(), clip.Text(n.String()))
		}
		if t.Kind == manifest.KindFloat32 {
			if math.Abs(f) > math.MaxFloat32 {
				return fmt.Errorf("%s: %s overflows float32", path, clip.Text(n.String()))
			}
			return c.enc.EncodeFloat32(float32(f))
		}
		return c.enc.EncodeFloat64(f)
	case manifest.KindString:
		s, ok := v.(string)
		if !ok {
			return mismatch()
		}
		return c.enc.EncodeString(s)
	case manifest.KindBytes:
		if v == nil {
			return c.enc.EncodeNil()
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: expected []byte as a base64 string, got %s", path, describe(v))
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("%s: expected []byte as a base64 string: %v", path, err)
		}
		return c.enc.EncodeBytes(b)
	case manifest.KindTime:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: expected time.Time as an RFC 3339 string, got %s", path, describe(v))
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("%s: expected time.Time as an RFC 3339 string such as \"2026-01-02T15:04:05Z\", got %s", path, clip.Quote(s))
		}
		return c.enc.EncodeTime(tm)
	case manifest.KindDuration:
		// A bare number has no unit: 90 would silently mean 90 nanoseconds.
		d, ok := v.(string)
		if !ok {
			hint := ""
			if n, isNum := v.(json.Number); isNum {
				hint = fmt.Sprintf(` (a number has no unit: write "%ss", "%sms"...)`, clip.Text(n.String()), clip.Text(n.String()))
			}
			return fmt.Errorf("%s: expected time.Duration as a string such as \"1m30s\", got %s%s", path, describe(v), hint)
		}
		dur, err := time.ParseDuration(d)
		if err != nil {
			return fmt.Errorf("%s: expected time.Duration as a string such as \"1m30s\", got %s", path, clip.Quote(d))
		}
		return c.enc.EncodeInt(int64(dur))
	case manifest.KindPointer:
		if v == nil {
			return c.enc.EncodeNil()
		}
		return c.value(t.Elem, v, path)
	case manifest.KindSlice, manifest.KindArray:
		if v == nil && t.Kind == manifest.KindSlice {
			return c.enc.EncodeNil()
		}
		items, ok := v.([]any)
		if !ok {
			return mismatch()
		}
		if t.Kind == manifest.KindArray && int64(len(items)) != t.Len {
			return fmt.Errorf("%s: expected %s with exactly %d elements, got %d", path, t.String(), t.Len, len(items))
		}
		if err := c.enc.EncodeArrayLen(len(items)); err != nil {
			return err
		}
		for i, item := range items {
			if err := c.value(t.Elem, item, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case manifest.KindMap:
		if v == nil {
			return c.enc.EncodeNil()
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return mismatch()
		}
		keys := sortedKeys(obj)
		if err := c.enc.EncodeMapLen(len(keys)); err != nil {
			return err
		}
		for _, k := range keys {
			kp := fmt.Sprintf("%s[%s]", path, clip.Quote(k))
			if err := c.mapKey(t.Key, k, kp); err != nil {
				return err
			}
			if err := c.value(t.Elem, obj[k], kp); err != nil {
				return err
			}
		}
		return nil
	case manifest.KindStruct:
		return c.structValue(t, v, path)
	}
	return fmt.Errorf("%s: unsupported kind %q", path, t.Kind)
}

func (c *converter) structValue(t *manifest.Type, v any, path string) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: expected %s as a JSON object, got %s", path, t.String(), describe(v))
	}
	// Keys may be the wire name or the Go field name.
	byKey := map[string]int{}
	names := make([]string, len(t.Fields))
	for i, f := range t.Fields {
		byKey[f.Wire] = i
		byKey[f.Name] = i
		names[i] = f.Wire
	}
	given := make([]any, len(t.Fields))
	set := make([]bool, len(t.Fields))
	for _, k := range sortedKeys(obj) {
		i, ok := byKey[k]
		if !ok {
			return fmt.Errorf("%s: %s has no field %s (fields: %s)", path, t.String(), clip.Quote(k), strings.Join(names, ", "))
		}
		if set[i] {
			return fmt.Errorf("%s: field %s given twice", path, t.Fields[i].Wire)
		}
		given[i], set[i] = obj[k], true
	}
	n := 0
	for _, s := range set {
		if s {
			n++
		}
	}
	if err := c.enc.EncodeMapLen(n); err != nil {
		return err
	}
	for i, f := range t.Fields {
		if !set[i] {
			continue
		}
		if err := c.enc.EncodeString(f.Wire); err != nil {
			return err
		}
		if err := c.value(&t.Fields[i].Type, given[i], path+"."+f.Name); err != nil {
			return err
		}
	}
	return nil
}

func (c *converter) mapKey(t *manifest.Type, k string, path string) error {
	switch t.Kind {
	case manifest.KindString:
		return c.enc.EncodeString(k)
	case manifest.KindBool:
		b, err := strconv.ParseBool(k)
		if err != nil {
			return fmt.Errorf("%s: map key must be a bool", path)
		}
		return c.enc.EncodeBool(b)
	case manifest.KindInt, manifest.KindInt8, manifest.KindInt16, manifest.KindInt32, manifest.KindInt64:
		i, err := strconv.ParseInt(k, 10, bitSize(t.Kind))
		if err != nil {
			return fmt.Errorf("%s: map key must be an integer of type %s", path, t.String())
		}
		return c.enc.EncodeInt(i)
	case manifest.KindUint, manifest.KindUint8, manifest.KindUint16, manifest.KindUint32, manifest.KindUint64:
		u, err := strconv.ParseUint(k, 10, bitSize(t.Kind))
		if err != nil {
			return fmt.Errorf("%s: map key must be a non-negative integer of type %s", path, t.String())
		}
		return c.enc.EncodeUint(u)
	case manifest.KindFloat32, manifest.KindFloat64:
		f, err := strconv.ParseFloat(k, 64)
		if err != nil {
			return fmt.Errorf("%s: map key must be a number", path)
		}
		return c.enc.EncodeFloat64(f)
	}
	return fmt.Errorf("%s: map keys of type %s cannot be given in JSON", path, t.String())
}

func bitSize(k manifest.Kind) int {
	switch k {
	case manifest.KindInt8, manifest.KindUint8:
		return 8
	case manifest.KindInt16, manifest.KindUint16:
		return 16
	case manifest.KindInt32, manifest.KindUint32:
		return 32
	}
	return 64
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool " + strconv.FormatBool(v)
	case json.Number:
		return "number " + clip.Text(v.String())
	case string:
		return "string " + clip.Quote(v)
	case []any:
		return fmt.Sprintf("array of %d", len(v))
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// Decode renders msgpack data (a stored result, or an argument list) as a value
// that encoding/json can print: maps keyed by strings, times as RFC 3339,
// bytes as base64.
func Decode(data []byte) (any, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var v any
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	dec.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeUntypedMap() })
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode msgpack: %w", err)
	}
	return jsonable(v), nil
}

func jsonable(v any) any {
	switch v := v.(type) {
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, val := range v {
			out[fmt.Sprint(k)] = jsonable(val)
		}
		return out
	case map[string]any:
		for k, val := range v {
			v[k] = jsonable(val)
		}
		return v
	case []any:
		for i, val := range v {
			v[i] = jsonable(val)
		}
		return v
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprint(v)
		}
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Sprint(v)
		}
	}
	return v
}

// DecodeArgs renders a stored argument list like Decode, guided by the task's
// parameter types: a time.Duration is shown as a Go duration string ("1m30s")
// rather than as nanoseconds. Values that do not match the types are left as
// Decode renders them.
func DecodeArgs(task *manifest.Task, data []byte) (any, error) {
	v, err := Decode(data)
	if err != nil || v == nil {
		return v, err
	}
	items, ok := v.([]any)
	if !ok || len(items) != len(task.Params) {
		return v, nil
	}
	for i := range items {
		items[i] = typed(&task.Params[i].Type, items[i], map[string]*manifest.Type{})
	}
	return items, nil
}

// DecodeResult renders a stored result like Decode, guided by the task's
// result type as DecodeArgs is by its parameter types.
func DecodeResult(task *manifest.Task, data []byte) (any, error) {
	v, err := Decode(data)
	if err != nil || v == nil || task.Result == nil {
		return v, err
	}
	return typed(task.Result, v, map[string]*manifest.Type{}), nil
}

// typed rewrites the durations inside v, a value Decode rendered, as Go
// duration strings, following t; named holds the named types seen on the way
// down, for refs.
func typed(t *manifest.Type, v any, named map[string]*manifest.Type) any {
	if v == nil {
		return nil
	}
	if t.Kind == manifest.KindRef {
		target, ok := named[t.Name]
		if !ok {
			return v
		}
		t = target
	} else if t.Name != "" {
		if _, ok := named[t.Name]; !ok {
			named[t.Name] = t
			defer delete(named, t.Name)
		}
	}
	switch t.Kind {
	case manifest.KindDuration:
		if n, ok := integer(v); ok {
			return time.Duration(n).String()
		}
	case manifest.KindPointer:
		return typed(t.Elem, v, named)
	case manifest.KindSlice, manifest.KindArray:
		if items, ok := v.([]any); ok {
			for i := range items {
				items[i] = typed(t.Elem, items[i], named)
			}
		}
	case manifest.KindMap:
		if m, ok := v.(map[string]any); ok {
			for k := range m {
				m[k] = typed(t.Elem, m[k], named)
			}
		}
	case manifest.KindStruct:
		if m, ok := v.(map[string]any); ok {
			for i := range t.Fields {
				f := &t.Fields[i]
				if fv, ok := m[f.Wire]; ok {
					m[f.Wire] = typed(&f.Type, fv, named)
				}
			}
		}
	}
	return v
}

// integer returns a msgpack-decoded integer as an int64.
func integer(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		if n <= math.MaxInt64 {
			return int64(n), true
		}
	}
	return 0, false
}
