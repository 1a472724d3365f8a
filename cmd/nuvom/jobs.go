package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/internal/clip"
	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/manifest/jsonargs"
)

// specOf turns a manifest task into what enqueueing needs.
func specOf(t *manifest.Task) nuvom.TaskSpec {
	o := t.Options
	return nuvom.TaskSpec{Name: t.Name, Signature: t.Signature, Options: nuvom.TaskOptions{
		Retries: o.Retries, RetryDelay: o.RetryDelay.Std(), Backoff: nuvom.Backoff(o.Backoff),
		MaxRetryDelay: o.MaxRetryDelay.Std(), Timeout: o.Timeout.Std(), TimeoutPolicy: nuvom.TimeoutPolicy(o.TimeoutPolicy),
		Queue: o.Queue, Priority: o.Priority, Tags: o.Tags, StoreResult: o.StoreResult, Version: o.Version,
	}}
}

func (a *app) cmdEnqueue(args []string) int {
	fs := a.flags("enqueue", "TASK [ARGS_JSON]",
		"Enqueues a task by name. ARGS_JSON is a JSON array of the task's arguments in order,\n"+
			"or an object keyed by parameter name; \"-\" reads it from standard input. Values are\n"+
			"converted with the manifest's types: integers stay integers, time.Time is an RFC 3339\n"+
			"string, time.Duration a string such as \"1m30s\", []byte base64. Prints the job id.",
		`nuvom enqueue images.Resize '["cat.png", 128]' --in 10m`)
	in := fs.Duration("in", 0, "run no earlier than this long from now")
	at := fs.String("at", "", "run no earlier than this RFC 3339 time")
	queue := fs.String("queue", "", "queue to use instead of the task's own")
	priority := fs.Int("priority", 0, "priority instead of the task's own; higher runs first")
	unique := fs.String("unique", "", "unique key: while a job with this key exists within --unique-for, return it instead")
	uniqueFor := fs.Duration("unique-for", time.Hour, "window of --unique")
	wait := fs.Bool("wait", false, "wait for the job to finish; print its result, exit 1 if it failed")
	timeout := fs.Duration("timeout", 0, "with --wait: give up waiting after this long (0: wait forever)")
	then := fs.StringArray("then", nil, "a task to run after this one with its result as its argument (repeat for a chain); prints the workflow id")
	conc, rate := limitFlags(fs)
	if code, ok := a.parse(fs, args, 1, 2); !ok {
		return code
	}
	if len(*then) > 0 && *unique != "" {
		return a.usageErr("enqueue: --unique does not go with --then")
	}
	if fs.Changed("in") && fs.Changed("at") {
		return a.usageErr("enqueue: give --in or --at, not both")
	}
	if fs.Changed("timeout") && !*wait {
		return a.usageErr("enqueue: --timeout goes with --wait")
	}
	if fs.Changed("queue") && !queueNameRE.MatchString(*queue) {
		return a.usageErr("enqueue: --queue %q: a queue name is non-empty and holds only letters, digits, '_', '.' and '-'", *queue)
	}
	task, payload, err := a.taskArgs(fs.Arg(0), fs.Arg(1))
	if err != nil {
		return a.fail(err)
	}
	var opts []nuvom.EnqueueOption
	if fs.Changed("in") {
		if *in < 0 {
			return a.usageErr("enqueue: --in %s is negative", *in)
		}
		opts = append(opts, nuvom.In(*in))
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339Nano, *at)
		if err != nil {
			return a.usageErr("enqueue: --at %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", *at)
		}
		opts = append(opts, nuvom.At(t))
	}
	if *queue != "" {
		opts = append(opts, nuvom.Queue(*queue))
	}
	if fs.Changed("priority") {
		opts = append(opts, nuvom.Priority(*priority))
	}
	if *unique != "" {
		opts = append(opts, nuvom.Unique(*unique, *uniqueFor))
	}
	ctx := context.Background()
	c, err := a.client(ctx)
	if err != nil {
		return a.fail(err)
	}
	defer c.Close()
	if l, ok, err := limitOf(fs, *conc, *rate); err != nil {
		return a.usageErr("enqueue: %v", err)
	} else if ok {
		// The task's limit, for every worker: set before the job can be claimed.
		if err := c.SetTaskLimit(ctx, task.Name, l); err != nil {
			return a.fail(err)
		}
		fmt.Fprintf(a.stderr, "nuvom: the limit of %s is now %s for every worker and every later job, until \"nuvom limit clear %s\"\n",
			task.Name, l, task.Name)
	}
	var res nuvom.EnqueueResult
	if len(*then) > 0 {
		wf, last, lastTask, err := a.enqueueChain(ctx, c, task, payload, opts, *then)
		if err != nil {
			return a.fail(err)
		}
		fmt.Fprintln(a.stdout, wf)
		res, task = nuvom.EnqueueResult{ID: last}, lastTask
	} else if res, err = c.Enqueue(ctx, specOf(task), payload, opts...); err != nil {
		return a.fail(err)
	} else {
		fmt.Fprintln(a.stdout, res.ID)
	}
	if res.Duplicate {
		fmt.Fprintf(a.stderr, "nuvom: unique key %q matched existing job %s\n", *unique, res.ID)
	}
	if !*wait {
		return exitOK
	}
	wctx := ctx
	if *timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	j, err := c.Wait(wctx, res.ID)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return a.fail(fmt.Errorf("job %s did not finish within %s (is a worker running? try nuvom runworker)", res.ID, *timeout))
		}
		return a.fail(err)
	}
	return a.printOutcome(j, task)
}

