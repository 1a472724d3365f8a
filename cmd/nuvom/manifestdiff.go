package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/nuvom/nuvom/manifest"
)

func (a *app) cmdManifestDiff(args []string) int {
	fs := a.flags("manifest diff", "[OLD NEW]",
		"Shows what changed between two manifests, task by task: added, removed, and changed\n"+
			"options or signatures. With no files it compares the committed manifest (--base,\n"+
			"default HEAD) with the working tree's. A changed signature is flagged, with a warning\n"+
			"when the task still has jobs waiting in the queue: those jobs would be refused.",
		"nuvom manifest diff --base origin/main")
	base := fs.String("base", "HEAD", "git revision whose manifest is the old side")
	asJSON := fs.Bool("json", false, "print the changes as JSON")
	if code, ok := a.parse(fs, args, 0, 2); !ok {
		return code
	}
	var old, cur *manifest.Manifest
	var err error
	switch fs.NArg() {
	case 2:
		if fs.Changed("base") {
			return a.usageErr("manifest diff: give either --base or two files, not both")
		}
		if old, err = manifest.Load(fs.Arg(0)); err != nil {
			return a.fail(err)
		}
		if cur, err = manifest.Load(fs.Arg(1)); err != nil {
			return a.fail(err)
		}
	case 1:
		return a.usageErr("manifest diff: give two manifest files, or none to compare with --base")
	default:
		if cur, err = a.loadManifest(); err != nil {
			return a.fail(err)
		}
		if old, err = a.gitManifest(*base); err != nil {
			return a.fail(err)
		}
	}
	changes := manifest.Diff(old, cur)
	pending := a.pendingBySignatureChange(changes)
	if *asJSON {
		type jsonChange struct {
			manifest.Change
			PendingJobs int `json:"pending_jobs,omitempty"`
		}
		out := make([]jsonChange, len(changes))
		for i, c := range changes {
			out[i] = jsonChange{Change: c, PendingJobs: pending[c.Task]}
		}
		return a.printJSON(out)
	}
	if len(changes) == 0 {
		fmt.Fprintln(a.stdout, "no task changes")
		return exitOK
	}
	for _, c := range changes {
		fmt.Fprintln(a.stdout, c.String())
		if c.SignatureChanged {
			if n := pending[c.Task]; n > 0 {
				fmt.Fprintf(a.stdout, "  warning: signature changed while %d job(s) of %s wait in the queue; workers with the new code will refuse them\n", n, c.Task)
			} else {
				fmt.Fprintf(a.stdout, "  note: signature changed; jobs enqueued by the old code will be refused by the new worker\n")
			}
		}
	}
	return exitOK
}

// gitManifest reads the module's manifest as committed at rev; a manifest that
// did not exist there counts as empty.
func (a *app) gitManifest(rev string) (*manifest.Manifest, error) {
	root, err := a.moduleRoot()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("git", "show", rev+":./"+manifest.FileName)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "does not exist in") || strings.Contains(msg, "exists on disk, but not in") {
			return nil, nil
		}
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("read %s at %s with git: %s", manifest.FileName, rev, msg)
	}
	m, err := manifest.Decode(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", filepath.ToSlash(manifest.FileName), rev, err)
	}
	return m, nil
}
