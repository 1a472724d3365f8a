package codegen

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/runtime/nuvomimpl"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/codegen")

// goldenRoot holds one folder per case: input.json, then either one
// <output path>.golden per generated file or error.golden.
const goldenRoot = "../testdata/codegen"

// caseInput is the format of a case's input.json. Tasks start from
// manifest.DefaultOptions, so a case names only the options it changes, and
// get their signature computed when they have none.
type caseInput struct {
	Packages []struct {
		ImportPath string `json:"import_path"`
		Name       string `json:"name"`
		Dir        string `json:"dir"`
	} `json:"packages"`
	Manifest struct {
		Version  string            `json:"version"`
		Module   string            `json:"module"`
		Registry string            `json:"registry"`
		Tasks    []json.RawMessage `json:"tasks"`
	} `json:"manifest"`
}

// loadCase reads testdata/codegen/<name>/input.json.
func loadCase(t testing.TB, dir string) Input {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "input.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ci caseInput
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ci); err != nil {
		t.Fatalf("%s/input.json: %v", dir, err)
	}
	m := &manifest.Manifest{Version: ci.Manifest.Version, Module: ci.Manifest.Module, Registry: ci.Manifest.Registry, Tasks: []manifest.Task{}}
	if m.Version == "" {
		m.Version = manifest.Version
	}
	for i, raw := range ci.Manifest.Tasks {
		task := manifest.Task{Options: manifest.DefaultOptions()}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&task); err != nil {
			t.Fatalf("%s/input.json: task %d: %v", dir, i, err)
		}
		if task.Signature == "" && wellFormed(&task) {
			task.Signature = task.ComputeSignature()
		}
		m.Tasks = append(m.Tasks, task)
	}
	in := Input{Manifest: m}
	for _, p := range ci.Packages {
		in.Packages = append(in.Packages, Package{ImportPath: p.ImportPath, Name: p.Name, Dir: p.Dir})
	}
	return in
}

// goldenFiles returns the case's golden files, keyed by output path.
func goldenFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".golden") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[strings.TrimSuffix(filepath.ToSlash(rel), ".golden")] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// caseOutput is what Generate gives for a case: its files, or error.golden
// holding the error text.
func caseOutput(in Input) map[string][]byte {
	files, err := Generate(in)
	if err != nil {
		return map[string][]byte{"error": []byte(err.Error() + "\n")}
	}
	return files
}

func caseNames(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(goldenRoot)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatal("no golden cases")
	}
	return names
}

func TestGolden(t *testing.T) {
	for _, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(goldenRoot, name)
			got := caseOutput(loadCase(t, dir))
			if *update {
				for old := range goldenFiles(t, dir) {
					if err := os.Remove(filepath.Join(dir, filepath.FromSlash(old)+".golden")); err != nil {
						t.Fatal(err)
					}
				}
				for p, data := range got {
					file := filepath.Join(dir, filepath.FromSlash(p)+".golden")
					if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(file, data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return
			}
			want := goldenFiles(t, dir)
			if diff := cmp.Diff(stringify(want), stringify(got)); diff != "" {
				t.Errorf("output differs from %s (-golden +got; run go test ./codegen -update):\n%s", dir, diff)
			}
			for p, data := range got {
				if p == "error" {
					continue
				}
				if !IsGenerated(data) || !bytes.HasPrefix(data, []byte(Header+"\n")) {
					t.Errorf("%s does not start with the generated-code header", p)
				}
				if bytes.Contains(data, []byte(`"reflect"`)) {
					t.Errorf("%s imports reflect", p)
				}
			}
		})
	}
}

func stringify(m map[string][]byte) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	for _, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			in := loadCase(t, filepath.Join(goldenRoot, name))
			first := caseOutput(in)
			for i := 0; i < 5; i++ {
				// Shuffle the inputs' order: output must not depend on it.
				in.Manifest.Tasks = rotate(in.Manifest.Tasks)
				in.Packages = rotate(in.Packages)
				if diff := cmp.Diff(stringify(first), stringify(caseOutput(in))); diff != "" {
					t.Fatalf("run %d differs:\n%s", i+2, diff)
				}
			}
		})
	}
}

func rotate[T any](s []T) []T {
	if len(s) < 2 {
		return s
	}
	return append(append([]T(nil), s[1:]...), s[0])
}

