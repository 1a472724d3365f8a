package nuvom_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/imports"

	"github.com/nuvom/nuvom/internal/testmod"
)

// A new module that writes nuvom.NewClient(...) gets the import added by
// goimports, with no alias: the user API is the package named nuvom at the
// module root.
func TestGoimportsAddsTheImportWithoutAlias(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command in a temp module")
	}
	repo, err := testmod.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	env, err := testmod.GoEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	mod := t.TempDir()
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/newapp\n\ngo 1.26.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := testmod.Link(mod, repo); err != nil {
		t.Fatal(err)
	}
	src := `package main

func main() {
	client := nuvom.NewClient(nil)
	_ = client
}
`
	file := filepath.Join(mod, "main.go")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(mod)
	out, err := imports.Process(file, nil, nil)
	if err != nil {
		t.Fatalf("goimports: %v", err)
	}
	if !strings.Contains(string(out), "import \"github.com/nuvom/nuvom\"\n") {
		t.Fatalf("goimports did not add the plain import:\n%s", out)
	}
}
