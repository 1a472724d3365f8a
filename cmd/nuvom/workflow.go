package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/internal/clip"
	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/runtime/backend"
)

// workflowStep is one step as `workflow show --json` prints it. Step is its
// number as enqueued, from 0; it stays when earlier steps' jobs are deleted,
// so it is not always its place in the list.
type workflowStep struct {
	Step    int            `json:"step"`
	ID      string         `json:"id"`
	Task    string         `json:"task"`
	State   nuvom.State    `json:"state"`
	Input   string         `json:"input"`
	Parents []workflowEdge `json:"parents"`
	Error   string         `json:"error,omitempty"`
}

// workflowEdge is one parent of a step: Step is the parent's step number
// (workflowStep.Step), -1 when its job was deleted (ID still names it).
type workflowEdge struct {
	Step          int    `json:"step"`
	ID            string `json:"id"`
	IgnoreFailure bool   `json:"ignore_failure,omitempty"`
	OrderOnly     bool   `json:"order_only,omitempty"`
}

// workflowView is a workflow as `workflow show --json` prints it.
type workflowView struct {
	ID        string              `json:"id"`
	Name      string              `json:"name"`
	CreatedAt time.Time           `json:"created_at"`
	State     string              `json:"state"`
	Counts    map[nuvom.State]int `json:"counts"`
	Steps     []workflowStep      `json:"steps"`
}

func inputName(in backend.Input) string {
	switch in {
	case backend.InputResult:
		return "result"
	case backend.InputResults:
		return "results"
	}
	return "none"
}

func viewOf(info *nuvom.WorkflowInfo) workflowView {
	v := workflowView{ID: info.ID, Name: info.Name, CreatedAt: info.CreatedAt, State: string(info.State), Counts: info.Counts}
	index := map[string]int{}
	for _, s := range info.Steps {
		index[s.Job.ID] = s.Seq
	}
	for _, s := range info.Steps {
		st := workflowStep{Step: s.Seq, ID: s.Job.ID, Task: s.Job.Task, State: s.Job.State, Input: inputName(s.Input),
			Parents: []workflowEdge{}}
		if s.Job.State.Final() && s.Job.State != nuvom.StateSucceeded {
			st.Error = s.Job.Error
		}
		for _, e := range s.Parents {
			p, ok := index[e.Parent]
			if !ok {
				p = -1 // deleted
			}
			st.Parents = append(st.Parents, workflowEdge{Step: p, ID: e.Parent, IgnoreFailure: e.IgnoreFailure, OrderOnly: e.OrderOnly})
		}
		v.Steps = append(v.Steps, st)
	}
	return v
}

// countsText is "2 succeeded, 1 pending" in life order.
func countsText(counts map[nuvom.State]int) string {
	var parts []string
	for _, st := range nuvom.AllStates() {
		if n := counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	return strings.Join(parts, ", ")
}

func (a *app) cmdWorkflowShow(args []string) int {
	fs := a.flags("workflow show", "ID", "Prints a workflow's graph: each step with its task, state and the steps it waits for\n"+
		"(\"result\": it takes that parent's result as its first argument; \"results\": a fan-in of\n"+
		"them; \"after\": it only runs after it; \"ignore failure\": it runs even when that parent fails).",
		"nuvom workflow show 01JD3Z5K8Q9W6V2N4M7R1T0XYZ --json")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	ctx := context.Background()
	c, missing, err := a.existingClient(ctx)
	if err != nil {
		return a.fail(err)
	}
	if c == nil {
		return a.fail(fmt.Errorf("no workflow with id %s (nothing stored yet at %s)", clip.Quote(fs.Arg(0)), missing))
	}
	defer c.Close()
	info, err := c.GetWorkflow(ctx, fs.Arg(0))
	if err != nil {
		return a.fail(workflowErr(fs.Arg(0), err))
	}
	v := viewOf(info)
	if *asJSON {
		return a.printJSON(v)
	}
	if err := printWorkflow(a.stdout, v); err != nil {
		return a.fail(err)
	}
	return exitOK
}

// printWorkflow prints v as `workflow show` does: a header line, then a
// table of the steps. A parent whose job was deleted is named by its id.
func printWorkflow(w io.Writer, v workflowView) error {
	name := v.Name
	if name == "" {
		name = "-"
	}
	fmt.Fprintf(w, "workflow %s %s: %s (%s)\n", v.ID, name, v.State, countsText(v.Counts))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tJOB\tTASK\tSTATE\tWAITS FOR")
	for _, st := range v.Steps {
		var waits []string
		for _, e := range st.Parents {
			edge := "#" + strconv.Itoa(e.Step)
			if e.Step < 0 {
				edge = e.ID + " (deleted)"
			}
			switch {
			case e.OrderOnly:
				edge += " (after)"
			case st.Input == "result":
				edge += " (result)"
			case st.Input == "results":
				edge += " (results)"
			}
			if e.IgnoreFailure {
				edge += " (ignore failure)"
			}
			waits = append(waits, edge)
		}
		wait := "-"
		if len(waits) > 0 {
			wait = strings.Join(waits, ", ")
		}
		state := string(st.State)
		switch {
		case strings.HasPrefix(st.Error, state+": "), strings.HasPrefix(st.Error, state+" "):
			state = st.Error // "cancelled: parent step ... ended failed", "cancelled with its workflow"
		case st.Error != "":
			state += ": " + st.Error
		}
		fmt.Fprintf(tw, "#%d\t%s\t%s\t%s\t%s\n", st.Step, st.ID, st.Task, state, wait)
	}
	return tw.Flush()
}

func (a *app) cmdWorkflowList(args []string) int {
	fs := a.flags("workflow list", "", "Lists workflows, newest first, with their steps counted by state.", "nuvom workflow list --limit 20")
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("limit", 50, "the most workflows to list")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *limit < 1 {
		return a.usageErr("workflow list: --limit %d: list at least 1 workflow", *limit)
	}
	ctx := context.Background()
	c, _, err := a.existingClient(ctx)
	if err != nil {
		return a.fail(err)
	}
	list := []nuvom.WorkflowSummary{}
	if c != nil {
		defer c.Close()
		if list, err = c.ListWorkflows(ctx, *limit); err != nil {
			return a.fail(err)
		}
	}
	if *asJSON {
		return a.printJSON(list)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "no workflows")
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCREATED\tSTATE\tSTEPS")
	for _, w := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d (%s)\n", w.ID, orDash(w.Name), w.CreatedAt.UTC().Format(time.RFC3339), w.State, w.Steps, countsText(w.Counts))
	}
	if err := tw.Flush(); err != nil {
		return a.fail(err)
	}
	return exitOK
}

