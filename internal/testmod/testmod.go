// Package testmod prepares temporary Go modules that depend on this checkout of
// Nuvom, for testscript scripts and other end-to-end tests: the module
// requires github.com/nuvom/nuvom and replaces it with the checkout.
package testmod

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// ModulePath is Nuvom's module path.
const ModulePath = "github.com/nuvom/nuvom"

// RepoRoot returns the root of this checkout, found from dir upward.
func RepoRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module "+ModulePath+"\n")) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod of %s above %s", ModulePath, dir)
		}
		d = parent
	}
}

// GoEnv returns the environment a temporary module builds with: the caller's
// module and build caches, the environment's module proxy (a fresh machine's
// cache lacks some go.mod files of the dependency graph that go mod tidy
// reads), no checksum database (temporary modules are never published), and
// go.mod updates allowed.
func GoEnv() ([]string, error) {
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %w", err)
	}
	vals := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(vals) != 3 {
		return nil, errors.New("go env: unexpected output")
	}
	return []string{
		"GOCACHE=" + vals[0],
		"GOMODCACHE=" + vals[1],
		"GOPATH=" + vals[2],
		"GOSUMDB=off",
		"GOFLAGS=-mod=mod",
		"GOWORK=off",
		"GOTOOLCHAIN=local",
		"CGO_ENABLED=0",
	}, nil
}

// Link makes the module in dir depend on the checkout at repo: it adds the
// require and replace lines to dir/go.mod (when it has none yet) and the
// checkout's go.sum lines to dir/go.sum.
func Link(dir, repo string) error {
	modPath := filepath.Join(dir, "go.mod")
	mod, err := os.ReadFile(modPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil // a script without a module (for example the "no go.mod" case)
	}
	if err != nil {
		return err
	}
	if !bytes.Contains(mod, []byte("replace "+ModulePath)) {
		extra := fmt.Sprintf("\nreplace %s => %s\n", ModulePath, filepath.ToSlash(repo))
		if !bytes.Contains(mod, []byte("require "+ModulePath)) {
			extra = fmt.Sprintf("\nrequire %s v0.0.0\n", ModulePath) + extra
		}
		if err := os.WriteFile(modPath, append(mod, extra...), 0o644); err != nil {
			return err
		}
	}
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		return err
	}
	old, _ := os.ReadFile(filepath.Join(dir, "go.sum"))
	return os.WriteFile(filepath.Join(dir, "go.sum"), append(old, sum...), 0o644)
}

// Setup returns a testscript Setup function that links $WORK's module to the
// checkout above pkgDir and sets the offline Go environment. It also sets
// $REPO to the checkout's root.
func Setup(pkgDir string) (func(*testscript.Env) error, error) {
	repo, err := RepoRoot(pkgDir)
	if err != nil {
		return nil, err
	}
	env, err := GoEnv()
	if err != nil {
		return nil, err
	}
	return func(e *testscript.Env) error {
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			e.Setenv(k, v)
		}
		e.Setenv("REPO", repo)
		return Link(e.WorkDir, repo)
	}, nil
}
