package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nuvom/nuvom/internal/testmod"
)

var update = flag.Bool("update", false, "rewrite the golden files that scripts compare with cmp")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"nuvom": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)) },
	})
}

// TestScripts runs testdata/script/nuvom/*.txtar, each in a temporary module
// that depends on this checkout: go generate, go build and nuvom for real.
func TestScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("script tests build Go code; skipped in -short mode")
	}
	setup, err := testmod.Setup(".")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("..", "..", "testdata", "script", "nuvom"),
		Setup:               setup,
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"status":   cmdExitStatus,
			"json":     cmdJSON,
			"capture":  cmdCapture,
			"sleep":    cmdSleep,
			"freeport": cmdFreePort,
			"get":      cmdGet,
			"waitglob": cmdWaitGlob,
			"globs":    cmdGlobs,
		},
	})
}

// status N PROG ARGS...: run PROG and require exit status N exactly (keeping
// its stdout and stderr for later checks).
func cmdExitStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("status: %q is not a number", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		got = exit.ExitCode()
	case err != nil:
		ts.Fatalf("status: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// json PATH OP VALUE: parse the last command's stdout as JSON and check the
// value at PATH (for example .[0].name or .settings.1.source; "len" after a
// path gives an array's length). OP is == (compared as text), != or > and >=
// (compared as numbers).
func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: json PATH OP VALUE")
	}
	var v any
	if err := json.Unmarshal([]byte(ts.ReadFile("stdout")), &v); err != nil {
		ts.Fatalf("json: stdout is not JSON: %v", err)
	}
	for _, part := range strings.Split(strings.Trim(args[0], "."), ".") {
		if part == "" {
			continue
		}
		if part == "len" {
			arr, ok := v.([]any)
			if !ok {
				ts.Fatalf("json: %s: len of a non-array", args[0])
			}
			v = float64(len(arr))
			continue
		}
		switch cur := v.(type) {
		case map[string]any:
			next, ok := cur[part]
			if !ok {
				ts.Fatalf("json: %s: no key %q", args[0], part)
			}
			v = next
		case []any:
			i, err := strconv.Atoi(strings.Trim(part, "[]"))
			if err != nil || i < 0 || i >= len(cur) {
				ts.Fatalf("json: %s: bad index %q for an array of %d", args[0], part, len(cur))
			}
			v = cur[i]
		default:
			ts.Fatalf("json: %s: cannot index %T with %q", args[0], v, part)
		}
	}
	got := fmt.Sprint(v)
	var ok bool
	switch args[1] {
	case "==":
		ok = got == args[2]
	case "!=":
		ok = got != args[2]
	case ">", ">=":
		n, isNum := v.(float64)
		want, err := strconv.ParseFloat(args[2], 64)
		if !isNum || err != nil {
			ts.Fatalf("json: %s = %v is not a number", args[0], v)
		}
		ok = n > want || (args[1] == ">=" && n == want)
	default:
		ts.Fatalf("json: unknown operator %q", args[1])
	}
	if ok == neg {
		ts.Fatalf("json: %s = %s; want %s %s %s", args[0], got, map[bool]string{true: "not", false: ""}[neg], args[1], args[2])
	}
}

// capture NAME: set $NAME to the last command's stdout, trimmed (a job id, say).
func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: capture NAME")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile("stdout")))
}

// sleep DURATION: wait, for example until a scheduled time falls due.
func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sleep DURATION")
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		ts.Fatalf("sleep: %v", err)
	}
	time.Sleep(d)
}

// waitglob PATTERN: wait until a file matches PATTERN (filepath.Glob), for a
// sync point with a background command; three minutes is a hang guard.
func cmdWaitGlob(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitglob PATTERN")
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if m, _ := filepath.Glob(ts.MkAbs(args[0])); len(m) > 0 {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitglob: nothing matched %s within 3 minutes", args[0])
		}
	}
}

// globs N PATTERN: require exactly N files to match PATTERN (filepath.Glob).
func cmdGlobs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: globs N PATTERN")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("globs: %q is not a number", args[0])
	}
	m, err := filepath.Glob(ts.MkAbs(args[1]))
	if err != nil {
		ts.Fatalf("globs: %v", err)
	}
	if len(m) != want {
		ts.Fatalf("globs: %d files match %s, want %d: %v", len(m), args[1], want, m)
	}
}

// freeport NAME: set $NAME to a TCP port of 127.0.0.1 that is free now (for
// a server the script starts in the background).
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport NAME")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ts.Fatalf("freeport: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ts.Setenv(args[0], strconv.Itoa(port))
}

// get URL [REGEXP]: GET URL once a server answers there (it may still be
// starting: refused connections are retried), require status 200 and write
// the body to stdout. With REGEXP, the GET is repeated until the body matches
// it (the page shows something another process does meanwhile). Retries stop
// after three minutes, a hang guard.
func cmdGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: get URL [REGEXP]")
	}
	var want *regexp.Regexp
	if len(args) == 2 {
		want = regexp.MustCompile(args[1])
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := http.Get(args[0])
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				ts.Fatalf("get %s: read: %v", args[0], err)
			}
			if resp.StatusCode != http.StatusOK {
				ts.Fatalf("get %s: %s\n%s", args[0], resp.Status, body)
			}
			if want == nil || want.Match(body) {
				_, _ = ts.Stdout().Write(body)
				return
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				ts.Fatalf("get %s: no answer: %v", args[0], err)
			}
			ts.Fatalf("get %s: the page never matched %q; last:\n%s", args[0], args[1], body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
