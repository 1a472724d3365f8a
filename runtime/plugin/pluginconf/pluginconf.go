// Package pluginconf reads .nuvom_plugins.toml, the committed list of the
// plugins a module's worker runs, and checks and decodes each plugin's
// settings against its settings type. Every problem is reported with its
// position, as ".nuvom_plugins.toml:LINE:COL: message".
//
// The file is a list of [[plugin]] tables, each naming a built-in plugin
// (name = "prometheus") or a Go package (import = "github.com/acme/nuvom-slack"),
// with an optional [plugin.settings] table. String settings may refer to
// environment variables as ${NAME}, or ${NAME:-default} (the default when
// NAME is unset or empty; it holds no brace, references do not nest); they
// are expanded when the worker starts, never when code is generated.
package pluginconf

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// FileName is the file's name at the module root.
const FileName = ".nuvom_plugins.toml"

// builtins maps the names of the plugins that ship with Nuvom to their packages.
var builtins = map[string]string{
	"prometheus": "github.com/nuvom/nuvom/runtime/plugins/prometheus",
	"otel":       "github.com/nuvom/nuvom/runtime/plugins/otel",
}

// Builtin returns the import path of the built-in plugin called name.
func Builtin(name string) (string, bool) {
	p, ok := builtins[name]
	return p, ok
}

