package pluginconf

import (
	"strings"
	"testing"
	"time"
)

type testSettings struct {
	Addr    string            `toml:"addr"`
	Refresh time.Duration     `toml:"refresh"`
	Only    bool              `toml:"only_failures"`
	Limit   int               `toml:"limit"`
	Tags    []string          `toml:"tags"`
	Headers map[string]string `toml:"headers"`
}

const good = `# plugins
[[plugin]]
name = "prometheus"
[plugin.settings]
addr = "127.0.0.1:9464"

[[plugin]]
import = "github.com/acme/nuvom-slack"
[plugin.settings]
addr = "${HOST}:${PORT}"
refresh = "1m"
only_failures = true
limit = 3
tags = ["a", "b"]
headers = { X = "${PORT}" }
`

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseAndDecode(t *testing.T) {
	f, err := Parse(FileName, []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 2 {
		t.Fatalf("entries = %d", len(f.Entries))
	}
	e0, e1 := f.Entries[0], f.Entries[1]
	if e0.Name != "prometheus" || !e0.Builtin || e0.Import != "github.com/nuvom/nuvom/runtime/plugins/prometheus" || e0.Pos.Line != 2 {
		t.Errorf("entry 0 = %+v", e0)
	}
	if e1.Name != "nuvom-slack" || e1.Builtin || e1.Pos.Line != 7 {
		t.Errorf("entry 1 = %+v", e1)
	}
	if got := e1.KeyPos("limit"); got.Line != 13 || got.Col != 1 {
		t.Errorf("limit pos = %v", got)
	}
	if got := strings.Join(e1.EnvRefs(), ","); got != "HOST,PORT" {
		t.Errorf("env refs = %s", got)
	}
	s := &testSettings{Refresh: time.Second}
	if err := e1.Decode("slack", s, env(map[string]string{"HOST": "h", "PORT": "1"})); err != nil {
		t.Fatal(err)
	}
	if s.Addr != "h:1" || s.Refresh != time.Minute || !s.Only || s.Limit != 3 || len(s.Tags) != 2 || s.Headers["X"] != "1" {
		t.Errorf("decoded %+v", s)
	}
	// An unset variable is an error at its key, at decode (worker start) time only.
	err = e1.Decode("slack", &testSettings{}, env(map[string]string{"HOST": "h"}))
	if err == nil || !strings.HasPrefix(err.Error(), ".nuvom_plugins.toml:10:1: plugin slack: setting addr: environment variable PORT is not set\n") {
		t.Errorf("unset env: %v", err)
	}
}

func TestErrorsArePositioned(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"syntax", "[[plugin]\nname = 1", ".nuvom_plugins.toml:1:9: expected end of table array name delimiter"},
		{"unclosed table", "[[plugin]]\nname = \"prometheus\"\n[plugin.settings\naddr = \"x\"\n", ".nuvom_plugins.toml:3:17: "},
		{"duplicate key", "[[plugin]]\nname = \"prometheus\"\n  name = \"otel\"\n", ".nuvom_plugins.toml:3:3: Key 'plugin.name' has already been defined"},
		{"bad value", "[[plugin]]\nname = \"prometheus\"\n[plugin.settings]\naddr = \n", ".nuvom_plugins.toml:4:8: expected value"},
		{"top key", "x = 1\n", `.nuvom_plugins.toml:1:1: unknown key "x"`},
		{"plugin key", "[[plugin]]\nname = \"prometheus\"\n  nmae = \"x\"\n", `.nuvom_plugins.toml:3:3: unknown key "nmae" in [[plugin]]`},
		{"no name", "[[plugin]]\n[plugin.settings]\na = 1\n", ".nuvom_plugins.toml:1:1: plugin needs a name"},
		{"unknown builtin", "[[plugin]]\nname = \"prom\"\n", `.nuvom_plugins.toml:2:1: unknown built-in plugin "prom"`},
		{"dup", "[[plugin]]\nname = \"prometheus\"\n[[plugin]]\nname = \"prometheus\"\n", `.nuvom_plugins.toml:3:1: duplicate plugin name "prometheus" (first at .nuvom_plugins.toml:1:1)`},
		{"bad import", "[[plugin]]\nimport = \"../x\"\n", `.nuvom_plugins.toml:2:1: import "../x" is not a Go import path`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(FileName, []byte(c.src))
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("err = %v, want prefix %q", err, c.want)
			}
		})
	}
}

