//go:build unix

package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/config"
)

// TestReadCommandsOnReadOnlyStore: history, queue stats, status and inspect
// only read, so they work on a .nuvom/ the user cannot write (a service
// user's folder, a read-only mount) instead of failing with "attempt to write
// a readonly database". As root, whom permissions do not stop, the commands
// run as nobody.
func TestReadCommandsOnReadOnlyStore(t *testing.T) {
	root := t.TempDir()
	mod := filepath.Join(root, "app")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/app\n\ngo 1.26.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(mod, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := cfg.OpenClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Enqueue(ctx, nuvom.TaskSpec{Name: "shop.Ping", Signature: "s", Options: nuvom.TaskOptions{Queue: "default"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(mod, ".nuvom")
	if err := os.Chmod(cfg.DB.Value, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(store, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(store, 0o755) })

	// This test binary runs as nuvom (see TestMain) when named so.
	bin := filepath.Join(root, "bin", "nuvom")
	copyFile(t, bin)
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		for d := mod; ; d = filepath.Dir(d) { // nobody must reach the module
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if d == filepath.Dir(root) {
				break
			}
		}
		if err := os.Chmod(store, 0o555); err != nil {
			t.Fatal(err)
		}
	}
	nuvomCmd := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = mod
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root}
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := nuvomCmd("version"); err != nil {
		t.Skipf("cannot run nuvom as another user here: %v %s", err, out)
	}
	for _, args := range [][]string{
		{"history"}, {"history", "--json"}, {"queue", "stats"}, {"status", res.ID}, {"inspect", "job", res.ID},
	} {
		out, err := nuvomCmd(args...)
		if err != nil || !strings.Contains(out, "queued") && !strings.Contains(out, "default") {
			t.Errorf("nuvom %s on a read-only store: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	entries, err := os.ReadDir(store)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("the store holds %d files after read commands, want the database alone", len(entries))
	}
	// Writes still need a writable store, and say so.
	if out, err := nuvomCmd("cancel", res.ID); err == nil {
		t.Errorf("cancel on a read-only store succeeded:\n%s", out)
	}
}

// copyFile copies this test binary to dst, executable by everyone.
func copyFile(t *testing.T, dst string) {
	t.Helper()
	src, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
