package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nuvom/nuvom"
)

func (a *app) cmdQueueStats(args []string) int {
	fs := a.flags("queue stats", "", "Counts jobs per queue and state, with the age of the oldest ready job.\n"+
		"Running jobs are the ones in flight; a paused queue's jobs wait until it is resumed\n"+
		"(--json: one object per queue and state, with \"paused\").", "nuvom queue stats --json")
	asJSON := fs.Bool("json", false, "print the counts as JSON")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	ctx := context.Background()
	c, missing, err := a.existingClient(ctx)
	if err != nil {
		return a.fail(err)
	}
	var stats []nuvom.QueueStat
	var paused []string
	now := time.Now()
	if c != nil {
		defer c.Close()
		if stats, err = c.Inspector().Stats(ctx); err != nil {
			return a.fail(err)
		}
		paused = pausedQueues(ctx, c.Backend())
	}
	if *asJSON {
		// One object per queue and state, as Inspector.Stats gives them,
		// with whether the queue is paused.
		type row struct {
			nuvom.QueueStat
			Paused bool `json:"paused"`
		}
		rows := make([]row, len(stats))
		for i, s := range stats {
			rows[i] = row{QueueStat: s, Paused: slices.Contains(paused, s.Queue)}
		}
		return a.printJSON(rows)
	}
	if len(paused) > 0 {
		defer fmt.Fprintf(a.stdout, "paused: %s\n", strings.Join(paused, ", "))
	}
	if len(stats) == 0 {
		a.noJobs(missing)
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tSTATE\tCOUNT\tOLDEST READY")
	for _, s := range stats {
		age := "-"
		if (s.State == nuvom.StateQueued || s.State == nuvom.StateRetrying || s.State == nuvom.StateScheduled) && !s.OldestRunAt.IsZero() {
			if d := now.Sub(s.OldestRunAt); d > 0 {
				age = d.Round(time.Second).String()
			} else {
				age = "in " + (-d).Round(time.Second).String()
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", s.Queue, s.State, s.Count, age)
	}
	return a.flushTable(tw)
}

func (a *app) cmdQueuePurge(args []string) int {
	fs := a.flags("queue purge", "", "Deletes jobs that are not running, by queue, state, age or count. Needs --yes.",
		"nuvom queue purge --queue images --state failed,cancelled --yes\n"+
			"  nuvom queue purge --older-than 168h --yes     # ended jobs finished more than a week ago\n"+
			"  nuvom queue purge --keep-newest 10000 --yes   # all but the newest 10,000 ended jobs of each queue")
	queue := fs.String("queue", "", "only this queue")
	states := fs.StringSlice("state", nil, "only these states (comma-separated); running jobs are never purged")
	olderThan := fs.Duration("older-than", 0, "only jobs that ended (succeeded, failed, cancelled, quarantined) more than this long ago, e.g. 720h")
	keepNewest := fs.Int("keep-newest", 0, "only jobs that ended, all but the newest N of each queue (by finish time; with --state, of those states)")
	yes := fs.Bool("yes", false, "really delete")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	f := nuvom.PurgeFilter{Queue: *queue}
	var before time.Time // zero: any age
	if fs.Changed("older-than") {
		if *olderThan <= 0 {
			return a.usageErr("queue purge: --older-than %s must be positive (a Go duration such as 720h)", *olderThan)
		}
		before = time.Now().Add(-*olderThan)
	}
	keep := -1 // no count
	if fs.Changed("keep-newest") {
		if *keepNewest < 0 {
			return a.usageErr("queue purge: --keep-newest %d must not be negative", *keepNewest)
		}
		if !before.IsZero() {
			return a.usageErr("queue purge: --older-than and --keep-newest select differently; give one (run the purge twice for both)")
		}
		keep = *keepNewest
	}
	for _, s := range *states {
		st := nuvom.State(strings.TrimSpace(s))
		if !st.Valid() {
			return a.usageErr("queue purge: --state %q is not a state (%s)", s, statesText())
		}
		if st == nuvom.StateRunning {
			return a.usageErr("queue purge: running jobs cannot be purged")
		}
		if (!before.IsZero() || keep >= 0) && !st.Final() {
			flag := "--older-than"
			if keep >= 0 {
				flag = "--keep-newest"
			}
			return a.usageErr("queue purge: %s selects jobs that ended; --state %s never matches (use succeeded, failed, cancelled or quarantined)", flag, st)
		}
		f.States = append(f.States, st)
	}
	if !*yes {
		return a.usageErr("queue purge deletes jobs: add --yes to confirm")
	}
	n, err := a.purge(func(ctx context.Context, in *nuvom.Inspector) (int, error) {
		switch {
		case keep >= 0:
			return in.TrimEnded(ctx, keep, f)
		case !before.IsZero():
			return in.PurgeEnded(ctx, before, f)
		}
		return in.Purge(ctx, f)
	})
	if err != nil {
		if n > 0 {
			fmt.Fprintf(a.stdout, "purged %d job(s) before the error\n", n)
		}
		return a.fail(err)
	}
	fmt.Fprintf(a.stdout, "purged %d job(s)\n", n)
	return exitOK
}

// purge runs del (one of the Inspector's purges) on the project's store and
// returns how many jobs it deleted, also when it fails part-way.
func (a *app) purge(del func(context.Context, *nuvom.Inspector) (int, error)) (int, error) {
	ctx := context.Background()
	c, err := a.client(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return del(ctx, c.Inspector())
}

func (a *app) cmdQuarantineList(args []string) int {
	fs := a.flags("quarantine list", "", "Lists quarantined jobs: their payload could not be decoded, so no worker runs them.",
		"nuvom quarantine list --json")
	asJSON := fs.Bool("json", false, "print the jobs as JSON")
	if code, ok := a.parse(fs, args, 0, 0); !ok {
		return code
	}
	return a.cmdHistory([]string{"--status", string(nuvom.StateQuarantined), "--limit", "1000",
		fmt.Sprintf("--json=%t", *asJSON)})
}

func (a *app) cmdQuarantineShow(args []string) int {
	fs := a.flags("quarantine show", "ID", "Shows one quarantined job with its raw payload.", "nuvom quarantine show 01JD3Z5K8Q9W6V2N4M7R1T0XYZ")
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	return a.cmdInspectJob([]string{fs.Arg(0), "--format", "raw"})
}

func (a *app) cmdQuarantineRequeue(args []string) int {
	fs := a.flags("quarantine requeue", "ID", "Queues a quarantined job again (after a worker that can decode it is deployed).",
		"nuvom quarantine requeue 01JD3Z5K8Q9W6V2N4M7R1T0XYZ")
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	return a.jobAction(fs.Arg(0), "queued again", (*nuvom.Inspector).Retry)
}

func (a *app) cmdQuarantineDrop(args []string) int {
	fs := a.flags("quarantine drop", "ID", "Deletes a quarantined job.", "nuvom quarantine drop 01JD3Z5K8Q9W6V2N4M7R1T0XYZ")
	if code, ok := a.parse(fs, args, 1, 1); !ok {
		return code
	}
	n, err := a.purge(func(ctx context.Context, in *nuvom.Inspector) (int, error) {
		return in.Purge(ctx, nuvom.PurgeFilter{IDs: []string{fs.Arg(0)}, States: []nuvom.State{nuvom.StateQuarantined}})
	})
	if err != nil {
		return a.fail(err)
	}
	if n == 0 {
		return a.fail(fmt.Errorf("no quarantined job with id %q", fs.Arg(0)))
	}
	fmt.Fprintf(a.stdout, "%s dropped\n", fs.Arg(0))
	return exitOK
}