// Builtins returns the names of the built-in plugins, sorted.
func Builtins() []string {
	out := make([]string, 0, len(builtins))
	for n := range builtins {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Pos is a position in the file.
type Pos struct {
	File string
	Line int // from 1; 0 when unknown
	Col  int // from 1
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one positioned problem.
type Error struct {
	Pos Pos
	Msg string
}

// Error renders "FILE:LINE:COL: message".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Entry is one [[plugin]] table.
type Entry struct {
	// Name is the plugin's name: as written, else the last element of Import.
	Name string
	// Import is the plugin package's import path (the built-in's for a name alone).
	Import string
	// Builtin is true for a plugin named by name alone.
	Builtin bool
	// Pos is the position of the [[plugin]] header.
	Pos Pos
	// Settings is the raw [plugin.settings] table (nil when absent).
	Settings map[string]any

	keys   map[string]Pos // settings key -> position
	fields map[string]Pos // [[plugin]] key (name, import) -> position
}

// File is a parsed .nuvom_plugins.toml.
type File struct {
	// Name is the file name used in positions.
	Name string
	// Entries are the [[plugin]] tables in file order.
	Entries []Entry
}

// Parse reads the file's content; name is used in positions (normally
// FileName). It checks the structure: known keys only, name or import in each
// table, no duplicate names. All problems are returned, joined.
func Parse(name string, data []byte) (*File, error) {
	f := &File{Name: name}
	var raw map[string]any
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{syntaxPos(name, data, pe.Position), pe.Message}
		}
		return nil, &Error{Pos{File: name}, err.Error()}
	}
	idx := scan(name, data)
	var errs []error
	bad := func(p Pos, format string, args ...any) { errs = append(errs, &Error{p, fmt.Sprintf(format, args...)}) }
	for _, k := range sortedKeys(raw) {
		if k != "plugin" {
			bad(idx.pos(-1, "", k), "unknown key %q (the file holds [[plugin]] tables)", k)
		}
	}
	var tables []map[string]any
	switch v := raw["plugin"].(type) {
	case nil:
	case []map[string]any:
		tables = v
	default:
		bad(idx.pos(-1, "", "plugin"), "plugin must be a list of [[plugin]] tables")
	}
	seen := map[string]Pos{}
	for i, t := range tables {
		e := Entry{Pos: idx.header(i)}
		if i < len(idx.keys) {
			e.keys, e.fields = idx.keys[i]["settings"], idx.keys[i]["plugin"]
		}
		if e.Pos.Line == 0 {
			e.Pos = Pos{File: name}
		}
		for _, k := range sortedKeys(t) {
			switch k {
			case "name", "import":
				s, ok := t[k].(string)
				if !ok {
					bad(idx.pos(i, "plugin", k), "%s must be a string", k)
					continue
				}
				if k == "name" {
					e.Name = s
				} else {
					e.Import = s
				}
			case "settings":
				m, ok := t[k].(map[string]any)
				if !ok {
					bad(idx.pos(i, "plugin", k), "settings must be a table")
					continue
				}
				e.Settings = m
			default:
				bad(idx.pos(i, "plugin", k), "unknown key %q in [[plugin]] (known: name, import, settings)", k)
			}
		}
		switch {
		case e.Import == "" && e.Name == "":
			bad(e.Pos, "plugin needs a name (a built-in: %s) or an import path", strings.Join(Builtins(), ", "))
			continue
		case e.Import == "":
			p, ok := builtins[e.Name]
			if !ok {
				bad(idx.pos(i, "plugin", "name"), "unknown built-in plugin %q (built-ins: %s; a plugin of another module needs import = \"its/package/path\")",
					e.Name, strings.Join(Builtins(), ", "))
				continue
			}
			e.Import, e.Builtin = p, true
		default:
			if !validImport(e.Import) {
				bad(idx.pos(i, "plugin", "import"), "import %q is not a Go import path", e.Import)
				continue
			}
			if e.Name == "" {
				e.Name = path.Base(e.Import)
			}
		}
		if prev, dup := seen[e.Name]; dup {
			bad(e.Pos, "duplicate plugin name %q (first at %s)", e.Name, prev)
			continue
		}
		seen[e.Name] = e.Pos
		f.Entries = append(f.Entries, e)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// syntaxPos is the position of a TOML syntax error, from its byte offset:
// the decoder's line is one too far when the error is at the end of a line
// (a "[[plugin]" header, an unclosed "[plugin.settings").
func syntaxPos(name string, data []byte, p toml.Position) Pos {
	if p.Start < 0 || p.Start > len(data) {
		return Pos{name, p.Line, max(p.Col, 1)}
	}
	before := data[:p.Start]
	line := bytes.Count(before, []byte("\n")) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return Pos{name, line, col}
}

var importRE = regexp.MustCompile(`^[A-Za-z0-9_.~+-]+(/[A-Za-z0-9_.~+-]+)*$`)

func validImport(p string) bool { return importRE.MatchString(p) && !strings.Contains(p, "..") }

// KeyPos returns the position of a settings key of the entry (its table's
// header when the key's line is unknown).
func (e *Entry) KeyPos(key string) Pos {
	if p, ok := e.keys[key]; ok {
		return p
	}
	if p, ok := e.fields["settings"]; ok {
		return p // settings = { ... }: the line of the inline table
	}
	return e.Pos
}

// BlamePos returns the position of the setting that msg, an error of the
// plugin's constructor, starts with ("refresh -5s must be positive" or
// "setting refresh: ...": the refresh key; a "plugin NAME: " prefix is
// skipped), else the table's header.
func (e *Entry) BlamePos(msg string) Pos {
	msg = strings.TrimPrefix(strings.TrimPrefix(msg, "plugin "+e.Name+": "), "setting ")
	if f := strings.Fields(msg); len(f) > 0 {
		if k := strings.TrimRight(f[0], ":,"); e.Settings[k] != nil {
			return e.KeyPos(k)
		}
	}
	return e.Pos
}

// EnvRefPos returns the position of the first setting whose value refers to
// ${name} (the table's header when none does).
func (e *Entry) EnvRefPos(name string) Pos {
	for _, k := range sortedKeys(e.Settings) {
		if slices.Contains((&Entry{Settings: map[string]any{k: e.Settings[k]}}).EnvRefs(), name) {
			return e.KeyPos(k)
		}
	}
	return e.Pos
}

// FieldPos returns the position of the entry's name or import key (its
// table's header when absent).
func (e *Entry) FieldPos(key string) Pos {
	if p, ok := e.fields[key]; ok {
		return p
	}
	return e.Pos
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// index holds the positions of keys found by a line scan: the toml package
// does not expose them, and keys repeat across [[plugin]] tables.
type index struct {
	file    string
	headers []Pos
	top     map[string]Pos
	keys    []map[string]map[string]Pos // table -> section -> key -> pos
}

func (x *index) header(i int) Pos {
	if i < len(x.headers) {
		return x.headers[i]
	}
	return Pos{}
}

func (x *index) pos(i int, section, key string) Pos {
	if i < 0 {
		if p, ok := x.top[key]; ok {
			return p
		}
		return Pos{File: x.file}
	}
	if i < len(x.keys) {
		if p, ok := x.keys[i][section][key]; ok {
			return p
		}
	}
	if p := x.header(i); p.Line > 0 {
		return p
	}
	return Pos{File: x.file}
}

var (
	headerRE = regexp.MustCompile(`^\s*(\[\[?)\s*([^\]]*?)\s*\]\]?`)
	keyRE    = regexp.MustCompile(`^(\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*=`)
	// inlineKeyRE finds the keys of an inline table: settings = { a = 1, b = 2 }.
	inlineKeyRE = regexp.MustCompile(`[{,]\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*=`)
)

// scan finds [[plugin]] headers and the keys of each table, by line.
func scan(file string, data []byte) *index {
	x := &index{file: file, top: map[string]Pos{}}
	cur, section := -1, ""
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if m := headerRE.FindStringSubmatch(line); m != nil {
			name := strings.ReplaceAll(m[2], " ", "")
			switch {
			case m[1] == "[[" && name == "plugin":
				cur++
				section = "plugin"
				col := strings.Index(line, "[") + 1
				x.headers = append(x.headers, Pos{file, n + 1, col})
				x.keys = append(x.keys, map[string]map[string]Pos{})
			case name == "plugin.settings" && cur >= 0:
				section = "settings"
			default:
				section = "other"
			}
			continue
		}
		m := keyRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key := strings.Trim(m[2], `"'`)
		p := Pos{file, n + 1, utf8.RuneCountInString(m[1]) + 1}
		switch {
		case cur < 0 && section == "":
			x.top[key] = p
		case cur >= 0 && (section == "plugin" || section == "settings"):
			if x.keys[cur][section] == nil {
				x.keys[cur][section] = map[string]Pos{}
			}
			x.keys[cur][section][key] = p
			if section == "plugin" && key == "settings" {
				x.inline(cur, file, n+1, line, len(m[0]))
			}
		}
	}
	return x
}

// inline records the keys of the inline settings table on line (from byte
// from on), each at its first occurrence.
func (x *index) inline(cur int, file string, lineNo int, line string, from int) {
	rest := line[from:]
	if !strings.HasPrefix(strings.TrimSpace(rest), "{") {
		return
	}
	if x.keys[cur]["settings"] == nil {
		x.keys[cur]["settings"] = map[string]Pos{}
	}
	for _, m := range inlineKeyRE.FindAllStringSubmatchIndex(rest, -1) {
		key := strings.Trim(rest[m[2]:m[3]], `"'`)
		if _, ok := x.keys[cur]["settings"][key]; !ok {
			x.keys[cur]["settings"][key] = Pos{file, lineNo, utf8.RuneCountInString(line[:from+m[2]]) + 1}
		}
	}
}

// Kind is the type of a setting, as the file spells its value.
type Kind string

// The kinds of settings.
const (
	KindString   Kind = "string"
	KindBool     Kind = "bool"
	KindInt      Kind = "int"
	KindFloat    Kind = "float"
	KindDuration Kind = "duration" // a string such as "30s"
	KindStrings  Kind = "[]string"
	KindMap      Kind = "map[string]string"
	KindOther    Kind = "other" // any other type: decoded, not checked in advance
)

// Field is one setting of a plugin's settings type.
type Field struct {
	Key  string `json:"key"`
	Kind Kind   `json:"type"`
	Doc  string `json:"doc,omitempty"`
}

// Schema is a plugin's settings, in declaration order.
type Schema []Field

var durationType = reflect.TypeFor[time.Duration]()

// SchemaOf returns the schema of a settings value: a pointer to a struct
// whose exported fields are the settings (named by their toml tag, else their
// Go name). Nil gives an empty schema.
func SchemaOf(settings any) (Schema, error) {
	if settings == nil {
		return nil, nil
	}
	t := reflect.TypeOf(settings)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("settings must be a pointer to a struct, not %s", t)
	}
	t = t.Elem()
	var s Schema
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key := f.Name
		if tag, _, _ := strings.Cut(f.Tag.Get("toml"), ","); tag == "-" {
			continue
		} else if tag != "" {
			key = tag
		}
		s = append(s, Field{Key: key, Kind: KindOfType(f.Type)})
	}
	return s, nil
}

// KindOfType returns the kind of a settings field of type t.
func KindOfType(t reflect.Type) Kind {
	if t == durationType {
		return KindDuration
	}
	switch t.Kind() {
	case reflect.String:
		return KindString
	case reflect.Bool:
		return KindBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return KindInt
	case reflect.Float32, reflect.Float64:
		return KindFloat
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return KindStrings
		}
	case reflect.Map:
		if t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String {
			return KindMap
		}
	}
	return KindOther
}

