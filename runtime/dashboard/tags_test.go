package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// TestJobsFilterByTag: the Jobs page's tag filter shows the jobs of every
// task that carries the tag and no other, newest first, across pages that
// neither skip nor repeat a job; an unknown tag is a 400 naming the tags.
func TestJobsFilterByTag(t *testing.T) {
	f := newFixture(t)
	echo := f.m.Tasks[0]
	for _, name := range []string{"shop.Bill", "shop.Refund", "shop.Mail"} {
		task := echo
		task.Name, task.Func = name, strings.TrimPrefix(name, "shop.")
		task.Options.Tags = []string{"other"}
		if name != "shop.Mail" {
			task.Options.Tags = []string{"money", "other"}
		}
		f.m.Tasks = append(f.m.Tasks, task)
	}
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	want := map[string]bool{}
	var jobs []*backend.Job
	for i := range 30 {
		task := []string{"shop.Bill", "shop.Refund", "shop.Mail"}[i%3]
		id := fmt.Sprintf("01JTAG%020d", i)
		jobs = append(jobs, &backend.Job{ID: id, Task: task, Queue: "default", State: backend.StateQueued,
			MaxAttempts: 1, RunAt: now, CreatedAt: now, TimeoutPolicy: backend.TimeoutFail})
		if task != "shop.Mail" {
			want[id] = true
		}
	}
	if _, err := f.b.Enqueue(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t, f.handler(t, nil))

	idRE := regexp.MustCompile(`href="jobs/(01JTAG\d+)"`)
	nextRE := regexp.MustCompile(`rel="next" href="jobs\?([^"]+)"`)
	var seen []string
	path := "/jobs?tag=money&limit=7"
	pages := 0
	for ; path != ""; pages++ {
		if pages > 20 {
			t.Fatal("hang: the pages do not end")
		}
		code, body := br.get(path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, code, body)
		}
		if !strings.Contains(body, `<option selected>money</option>`) {
			t.Fatalf("GET %s: the tag is not selected in the filter", path)
		}
		for _, m := range idRE.FindAllStringSubmatch(body, -1) {
			seen = append(seen, m[1])
		}
		path = ""
		if m := nextRE.FindStringSubmatch(body); m != nil {
			path = "/jobs?" + strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if !slices.IsSortedFunc(seen, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Errorf("jobs not newest first across pages: %v", seen)
	}
	got := map[string]bool{}
	for _, id := range seen {
		if got[id] {
			t.Errorf("job %s shown twice", id)
		}
		got[id] = true
		if !want[id] {
			t.Errorf("job %s of an untagged task shown", id)
		}
	}
	if len(got) != len(want) {
		t.Errorf("tag money showed %d jobs, want %d", len(got), len(want))
	}

	code, body := br.get("/jobs?tag=nope")
	if code != http.StatusBadRequest || !strings.Contains(body, `no task has tag "nope" (the manifest's tags: money, other)`) {
		t.Errorf("unknown tag: %d\n%s", code, body)
	}
	code, body = br.get("/jobs?tag=money&task=shop.Mail")
	if code != http.StatusBadRequest || !strings.Contains(body, "has no tag") {
		t.Errorf("task without the tag: %d\n%s", code, body)
	}
	if pages != 3 {
		t.Errorf("20 jobs at 7 a page took %d pages, want 3", pages)
	}
}