// taskArgs finds a task in the manifest and encodes its args from JSON (argsJSON,
// or standard input when it is "-") with the manifest's types.
func (a *app) taskArgs(name, argsJSON string) (*manifest.Task, []byte, error) {
	m, err := a.loadManifest()
	if err != nil {
		return nil, nil, err
	}
	task, err := a.task(m, name)
	if err != nil {
		return nil, nil, err
	}
	raw := []byte(argsJSON)
	if argsJSON == "-" {
		if raw, err = io.ReadAll(a.stdin); err != nil {
			return nil, nil, fmt.Errorf("read args from standard input: %w", err)
		}
	}
	payload, err := jsonargs.Encode(task, raw)
	if err != nil {
		return nil, nil, err
	}
	return task, payload, nil
}

// printOutcome prints a final job's result as JSON (typed by task), or its
// error; exit 1 unless it succeeded.
func (a *app) printOutcome(j *nuvom.Job, task *manifest.Task) int {
	if j.State != nuvom.StateSucceeded {
		msg := fmt.Sprintf("job %s (%s) %s after %d attempt(s)", j.ID, j.Task, j.State, j.Attempt)
		if j.Error != "" {
			msg += ": " + j.Error
		}
		return a.fail(errors.New(msg))
	}
	v, err := jsonargs.DecodeResult(task, j.Result)
	if err != nil {
		return a.fail(fmt.Errorf("job %s result: %w", j.ID, err))
	}
	data, err := json.Marshal(v)
	if err != nil {
		return a.fail(err)
	}
	fmt.Fprintln(a.stdout, string(data))
	return exitOK
}