// lookup finds key in s: exactly, else ignoring case (as the toml decoder does).
func (s Schema) lookup(key string) (Field, bool) {
	for _, f := range s {
		if f.Key == key {
			return f, true
		}
	}
	for _, f := range s {
		if strings.EqualFold(f.Key, key) {
			return f, true
		}
	}
	return Field{}, false
}

// Check validates the entry's settings against schema: every key known and
// every value of its field's type. A nil schema (a plugin without settings)
// refuses any setting.
func (e *Entry) Check(plugin string, schema Schema) error {
	var errs []error
	for _, k := range sortedKeys(e.Settings) {
		f, ok := schema.lookup(k)
		if !ok {
			var known []string
			for _, f := range schema {
				known = append(known, f.Key)
			}
			hint := "it takes no settings"
			if len(known) > 0 {
				hint = "known: " + strings.Join(known, ", ")
			}
			errs = append(errs, &Error{e.KeyPos(k), fmt.Sprintf("plugin %s: unknown setting %q (%s)", plugin, k, hint)})
			continue
		}
		if msg := checkValue(f.Kind, e.Settings[k]); msg != "" {
			errs = append(errs, &Error{e.KeyPos(k), fmt.Sprintf("plugin %s: setting %s: %s", plugin, k, msg)})
		} else if msg := checkEnvDefaults(e.Settings[k]); msg != "" {
			errs = append(errs, &Error{e.KeyPos(k), fmt.Sprintf("plugin %s: setting %s: %s", plugin, k, msg)})
		}
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].(*Error).Pos, errs[j].(*Error).Pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return errors.Join(errs...)
}

