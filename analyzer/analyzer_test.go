package analyzer_test

import (
	"context"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nuvom/nuvom/analyzer"
)

func TestAnalyzeSetupErrors(t *testing.T) {
	noMod := t.TempDir()
	mod := writeModule(t, "", map[string]string{"go.mod": "module example.com/m\n\ngo 1.26\n", "a/a.go": "package a\n"})
	tests := []struct {
		name string
		cfg  analyzer.Config
		want string
	}{
		{"no go.mod", analyzer.Config{Dir: noMod}, "no go.mod found"},
		{"outside", analyzer.Config{Dir: mod, Patterns: []string{"example.org/x"}}, "outside module example.com/m"},
		{"missing folder", analyzer.Config{Dir: mod, Patterns: []string{"./nope"}}, "no such file"},
		{"bare wildcard", analyzer.Config{Dir: mod, Patterns: []string{"..."}}, "use ./..."},
		{"inner wildcard", analyzer.Config{Dir: mod, Patterns: []string{"./a/.../b"}}, "only a trailing /..."},
		{"file not folder", analyzer.Config{Dir: mod, Patterns: []string{"./a/a.go"}}, "is not a folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := analyzer.Analyze(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestAnalyzeNoTasksLoadsNothing(t *testing.T) {
	mod := writeModule(t, "", map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.26\n",
		"a/a.go": "package a\n\n// this would not even compile\nfunc A( {\n",
	})
	res, err := analyzer.Analyze(context.Background(), analyzer.Config{Dir: mod, Env: goEnv()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.PackagesLoaded != 0 || res.Stats.FilesScanned != 1 || len(res.Diagnostics) != 0 || !res.Whole {
		t.Errorf("stats %+v, diagnostics %v, whole %v: want 1 file scanned, nothing loaded", res.Stats, res.Diagnostics, res.Whole)
	}
	if len(res.Covered) != 1 || res.Covered[0] != "a" {
		t.Errorf("covered = %v, want [a]", res.Covered)
	}
}

func TestDiagnosticFormat(t *testing.T) {
	root := filepath.Join(t.TempDir(), "mod")
	tests := []struct {
		d     analyzer.Diagnostic
		relTo string
		want  string
	}{
		{analyzer.Diagnostic{Pos: token.Position{Filename: filepath.Join(root, "images", "a.go"), Line: 12, Column: 3}, Message: "bad"}, root, "images/a.go:12:3: error: bad"},
		{analyzer.Diagnostic{Pos: token.Position{Filename: filepath.Join(root, "a.go"), Line: 2}, Severity: analyzer.Warning, Message: "meh"}, filepath.Join(root, "images"), "../a.go:2: warning: meh"},
		{analyzer.Diagnostic{Pos: token.Position{Filename: filepath.Join(root, "legacy")}, Severity: analyzer.Warning, Message: "skipped"}, root, "legacy: warning: skipped"},
	}
	for _, tt := range tests {
		if got := tt.d.Format(tt.relTo); got != tt.want {
			t.Errorf("Format = %q, want %q", got, tt.want)
		}
	}
	if analyzer.HasErrors([]analyzer.Diagnostic{tests[1].d}) || !analyzer.HasErrors([]analyzer.Diagnostic{tests[1].d, tests[0].d}) {
		t.Error("HasErrors is wrong")
	}
	if analyzer.Error.String() != "error" || analyzer.Warning.String() != "warning" {
		t.Error("Severity.String is wrong")
	}
}
