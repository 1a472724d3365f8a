package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/backend"
)

// limitFlags adds --max-concurrency and --rate to fs.
func limitFlags(fs *pflag.FlagSet) (conc *int, rate *string) {
	conc = fs.Int("max-concurrency", 0, "override: the most jobs of the task running at once across every worker (0: none)")
	rate = fs.String("rate", "", "override: the most starts of the task per period, such as 10/s or 600/m (\"none\": no rate limit)")
	return conc, rate
}

// limitOf builds the override from the flags given; ok is false when none was.
func limitOf(fs *pflag.FlagSet, conc int, rate string) (l nuvom.Limit, ok bool, err error) {
	if !fs.Changed("max-concurrency") && !fs.Changed("rate") {
		return l, false, nil
	}
	if conc < 0 {
		return l, false, fmt.Errorf("--max-concurrency %d is negative", conc)
	}
	l.MaxConcurrency = conc
	if rate != "" && rate != "none" {
		if l.Rate, l.Per, err = backend.ParseRate(rate); err != nil {
			return l, false, fmt.Errorf("--rate: %w", err)
		}
	}
	return l, true, nil
}

func (a *app) cmdLimitList(args []string) int {
	fs := a.flags("limit list", "", "Lists the tasks' flow control as stored: declared by workers (from max_concurrency= and\n"+
		"rate= in the annotation), the override set with nuvom limit set, and the one claims enforce.", "nuvom limit list --json")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	ctx := context.Background()
	c, _, err := a.existingClient(ctx)
	if err != nil {
		return a.fail(err)
	}
	list := []nuvom.TaskLimit{}
	if c != nil {
		defer c.Close()
		if list, err = c.TaskLimits(ctx); err != nil {
			return a.fail(err)
		}
	}
	if *asJSON {
		return a.printJSON(list)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "no task limits")
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tDECLARED\tOVERRIDE\tENFORCED")
	for _, t := range list {
		override := "-"
		if t.HasOverride {
			override = t.Override.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Task, t.Declared.String(), override, t.Effective().String())
	}
	if err := tw.Flush(); err != nil {
		return a.fail(err)
	}
	return exitOK
}

func (a *app) cmdLimitSet(args []string) int {
	fs := a.flags("limit set", "TASK", "Overrides a task's declared flow control for every worker on the store, from their next\n"+
		"claim: the flags given replace the whole declared limit (a limit not given is lifted).",
		"nuvom limit set api.Call --max-concurrency 2 --rate 5/s")
	conc, rate := limitFlags(fs)
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	l, ok, err := limitOf(fs, *conc, *rate)
	if err != nil {
		return a.usageErr("limit set: %v", err)
	}
	if !ok {
		return a.usageErr("limit set: give --max-concurrency, --rate or both")
	}
	ctx := context.Background()
	c, err := a.client(ctx)
	if err != nil {
		return a.fail(err)
	}
	defer c.Close()
	if err := a.knownLimitTask(ctx, c, fs.Arg(0)); err != nil {
		return a.fail(err)
	}
	if err := c.SetTaskLimit(ctx, fs.Arg(0), l); err != nil {
		return a.fail(err)
	}
	fmt.Fprintf(a.stdout, "%s: %s\n", fs.Arg(0), l.String())
	return exitOK
}

// knownLimitTask refuses an override for a task that neither the module's
// manifest nor the store (a worker's declared limits, or a job, of another
// module) knows:
// a misspelt name would store a limit that no claim ever applies.
func (a *app) knownLimitTask(ctx context.Context, c *nuvom.Client, name string) error {
	m, err := a.loadManifest()
	if err != nil {
		return nil // no manifest here (outside a module): the store alone decides
	}
	if m.Lookup(name) != nil {
		return nil
	}
	limits, err := c.TaskLimits(ctx)
	if err != nil {
		return fmt.Errorf("limit set: %w", err)
	}
	for _, t := range limits {
		if t.Task == name {
			return nil
		}
	}
	// A task that declares no limit is not among them: a task of another
	// module on the same store is known by its jobs.
	jobs, err := c.Inspector().List(ctx, nuvom.ListFilter{Task: name, Limit: 1})
	if err != nil {
		return fmt.Errorf("limit set: %w", err)
	}
	if len(jobs) > 0 {
		return nil
	}
	_, err = a.task(m, name)
	return fmt.Errorf("limit set: %w, and neither a worker nor a job on the store names it", err)
}

func (a *app) cmdLimitClear(args []string) int {
	fs := a.flags("limit clear", "TASK", "Removes a task's override: its declared limits apply again.", "nuvom limit clear api.Call")
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	ctx := context.Background()
	c, err := a.client(ctx)
	if err != nil {
		return a.fail(err)
	}
	defer c.Close()
	limits, err := c.TaskLimits(ctx)
	if err != nil {
		return a.fail(err)
	}
	had := false
	for _, t := range limits {
		had = had || (t.Task == fs.Arg(0) && t.HasOverride)
	}
	if err := c.ClearTaskLimit(ctx, fs.Arg(0)); err != nil {
		return a.fail(err)
	}
	if !had {
		fmt.Fprintf(a.stdout, "%s: had no override (nothing changed)\n", fs.Arg(0))
		return exitOK
	}
	fmt.Fprintf(a.stdout, "%s: override cleared\n", fs.Arg(0))
	return exitOK
}
