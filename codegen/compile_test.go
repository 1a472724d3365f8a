package codegen

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nuvom/nuvom/internal/testmod"
)

// TestGeneratedCodeCompiles writes the roundtrip case's generated files next
// to its hand-written task sources (testdata/codegen/roundtrip/src) in a temp
// module that replaces github.com/nuvom/nuvom with this repo, then runs go vet,
// the round-trip test of that module (every kind through Delay, the registry's
// Invoke and Pending.Wait), and checks that wrong-typed Delay calls and a
// drifted task signature fail to build.
func TestGeneratedCodeCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a temp module")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	caseDir := filepath.Join(goldenRoot, "roundtrip")
	files, err := Generate(loadCase(t, caseDir))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	copyTree(t, filepath.Join(caseDir, "src"), mod)
	for p, data := range files {
		writeFile(t, filepath.Join(mod, filepath.FromSlash(p)), string(data))
	}
	writeFile(t, filepath.Join(mod, "go.mod"), "module example.com/shop\n\ngo 1.26.0\n\n"+
		"require github.com/nuvom/nuvom v0.0.0\n\nreplace github.com/nuvom/nuvom => "+filepath.ToSlash(repo)+"\n")
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mod, "go.sum"), string(sum))

	env, err := testmod.GoEnv()
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(goBin, args...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// The package list comes from stdout alone: on a cold module cache the go
	// command also reports its downloads, on stderr.
	listCmd := exec.Command(goBin, "list", "./...")
	listCmd.Dir = mod
	listCmd.Env = append(os.Environ(), env...)
	var listErr strings.Builder
	listCmd.Stderr = &listErr
	listOut, err := listCmd.Output()
	if err != nil {
		t.Fatalf("go list in the temp module failed: %v\n%s", err, listErr.String())
	}
	list := string(listOut)
	var pkgs []string
	worker := "example.com/shop/nuvomtasks/worker"
	for _, p := range strings.Fields(list) {
		if p != worker {
			pkgs = append(pkgs, p)
		}
	}
	if out, err := run(append([]string{"vet"}, pkgs...)...); err != nil {
		t.Fatalf("go vet of the generated code failed: %v\n%s", err, out)
	}
	if hasGoFiles(filepath.Join(repo, "runtime", "workercmd")) {
		if out, err := run("vet", worker); err != nil {
			t.Errorf("go vet of the generated worker main failed: %v\n%s", err, out)
		}
	} else {
		t.Log("runtime/workercmd does not exist yet: not vetting the worker main")
	}
	if out, err := run("test", "-count=1", "./nuvomtasks"); err != nil {
		t.Fatalf("round-trip test in the temp module failed: %v\n%s", err, out)
	}

	writeFile(t, filepath.Join(mod, "badcall", "badcall.go"), `package badcall

import (
	"context"

	"example.com/shop/images"
	"github.com/nuvom/nuvom"
)

func swapped(ctx context.Context, c *nuvom.Client) {
	images.ResizeTask.Delay(ctx, c, 128, "a.png")
}

func missing(ctx context.Context, c *nuvom.Client) {
	images.ResizeTask.Delay(ctx, c, "a.png")
}

func wrongResult(ctx context.Context, c *nuvom.Client) {
	p, _ := images.ResizeTask.Delay(ctx, c, "a.png", 1)
	var s string
	s, _ = p.Wait(ctx)
	_ = s
}
`)
	out, err := run("build", "./badcall")
	if err == nil {
		t.Fatal("wrong-typed Delay calls compiled")
	}
	for _, want := range []string{"badcall.go:11", "cannot use 128", "badcall.go:15", "not enough arguments", "badcall.go:21"} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}

	src := filepath.Join(mod, "images", "images.go")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	drifted := strings.Replace(string(data), "width int) (Thumb, error) {\n\treturn Thumb{Path: src + \".thumb\", Width: width}",
		"width int64) (Thumb, error) {\n\treturn Thumb{Path: src + \".thumb\", Width: int(width)}", 1)
	if drifted == string(data) {
		t.Fatal("could not edit Resize's signature")
	}
	writeFile(t, src, drifted)
	out, err = run("build", "./images")
	if err == nil {
		t.Fatal("a drifted task signature compiled")
	}
	if !strings.Contains(out, "nuvom_gen.go") || !strings.Contains(out, "Resize") {
		t.Errorf("drift error does not point at the guard:\n%s", out)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		writeFile(t, filepath.Join(to, rel), string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func hasGoFiles(dir string) bool {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	return len(matches) > 0
}