// tomlType names a decoded TOML value's type for messages.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	}
	return fmt.Sprintf("%T", v)
}

func checkValue(k Kind, v any) string {
	want := ""
	switch k {
	case KindString:
		if _, ok := v.(string); ok {
			return ""
		}
		want = "a string"
	case KindBool:
		if _, ok := v.(bool); ok {
			return ""
		}
		want = "a boolean (true or false)"
	case KindInt:
		if _, ok := v.(int64); ok {
			return ""
		}
		want = "an integer"
	case KindFloat:
		switch v.(type) {
		case int64, float64:
			return ""
		}
		want = "a number"
	case KindDuration:
		if s, ok := v.(string); ok {
			if hasEnv(s) {
				// Known only when every reference has a default: the
				// value of a worker started without the variables.
				d, known := withDefaults(s)
				if _, err := time.ParseDuration(d); known && err != nil {
					return fmt.Sprintf("%q is %q with its variables unset: not a duration such as \"30s\"", s, d)
				}
				return ""
			}
			if _, err := time.ParseDuration(s); err != nil {
				return fmt.Sprintf("%q is not a duration such as \"30s\"", s)
			}
			return ""
		}
		want = `a duration string such as "30s"`
	case KindStrings:
		if a, ok := v.([]any); ok {
			for _, x := range a {
				if _, ok := x.(string); !ok {
					return "want an array of strings, found an element that is " + tomlType(x)
				}
			}
			return ""
		}
		want = "an array of strings"
	case KindMap:
		if m, ok := v.(map[string]any); ok {
			for _, k := range sortedKeys(m) {
				if _, ok := m[k].(string); !ok {
					return fmt.Sprintf("want a table of strings, key %s is %s", k, tomlType(m[k]))
				}
			}
			return ""
		}
		want = "a table of strings"
	default:
		return ""
	}
	return fmt.Sprintf("want %s, found %s", want, tomlType(v))
}

// envRE matches a reference to an environment variable: ${NAME}, or
// ${NAME:-default}, whose default stands for it when it is unset or empty
// (submatches: the name, ":-" and the default, the default).
var envRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

