package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/runtime/backend"
)

// Tags are declared on tasks (//nuvom:task tags=...), so the Jobs page's
// tag filter is the set of the manifest's tasks that carry the tag: a page
// is the newest jobs of those tasks, merged from one keyset page per task.

// manifestTags lists every tag of the manifest's tasks, sorted.
func manifestTags(m *manifest.Manifest) []string {
	if m == nil {
		return nil
	}
	var out []string
	for _, t := range m.Tasks {
		out = append(out, t.Options.Tags...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// tasksWithTag lists the manifest's tasks that carry tag (only task, when
// a task filter is set too).
func tasksWithTag(m *manifest.Manifest, tag, task string) ([]string, error) {
	if m == nil {
		return nil, statusError{http.StatusBadRequest, "tag filter: no manifest (.nuvom_tasks.json) to read task tags from"}
	}
	var out []string
	for _, t := range m.Tasks {
		if slices.Contains(t.Options.Tags, tag) && (task == "" || t.Name == task) {
			out = append(out, t.Name)
		}
	}
	if len(out) == 0 {
		known := strings.Join(manifestTags(m), ", ")
		if known == "" {
			known = "none"
		}
		if task != "" {
			return nil, statusError{http.StatusBadRequest, fmt.Sprintf("task %q has no tag %q (the manifest's tags: %s)", task, tag, known)}
		}
		return nil, statusError{http.StatusBadRequest, fmt.Sprintf("no task has tag %q (the manifest's tags: %s)", tag, known)}
	}
	return out, nil
}

// searchTasks runs jq once per task and merges the pages: the newest
// jq.PageLimit() jobs of all of them, with the cursor of the next page. The
// cursor never skips a job: it is the highest of the last id shown (when
// the merge dropped some) and each task's own next cursor (a task whose
// text search stopped early has looked no further than that); a job shown
// above a cursor taken from another task may show again on the next page.
func searchTasks(ctx context.Context, a backend.Admin, jq backend.JobQuery, tasks []string) (backend.JobPage, error) {
	limit := jq.PageLimit()
	var merged backend.JobPage
	next := ""
	for _, t := range tasks {
		q := jq
		q.Task = t
		p, err := a.Search(ctx, q)
		if err != nil {
			return backend.JobPage{}, err
		}
		merged.Jobs = append(merged.Jobs, p.Jobs...)
		merged.Scanned = merged.Scanned || p.Scanned
		next = max(next, p.Next)
	}
	slices.SortFunc(merged.Jobs, func(x, y *backend.Job) int { return strings.Compare(y.ID, x.ID) })
	if len(merged.Jobs) > limit {
		merged.Jobs = merged.Jobs[:limit]
		next = max(next, merged.Jobs[limit-1].ID)
	}
	merged.Next = next
	return merged, nil
}