func (a *app) cmdWorkflowCancel(args []string) int {
	fs := a.flags("workflow cancel", "ID", "Cancels every step of a workflow that has not ended; running steps have their context\n"+
		"cancelled by their worker.", "nuvom workflow cancel 01JD3Z5K8Q9W6V2N4M7R1T0XYZ")
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	ctx := context.Background()
	c, err := a.client(ctx)
	if err != nil {
		return a.fail(err)
	}
	defer c.Close()
	n, err := c.CancelWorkflow(ctx, fs.Arg(0))
	if err != nil {
		return a.fail(workflowErr(fs.Arg(0), err))
	}
	fmt.Fprintf(a.stdout, "workflow %s: cancelled %d steps\n", fs.Arg(0), n)
	return exitOK
}

// workflowErr says "no workflow with id" for err wrapping
// nuvom.ErrWorkflowNotFound (the store's own wording repeats the id and
// names the store), else returns err.
func workflowErr(id string, err error) error {
	if errors.Is(err, nuvom.ErrWorkflowNotFound) {
		return fmt.Errorf("no workflow with id %s", clip.Quote(id))
	}
	return err
}

// sameType reports whether two manifest types are the same Go type: named
// types by name, others by structure.
func sameType(x, y *manifest.Type) bool {
	if x == nil || y == nil {
		return x == y
	}
	if x.Name != "" || y.Name != "" {
		return x.Name == y.Name
	}
	a, err1 := json.Marshal(x)
	b, err2 := json.Marshal(y)
	return err1 == nil && err2 == nil && string(a) == string(b)
}

// typeText names a task's result type for messages ("no result" when none).
func typeText(t *manifest.Type) string {
	if t == nil {
		return "no result"
	}
	return t.String()
}

// enqueueChain enqueues root (with its encoded args) followed by the tasks
// named in then, each taking the previous one's result as its only argument
// (or, for a task without parameters, only running after it): the chain is
// checked against the manifest's types first. It returns the workflow id,
// and the last step's job id and task.
func (a *app) enqueueChain(ctx context.Context, c *nuvom.Client, root *manifest.Task, payload []byte,
	opts []nuvom.EnqueueOption, then []string) (string, string, *manifest.Task, error) {
	m, err := a.loadManifest()
	if err != nil {
		return "", "", nil, err
	}
	byName := map[string]*manifest.Task{}
	for i := range m.Tasks {
		byName[m.Tasks[i].Name] = &m.Tasks[i]
	}
	prev := nuvom.NewStep[struct{}](specOf(root), payload, nil, opts)
	prevTask := root
	for _, name := range then {
		t := byName[name]
		if t == nil {
			return "", "", nil, fmt.Errorf("--then %q: no such task in %s", name, manifest.FileName)
		}
		switch len(t.Params) {
		case 0:
			prev = nuvom.NewStep[struct{}](specOf(t), []byte{0x90}, nil, nil).After(prev)
		case 1:
			if !sameType(&t.Params[0].Type, prevTask.Result) {
				return "", "", nil, fmt.Errorf("--then %s: its parameter %s is %s but %s returns %s",
					name, t.Params[0].Name, t.Params[0].Type.String(), prevTask.Name, typeText(prevTask.Result))
			}
			prev = nuvom.StepFrom[struct{}, struct{}](prev, specOf(t), []byte{0x90}, nil, nil)
		default:
			return "", "", nil, fmt.Errorf("--then %s: it takes %d parameters; a chain from the CLI passes only the previous result (write the workflow in Go)",
				name, len(t.Params))
		}
		prevTask = t
	}
	id, err := nuvom.Workflow(root.Name+" then "+strings.Join(then, " then "), prev).Enqueue(ctx, c)
	if err != nil {
		return "", "", nil, err
	}
	return id, prev.ID(), prevTask, nil
}