func hasEnv(s string) bool { return envRE.MatchString(s) }

// withDefaults returns s with each ${NAME:-default} replaced by its
// default, and whether s holds no reference without one (else its value
// depends on a variable, and is not known).
func withDefaults(s string) (string, bool) {
	known := true
	out := envRE.ReplaceAllStringFunc(s, func(ref string) string {
		m := envRE.FindStringSubmatch(ref)
		if m[2] == "" {
			known = false
		}
		return m[3]
	})
	return out, known
}

// checkEnvDefaults reports a ${NAME:-default} in v (a setting's value)
// whose default holds a brace: the reference ends at the first "}", so a
// nested ${OTHER} or a "{...}" in a default would leave a stray "}" after
// the variable's value, or the default cut short, without a word.
func checkEnvDefaults(v any) string {
	switch v := v.(type) {
	case string:
		for _, m := range envRE.FindAllStringSubmatch(v, -1) {
			if m[2] != "" && strings.Contains(m[3], "{") {
				return fmt.Sprintf("the default of ${%s:-...} holds a brace ({ or }), which it cannot: "+
					"a reference ends at the first }, and references do not nest", m[1])
			}
		}
	case []any:
		for _, x := range v {
			if msg := checkEnvDefaults(x); msg != "" {
				return msg
			}
		}
	case map[string]any:
		for _, k := range sortedKeys(v) {
			if msg := checkEnvDefaults(v[k]); msg != "" {
				return msg
			}
		}
	}
	return ""
}

// EnvRefs returns the names of the environment variables the entry's settings
// need (references without a default), sorted, without duplicates.
func (e *Entry) EnvRefs() []string {
	set := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			for _, m := range envRE.FindAllStringSubmatch(v, -1) {
				if m[2] == "" {
					set[m[1]] = true
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(e.Settings)
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Decode checks the entry's settings against dst's schema, expands ${NAME}
// references with getenv (an unset variable is an error) and decodes them
// into dst, a pointer to a settings struct holding the defaults. A nil dst
// accepts no settings.
func (e *Entry) Decode(plugin string, dst any, getenv func(string) (string, bool)) error {
	schema, err := SchemaOf(dst)
	if err != nil {
		return &Error{e.Pos, fmt.Sprintf("plugin %s: %v", plugin, err)}
	}
	if err := e.Check(plugin, schema); err != nil {
		return err
	}
	if dst == nil || len(e.Settings) == 0 {
		return nil
	}
	var errs []error
	expanded := map[string]any{}
	for _, k := range sortedKeys(e.Settings) {
		v, err := expand(e.Settings[k], getenv)
		if err != nil {
			errs = append(errs, &Error{e.KeyPos(k), fmt.Sprintf("plugin %s: setting %s: %v", plugin, k, err)})
			continue
		}
		if f, _ := schema.lookup(k); f.Kind == KindDuration {
			if _, err := time.ParseDuration(v.(string)); err != nil {
				errs = append(errs, &Error{e.KeyPos(k), fmt.Sprintf("plugin %s: setting %s: %q is not a duration such as \"30s\"", plugin, k, v)})
				continue
			}
		}
		expanded[k] = v
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(expanded); err != nil {
		return &Error{e.Pos, fmt.Sprintf("plugin %s: settings: %v", plugin, err)}
	}
	if _, err := toml.NewDecoder(&buf).Decode(dst); err != nil {
		return &Error{e.Pos, fmt.Sprintf("plugin %s: settings: %v", plugin, err)}
	}
	return nil
}

func expand(v any, getenv func(string) (string, bool)) (any, error) {
	switch v := v.(type) {
	case string:
		var missing []string
		out := envRE.ReplaceAllStringFunc(v, func(ref string) string {
			m := envRE.FindStringSubmatch(ref)
			val, ok := getenv(m[1])
			switch {
			case m[2] != "" && val == "":
				return m[3]
			case !ok:
				missing = append(missing, m[1])
			}
			return val
		})
		if len(missing) > 0 {
			return nil, fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			y, err := expand(x, getenv)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			y, err := expand(x, getenv)
			if err != nil {
				return nil, err
			}
			out[k] = y
		}
		return out, nil
	}
	return v, nil
}