// job opens the backend and fetches one job: read-only (creating nothing)
// unless write is set. The caller closes the client.
func (a *app) job(ctx context.Context, id string, write bool) (*nuvom.Job, *nuvom.Client, error) {
	var c *nuvom.Client
	var err error
	if write {
		c, err = a.client(ctx)
	} else {
		var missing string
		c, missing, err = a.existingClient(ctx)
		if err == nil && c == nil {
			return nil, nil, fmt.Errorf("no job with id %s (nothing stored yet at %s)", clip.Quote(id), missing)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	j, err := c.Get(ctx, id)
	if err != nil {
		c.Close()
		if errors.Is(err, nuvom.ErrNotFound) {
			return nil, nil, fmt.Errorf("no job with id %s", clip.Quote(id))
		}
		return nil, nil, err
	}
	return j, c, nil
}

func (a *app) cmdStatus(args []string) int {
	fs := a.flags("status", "ID", "Prints a job's state on one line: id, task, state, attempts, and when.", "nuvom status 01JD3Z5K8Q9W6V2N4M7R1T0XYZ")
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	j, c, err := a.job(context.Background(), fs.Arg(0), false)
	if err != nil {
		return a.fail(err)
	}
	defer c.Close()
	line := fmt.Sprintf("%s %s %s attempt %d/%d", j.ID, j.Task, j.State, j.Attempt, j.MaxAttempts)
	switch {
	case j.State == nuvom.StateScheduled || j.State == nuvom.StateRetrying:
		line += " runs at " + j.RunAt.Local().Format(time.RFC3339)
	case !j.FinishedAt.IsZero():
		line += " finished " + j.FinishedAt.Local().Format(time.RFC3339)
	}
	if j.Error != "" {
		line += ": " + firstLine(j.Error)
	}
	fmt.Fprintln(a.stdout, line)
	return exitOK
}

func (a *app) cmdInspectJob(args []string) int {
	fs := a.flags("inspect job", "ID", "Prints every field of a job: options, times, each attempt, the error chain and a panic's stack.\n"+
		"--format json decodes args and result to JSON; raw prints the stored bytes as base64.",
		"nuvom inspect job 01JD3Z5K8Q9W6V2N4M7R1T0XYZ --format json")
	format := fs.String("format", "table", "table, json or raw")
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	if *format != "table" && *format != "json" && *format != "raw" {
		return a.usageErr("inspect job: --format %q is not one of table, json, raw", *format)
	}
	j, c, err := a.job(context.Background(), fs.Arg(0), false)
	if err != nil {
		return a.fail(err)
	}
	defer c.Close()
	switch *format {
	case "raw":
		return a.printJSON(rawJob{Job: j, Timeout: j.Timeout.String()})
	case "json":
		return a.printJSON(a.taskTypes()(j))
	}
	return a.printJobTable(j)
}

// jobView is a job with its args and result decoded for people and scripts,
// and its timeout as a Go duration ("30s") rather than nanoseconds.
type jobView struct {
	*nuvom.Job
	Timeout string `json:"timeout"`
	Args    any    `json:"args"`
	Result  any    `json:"result,omitempty"`
}

// rawJob is a job as stored, with its timeout as a Go duration.
type rawJob struct {
	*nuvom.Job
	Timeout string `json:"timeout"`
}

// taskTypes returns a function that decodes a job's args and result, typed by
// its task in the manifest when the manifest has the task with the job's
// signature (so durations print as "1m30s"), else untyped.
func (a *app) taskTypes() func(j *nuvom.Job) jobView {
	m, _ := a.loadManifest()
	return func(j *nuvom.Job) jobView {
		var task *manifest.Task
		if m != nil {
			if t := m.Lookup(j.Task); t != nil && t.Signature == j.Signature {
				task = t
			}
		}
		v := jobView{Job: j, Timeout: j.Timeout.String()}
		var args, res any
		var err error
		if task != nil {
			args, err = jsonargs.DecodeArgs(task, j.Args)
		} else {
			args, err = jsonargs.Decode(j.Args)
		}
		if err != nil {
			args = "undecodable: " + err.Error()
		}
		if task != nil {
			res, err = jsonargs.DecodeResult(task, j.Result)
		} else {
			res, err = jsonargs.Decode(j.Result)
		}
		if err != nil {
			res = "undecodable: " + err.Error()
		}
		v.Args, v.Result = args, res
		return v
	}
}

func (a *app) printJobTable(j *nuvom.Job) int {
	v := a.taskTypes()(j)
	argsJSON, _ := json.Marshal(v.Args)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	row := func(k, val string) { fmt.Fprintf(tw, "%s:\t%s\n", k, val) }
	row("id", j.ID)
	row("task", j.Task)
	row("state", string(j.State))
	row("queue", j.Queue)
	row("priority", fmt.Sprint(j.Priority))
	row("attempts", fmt.Sprintf("%d of %d", j.Attempt, j.MaxAttempts))
	row("args", string(argsJSON))
	row("signature", j.Signature)
	row("timeout", orDash(durationText(j.Timeout))+" (policy "+string(j.TimeoutPolicy)+")")
	row("created", timeText(j.CreatedAt))
	row("run at", timeText(j.RunAt))
	row("started", timeText(j.StartedAt))
	row("finished", timeText(j.FinishedAt))
	if j.UniqueKey != "" {
		row("unique key", j.UniqueKey+" until "+timeText(j.UniqueUntil))
	}
	for _, k := range slices.Sorted(maps.Keys(j.Meta)) {
		row("meta "+k, j.Meta[k])
	}
	if j.State == nuvom.StateRunning {
		row("lease", fmt.Sprintf("%s until %s (token %d)", j.LeaseOwner, timeText(j.LeaseUntil), j.LeaseToken))
	}
	if v.Result != nil {
		res, _ := json.Marshal(v.Result)
		row("result", string(res))
	}
	if j.Error != "" {
		row("error", j.Error)
	}
	if err := tw.Flush(); err != nil {
		return a.fail(err)
	}
	if len(j.ErrorChain) > 1 {
		fmt.Fprintln(a.stdout, "\nerror chain:")
		for i, e := range j.ErrorChain {
			fmt.Fprintf(a.stdout, "  %d. %s\n", i+1, e)
		}
	}
	if len(j.Attempts) > 0 {
		fmt.Fprintln(a.stdout, "\nattempts:")
		tw = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  #\tSTARTED\tDURATION\tWORKER\tOUTCOME\tERROR")
		for _, at := range j.Attempts {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", at.Number, timeText(at.StartedAt),
				durationText(at.FinishedAt.Sub(at.StartedAt)), orDash(at.Worker), at.Outcome, orDash(firstLine(at.Error)))
		}
		if err := tw.Flush(); err != nil {
			return a.fail(err)
		}
	}
	if j.PanicStack != "" {
		fmt.Fprintf(a.stdout, "\npanic stack:\n%s\n", strings.TrimRight(j.PanicStack, "\n"))
	}
	return exitOK
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05.000 MST")
}

func durationText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func (a *app) cmdHistory(args []string) int {
	fs := a.flags("history", "", "Lists jobs, newest first, optionally filtered by state, task and age.",
		"nuvom history --status failed --since 12h")
	status := fs.StringSlice("status", nil, "only jobs in these states (comma-separated): "+statesText())
	task := fs.String("task", "", "only jobs of this task")
	queue := fs.String("queue", "", "only jobs on this queue")
	since := fs.Duration("since", 0, "only jobs created within this long")
	limit := fs.Int("limit", 20, "at most this many jobs")
	asJSON := fs.Bool("json", false, "print the jobs as JSON")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	f := nuvom.ListFilter{Task: *task, Queue: *queue, Limit: *limit}
	for _, s := range *status {
		st := nuvom.State(strings.TrimSpace(s))
		if !st.Valid() {
			return a.usageErr("history: --status %q is not a state (%s)", s, statesText())
		}
		f.States = append(f.States, st)
	}
	if *limit <= 0 {
		return a.usageErr("history: --limit must be positive")
	}
	if *since < 0 {
		return a.usageErr("history: --since must not be negative")
	}
	if *since > 0 {
		f.Since = time.Now().Add(-*since)
	}
	ctx := context.Background()
	c, missing, err := a.existingClient(ctx)
	if err != nil {
		return a.fail(err)
	}
	var jobs []*nuvom.Job
	if c != nil {
		defer c.Close()
		if jobs, err = c.Inspector().List(ctx, f); err != nil {
			return a.fail(err)
		}
	}
	if *asJSON {
		views := make([]jobView, len(jobs))
		decode := a.taskTypes()
		for i, j := range jobs {
			views[i] = decode(j)
		}
		return a.printJSON(views)
	}
	if len(jobs) == 0 {
		a.noJobs(missing)
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTASK\tSTATE\tATTEMPTS\tCREATED\tDURATION\tERROR")
	for _, j := range jobs {
		dur := ""
		if !j.FinishedAt.IsZero() && !j.StartedAt.IsZero() {
			dur = durationText(j.FinishedAt.Sub(j.StartedAt))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", j.ID, j.Task, j.State, j.Attempt, j.MaxAttempts,
			timeText(j.CreatedAt), orDash(dur), orDash(truncate(firstLine(j.Error), 60)))
	}
	return a.flushTable(tw)
}

func statesText() string {
	s := make([]string, len(nuvom.AllStates()))
	for i, st := range nuvom.AllStates() {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func (a *app) cmdRetry(args []string) int {
	fs := a.flags("retry", "ID", "Queues a failed, cancelled or quarantined job for one more attempt, keeping its history.", "nuvom retry 01JD3Z5K8Q9W6V2N4M7R1T0XYZ")
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	return a.jobAction(fs.Arg(0), "queued again", (*nuvom.Inspector).Retry)
}

func (a *app) cmdCancel(args []string) int {
	fs := a.flags("cancel", "ID", "Cancels a job that has not finished. A scheduled, queued or retrying job will not run; a running job has its context cancelled by the worker that runs it, in any process, and its attempt is recorded as cancelled.", "nuvom cancel 01JD3Z5K8Q9W6V2N4M7R1T0XYZ")
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	return a.jobAction(fs.Arg(0), "cancelled", (*nuvom.Inspector).Cancel)
}

func (a *app) jobAction(id, done string, act func(*nuvom.Inspector, context.Context, string) error) int {
	ctx := context.Background()
	j, c, err := a.job(ctx, id, true)
	if err != nil {
		return a.fail(err)
	}
	defer c.Close()
	if err := act(c.Inspector(), ctx, id); err != nil {
		if errors.Is(err, nuvom.ErrWrongState) {
			if j.State == nuvom.StateQuarantined && j.Task == "" {
				// Its stored record could not be decoded (a damaged job file):
				// there is nothing to queue again. Say so, and what to do.
				return a.fail(fmt.Errorf("job %s is quarantined because its stored record cannot be decoded (%s), so it cannot be queued again: remove it with nuvom quarantine drop %s",
					id, j.Error, id))
			}
			return a.fail(fmt.Errorf("job %s is %s: %w", id, j.State, nuvom.ErrWrongState))
		}
		return a.fail(err)
	}
	fmt.Fprintf(a.stdout, "%s %s\n", id, done)
	return exitOK
}