func TestGenerateErrorsNameTasks(t *testing.T) {
	in := loadCase(t, filepath.Join(goldenRoot, "errors"))
	_, err := Generate(in)
	if err == nil {
		t.Fatal("Generate succeeded on a bad manifest")
	}
	var te *TaskError
	if !errors.As(err, &te) || te.Task == "" {
		t.Fatalf("error %v holds no *TaskError", err)
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok || len(joined.Unwrap()) < 2 {
		t.Fatalf("want every problem reported, got %v", err)
	}
	for _, e := range joined.Unwrap() {
		if !strings.Contains(e.Error(), "task ") && !strings.HasPrefix(e.Error(), "codegen: ") {
			t.Errorf("error %q names neither a task nor codegen", e)
		}
	}
}

func TestGenerateNilManifest(t *testing.T) {
	if _, err := Generate(Input{}); err == nil {
		t.Fatal("Generate without a manifest succeeded")
	}
}

func TestIsGenerated(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{Header + "\n\npackage x\n", true},
		{"// Code generated by stringer -type=Pill; DO NOT EDIT.\npackage x\n", true},
		{"\ufeff" + Header + "\r\npackage x\r\n", true},
		{"//go:build linux\n\n" + Header + "\n\npackage x\n", true},
		{"package x\n\n" + Header + "\n", false},
		{"// Code generated by hand, but edit freely.\npackage x\n", false},
		{"// code generated by nuvomgen. DO NOT EDIT.\npackage x\n", false},
		{"", false},
	} {
		if got := IsGenerated([]byte(tc.src)); got != tc.want {
			t.Errorf("IsGenerated(%q) = %v, want %v", tc.src, got, tc.want)
		}
	}
}

func TestDefaultAlias(t *testing.T) {
	for path, want := range map[string]string{
		"example.com/shop/images":        "images",
		"example.com/shop/v2":            "shop",
		"gopkg.in/yaml.v3":               "yaml",
		"github.com/go-redis/redis/v9":   "redis",
		"example.com/go-thing":           "thing",
		"example.com/my_pkg":             "mypkg",
		"example.com/123":                "pkg",
		"example.com/Upper-Case.Name.v1": "uppercasename",
	} {
		if got := defaultAlias(path); got != want {
			t.Errorf("defaultAlias(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestSummaryAndDurations(t *testing.T) {
	for doc, want := range map[string]string{
		"": "",
		"Resize makes a thumbnail.\n\nMore text.": "Resize makes a thumbnail.",
		"Resize makes\na thumbnail. Then more.":   "Resize makes a thumbnail.",
		"no period":                               "no period.",
	} {
		if got := summary(doc); got != want {
			t.Errorf("summary(%q) = %q, want %q", doc, got, want)
		}
	}
}

// wellFormed reports whether ComputeSignature can hash t's types.
func wellFormed(t *manifest.Task) bool {
	for i := range t.Params {
		if checkType(&t.Params[i].Type, t.Package, 0) != nil {
			return false
		}
	}
	return t.Result == nil || checkType(t.Result, t.Package, 0) == nil
}

func TestCanImport(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     bool
	}{
		{"example.com/m/nuvomtasks", "example.com/m/internal/jobs", true},
		{"example.com/m/nuvomtasks", "example.com/m/a/internal/jobs", false},
		{"example.com/m/a/nuvomtasks", "example.com/m/a/internal/jobs", true},
		{"example.com/m/nuvomtasks", "example.com/m/internal", true},
		{"example.com/m/nuvomtasks", "example.com/m/images", true},
	} {
		if got := canImport(tc.from, tc.to); got != tc.want {
			t.Errorf("canImport(%q, %q) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestRegistryDir(t *testing.T) {
	for dir, want := range map[string]string{
		"":                  "nuvomtasks",
		"nuvomtasks":        "nuvomtasks",
		"internal/gen/jobs": "jobs",
		"gen/./tasks/":      "tasks",
		".":                 "",
		"../tasks":          "",
		"/abs/tasks":        "",
		"cmd/main":          "",
		"gen/nuvom-tasks":   "",
		`gen\tasks`:         "",
	} {
		_, name, err := registryDir(dir)
		if name != want || (err != nil) != (want == "") {
			t.Errorf("registryDir(%q) = %q, %v; want %q", dir, name, err, want)
		}
	}
}

func TestAssignAliases(t *testing.T) {
	got := assignAliases(
		[]string{"context", "example.com/a/images", "example.com/b/images", "example.com/err", "example.com/x/thing"},
		map[string]string{"context": "context"},
		map[string]bool{"thing": true})
	want := map[string]string{"context": "context", "example.com/a/images": "images", "example.com/b/images": "images1",
		"example.com/err": "err1", "example.com/x/thing": "thing1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("aliases (-want +got):\n%s", diff)
	}
}

func TestStubNames(t *testing.T) {
	want := []string{"ResizeTask", "ResizeTaskHandle", "encodeResizeArgs", "invokeResize"}
	for _, fn := range []string{"Resize", "resize"} {
		if diff := cmp.Diff(want, StubNames(fn)); diff != "" {
			t.Errorf("StubNames(%q) (-want +got):\n%s", fn, diff)
		}
	}
}

// Generated code asks for the support version this runtime provides.
func TestSupportVersionMatchesTheRuntime(t *testing.T) {
	if SupportVersion != nuvomimpl.Version {
		t.Fatalf("codegen.SupportVersion = %d, runtime/nuvomimpl.Version = %d", SupportVersion, nuvomimpl.Version)
	}
}
