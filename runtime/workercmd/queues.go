package workercmd

import (
	"log/slog"
	"slices"
	"strings"

	"github.com/nuvom/nuvom"
)

// warnQueuesWithoutTasks logs a warning for each queue the worker serves
// (--queues, NUVOM_QUEUES) that none of its tasks has: a typo, most often,
// and the worker would wait on it silently. Jobs enqueued there with
// --queue (nuvom.Queue) still run, so it is not an error.
func warnQueuesWithoutTasks(l *slog.Logger, tasks []nuvom.TaskDef, queues []string) {
	var own []string
	for _, t := range tasks {
		q := t.Options.Queue
		if q == "" {
			q = "default"
		}
		if !slices.Contains(own, q) {
			own = append(own, q)
		}
	}
	slices.Sort(own)
	for _, q := range queues {
		if !slices.Contains(own, q) {
			l.Warn("no task of this worker has this queue: it runs only jobs enqueued to it with --queue (a typo?)",
				"queue", q, "task_queues", strings.Join(own, ","))
		}
	}
}
