package main

import (
	"archive/zip"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/nuvom/nuvom/internal/testmod"
)

// TestInstallFromAProxy follows the README's setup as a user gets the module:
// from a module proxy (a file:// GOPROXY holding this checkout as a version),
// not through a replace directive, and with the go command's default
// -mod=readonly. go get, go get -tool, go generate, then go build of
// everything, the generated worker included, must work with nothing more.
func TestInstallFromAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module from a file:// proxy")
	}
	repo, err := testmod.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	const version = "v0.99.0"
	proxy := t.TempDir()
	writeProxy(t, proxy, repo, version)

	env, err := testmod.GoEnv()
	if err != nil {
		t.Fatal(err)
	}
	// A module cache of its own, so that this checkout's zip never lands in the
	// shared one; the shared cache's downloads serve every other module offline.
	upstream := strings.TrimSpace(goEnv(t, "GOPROXY"))
	shared := strings.TrimSpace(goEnv(t, "GOMODCACHE"))
	modcache := filepath.Join(t.TempDir(), "modcache")
	var cleanEnv []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GOFLAGS=") && !strings.HasPrefix(kv, "GOMODCACHE=") {
			cleanEnv = append(cleanEnv, kv)
		}
	}
	cleanEnv = append(cleanEnv, "GOFLAGS=", "GOMODCACHE="+modcache, "GONOSUMDB=github.com/nuvom/nuvom",
		"GOPROXY=file://"+filepath.ToSlash(proxy)+",file://"+filepath.ToSlash(filepath.Join(shared, "cache", "download"))+","+upstream)
	t.Cleanup(func() { // module caches are read-only: only go clean removes them
		cmd := exec.Command("go", "clean", "-modcache")
		cmd.Env = append(os.Environ(), "GOMODCACHE="+modcache)
		_ = cmd.Run()
	})

	mod := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), cleanEnv...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("mod", "init", "example.com/newapp")
	run("get", "github.com/nuvom/nuvom@"+version)
	run("get", "-tool", "github.com/nuvom/nuvom/cmd/nuvomgen", "github.com/nuvom/nuvom/cmd/nuvom")
	if err := os.WriteFile(filepath.Join(mod, "gen.go"), []byte("// Package app is a new user's module.\npackage app\n\n//go:generate go tool nuvomgen ./...\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(mod, "mail"), 0o755); err != nil {
		t.Fatal(err)
	}
	task := `// Package mail sends mail.
package mail

import "context"

// Send sends a message.
//
//nuvom:task retries=2
func Send(ctx context.Context, to string) error { return nil }
`
	if err := os.WriteFile(filepath.Join(mod, "mail", "mail.go"), []byte(task), 0o644); err != nil {
		t.Fatal(err)
	}
	run("generate", "./...")
	run("build", "./...")
	run("vet", "./...")
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// writeProxy lays out a file:// module proxy holding the checkout at repo as
// github.com/nuvom/nuvom@version.
func writeProxy(t *testing.T, proxy, repo, version string) {
	t.Helper()
	dir := filepath.Join(proxy, "github.com", "nuvom", "nuvom", "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var zipped bytes.Buffer
	mv := module.Version{Path: testmod.ModulePath, Version: version}
	if err := modzip.CreateFromDir(&zipped, mv, repo); err != nil {
		t.Fatalf("zip the checkout: %v", err)
	}
	if _, err := zip.NewReader(bytes.NewReader(zipped.Bytes()), int64(zipped.Len())); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"list":            []byte(version + "\n"),
		version + ".info": []byte(`{"Version":"` + version + `","Time":"2026-11-27T00:00:00Z"}`),
		version + ".mod":  gomod,
		version + ".zip":  zipped.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
