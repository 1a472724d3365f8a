package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/nuvom/nuvom/internal/clip"
	"github.com/nuvom/nuvom/manifest"
)

// loadManifest reads the module's .nuvom_tasks.json, with errors that say what to do.
func (a *app) loadManifest() (*manifest.Manifest, error) {
	root, err := a.moduleRoot()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(root, manifest.FileName)
	m, err := manifest.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no %s in %s: run go generate ./... (nuvomgen) first", manifest.FileName, root)
	}
	return m, err
}

// task finds a task by name, suggesting names when it is unknown.
func (a *app) task(m *manifest.Manifest, name string) (*manifest.Task, error) {
	if t := m.Lookup(name); t != nil {
		return t, nil
	}
	var near []string
	for _, t := range m.Tasks {
		if strings.Contains(strings.ToLower(t.Name), strings.ToLower(name)) ||
			strings.EqualFold(t.Func, name) || typo(strings.ToLower(t.Name), strings.ToLower(name)) {
			near = append(near, t.Name)
		}
	}
	msg := fmt.Sprintf("unknown task %s in %s", clip.Quote(name), manifest.FileName)
	if len(near) > 0 {
		msg += " (did you mean " + strings.Join(near, ", ") + "?)"
	} else {
		msg += ` (run "nuvom list tasks")`
	}
	return nil, errors.New(msg)
}

// typo reports whether b is a at most two edits away (insertions, deletions,
// substitutions): "images.Resise" for "images.Resize".
func typo(a, b string) bool {
	ra, rb := []rune(a), []rune(b)
	if len(ra)-len(rb) > 2 || len(rb)-len(ra) > 2 {
		return false
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)] <= 2
}

func (a *app) cmdListTasks(args []string) int {
	fs := a.flags("list tasks", "", "Lists the module's tasks from .nuvom_tasks.json alone: it never compiles or\nimports your code, so it works in a fresh clone.",
		"nuvom list tasks --json | jq '.[].name'")
	asJSON := fs.Bool("json", false, "print the manifest's task entries as JSON")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	m, err := a.loadManifest()
	if err != nil {
		return a.fail(err)
	}
	if *asJSON {
		return a.printJSON(m.Tasks)
	}
	if len(m.Tasks) == 0 {
		fmt.Fprintln(a.stdout, "no tasks (mark a function with //nuvom:task and run go generate ./...)")
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tQUEUE\tPARAMS\tRESULT\tRETRIES\tTIMEOUT\tPOLICY\tTAGS\tDESCRIPTION")
	for _, t := range m.Tasks {
		params := make([]string, len(t.Params))
		for i, p := range t.Params {
			params[i] = p.Name + " " + p.Type.String()
		}
		result := "-"
		if t.Result != nil {
			result = t.Result.String()
		}
		timeout := "-"
		if t.Options.Timeout > 0 {
			timeout = t.Options.Timeout.Std().String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", t.Name, t.Options.Queue,
			orDash(strings.Join(params, ", ")), result, t.Options.Retries, timeout,
			t.Options.TimeoutPolicy, orDash(strings.Join(t.Options.Tags, ",")), firstLine(t.Doc))
	}
	return a.flushTable(tw)
}

func (a *app) flushTable(tw *tabwriter.Writer) int {
	if err := tw.Flush(); err != nil {
		return a.fail(err)
	}
	return exitOK
}

func (a *app) printJSON(v any) int {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return a.fail(err)
	}
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return orDash(s)
}
