package analyzer_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/nuvom/nuvom/internal/testmod"
)

// repoRoot is the absolute folder of the nuvom module (the parent of this package).
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Dir(filepath.Dir(file))
}

// goEnv is the go command's environment for temp modules (see testmod.GoEnv).
func goEnv() []string {
	env, err := testmod.GoEnv()
	if err != nil {
		panic(err) // only in tests: the go command itself is missing
	}
	return append(os.Environ(), env...)
}

// writeModule writes files (path -> content) into a new temp folder. When the
// go.mod requires github.com/nuvom/nuvom, a replace to this repository is
// appended and the repository's go.sum copied, so the module can import the
// runtime without a network.
func writeModule(t testing.TB, dir string, files map[string]string) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if strings.HasSuffix(name, "go.mod") && strings.Contains(content, "github.com/nuvom/nuvom ") {
			root := repoRoot(t)
			content += "\nreplace github.com/nuvom/nuvom => " + filepath.ToSlash(root) + "\n"
			sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
			if err != nil {
				t.Fatal(err)
			}
			files[filepath.Join(filepath.Dir(name), "go.sum")] = string(sum)
		}
		files[name] = content
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeArchive writes a txtar archive as a temp module.
func writeArchive(t testing.TB, ar *txtar.Archive) string {
	t.Helper()
	files := map[string]string{}
	for _, f := range ar.Files {
		files[f.Name] = string(f.Data)
	}
	return writeModule(t, "", files)
}