func TestCheckSettings(t *testing.T) {
	src := "[[plugin]]\nname = \"prometheus\"\n[plugin.settings]\naddr = 9464\nrefresh = \"soon\"\nbogus = true\ntags = [1]\n"
	f, err := Parse(FileName, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := SchemaOf(&testSettings{})
	if err != nil {
		t.Fatal(err)
	}
	err = f.Entries[0].Check("prometheus", schema)
	want := `.nuvom_plugins.toml:4:1: plugin prometheus: setting addr: want a string, found an integer
.nuvom_plugins.toml:5:1: plugin prometheus: setting refresh: "soon" is not a duration such as "30s"
.nuvom_plugins.toml:6:1: plugin prometheus: unknown setting "bogus" (known: addr, refresh, only_failures, limit, tags, headers)
.nuvom_plugins.toml:7:1: plugin prometheus: setting tags: want an array of strings, found an element that is an integer`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	if err := f.Entries[0].Check("x", nil); err == nil || !strings.Contains(err.Error(), "it takes no settings") {
		t.Errorf("nil schema: %v", err)
	}
}

// Settings written as an inline table are positioned at their keys, and a
// ${NAME} reference at the key that holds it.
func TestInlineSettingsArePositioned(t *testing.T) {
	src := "[[plugin]]\nname = \"prometheus\"\nsettings = { addr = 9464, refresh = \"soon\" }\n\n[[plugin]]\nname = \"otel\"\n[plugin.settings]\ntracer = \"t\"\nparent = \"${PARENT}\"\n"
	f, err := Parse(FileName, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := SchemaOf(&testSettings{})
	if err != nil {
		t.Fatal(err)
	}
	err = f.Entries[0].Check("prometheus", schema)
	want := `.nuvom_plugins.toml:3:14: plugin prometheus: setting addr: want a string, found an integer
.nuvom_plugins.toml:3:27: plugin prometheus: setting refresh: "soon" is not a duration such as "30s"`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	if got := f.Entries[0].KeyPos("nokey"); got.Line != 3 {
		t.Errorf("position of a key not found in an inline table = %v, want line 3 (the settings key)", got)
	}
	if got := f.Entries[1].EnvRefPos("PARENT"); got.Line != 9 || got.Col != 1 {
		t.Errorf("position of ${PARENT} = %v, want 9:1", got)
	}
}

// A constructor's error is positioned at the setting it starts with.
func TestBlamePos(t *testing.T) {
	f, err := Parse(FileName, []byte("[[plugin]]\nimport = \"example.com/hook\"\n[plugin.settings]\nurl = \"ftp://x\"\n  timeout = \"-1s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := f.Entries[0]
	for msg, want := range map[string]string{
		`plugin hook: setting url "ftp://x": want an http:// or https:// URL`: ".nuvom_plugins.toml:4:1",
		`setting timeout -1s: want a positive duration`:                       ".nuvom_plugins.toml:5:3",
		`timeout: bad`:    ".nuvom_plugins.toml:5:3",
		`started twice`:   ".nuvom_plugins.toml:1:1",
		`retries is high`: ".nuvom_plugins.toml:1:1", // not a key of the file
	} {
		if got := e.BlamePos(msg).String(); got != want {
			t.Errorf("BlamePos(%q) = %s, want %s", msg, got, want)
		}
	}
}

// TestEnvDefault: ${NAME:-default} stands for the default when NAME is unset
// or empty, for NAME's value otherwise, and is not a variable the entry
// needs (EnvRefs).
func TestEnvDefault(t *testing.T) {
	src := "[[plugin]]\nimport = \"github.com/acme/nuvom-slack\"\n[plugin.settings]\n" +
		"addr = \"${HOST:-127.0.0.1}:${PORT:-9464}\"\nrefresh = \"${EVERY:-}1m\"\ntags = [\"${TAG}\"]\n"
	f, err := Parse(FileName, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	e := f.Entries[0]
	if got := strings.Join(e.EnvRefs(), ","); got != "TAG" {
		t.Errorf("env refs = %q, want TAG (the others have defaults)", got)
	}
	for _, c := range []struct {
		env  map[string]string
		addr string
	}{
		{map[string]string{"TAG": "t"}, "127.0.0.1:9464"},
		{map[string]string{"TAG": "t", "HOST": "", "PORT": "9465"}, "127.0.0.1:9465"},
		{map[string]string{"TAG": "t", "HOST": "h"}, "h:9464"},
	} {
		s := &testSettings{}
		if err := e.Decode("slack", s, env(c.env)); err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		if s.Addr != c.addr || s.Refresh != time.Minute || s.Tags[0] != "t" {
			t.Errorf("%v: decoded %+v, want addr %s", c.env, s, c.addr)
		}
	}
	if err := e.Decode("slack", &testSettings{}, env(nil)); err == nil || !strings.Contains(err.Error(), "environment variable TAG is not set") {
		t.Errorf("TAG unset: %v", err)
	}
}

// TestEnvDefaultWithBraces: a default holding a brace (a nested
// ${OTHER} reference, shell-style, or a literal "{...}") cannot be what
// it says: the reference ends at the default's first "}", so the value
// would be wrong both when the variable is set (a stray "}" after it) and
// when it is not ("${OTHER}" verbatim). Such a setting is refused, naming
// the key, instead of reaching the plugin silently wrong.
func TestEnvDefaultWithBraces(t *testing.T) {
	for _, v := range []string{"${HOST:-${FALLBACK}}", "${HOST:-${FALLBACK:-h}}", "${FMT:-{json}}"} {
		src := "[[plugin]]\nimport = \"github.com/acme/nuvom-slack\"\n[plugin.settings]\naddr = \"" + v + "\"\n"
		f, err := Parse(FileName, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		e := f.Entries[0]
		for _, envs := range []map[string]string{nil, {"HOST": "h", "FMT": "f", "FALLBACK": "b"}} {
			s := &testSettings{}
			err := e.Decode("slack", s, env(envs))
			if err == nil || !strings.Contains(err.Error(), "setting addr") || !strings.Contains(err.Error(), "brace") {
				t.Errorf("addr = %s with env %v: decoded %q (err %v), want it refused naming the setting and the brace", v, envs, s.Addr, err)
			}
		}
	}
}

// TestCheckDurationDefault: a duration setting whose value, with its
// variables unset, is known (every reference has a default) is checked
// when the file is (code generation, nuvom plugins check) as a literal is,
// not first by a worker started without the variable; one that needs a
// variable is not.
func TestCheckDurationDefault(t *testing.T) {
	schema, err := SchemaOf(&testSettings{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(v string) error {
		src := "[[plugin]]\nimport = \"github.com/acme/nuvom-slack\"\n[plugin.settings]\nrefresh = \"" + v + "\"\n"
		f, err := Parse(FileName, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return f.Entries[0].Check("slack", schema)
	}
	for _, v := range []string{"${EVERY:-30}", "${EVERY:-soon}", "${EVERY:-}"} {
		if err := check(v); err == nil || !strings.Contains(err.Error(), "setting refresh") || !strings.Contains(err.Error(), "not a duration") {
			t.Errorf("refresh = %s: Check = %v, want the default refused as not a duration", v, err)
		}
	}
	for _, v := range []string{"${EVERY:-30s}", "${N:-30}s", "${EVERY}", "${EVERY:-}1m", "${N}${UNIT:-x}"} {
		if err := check(v); err != nil {
			t.Errorf("refresh = %s: Check = %v, want it accepted", v, err)
		}
	}
}
