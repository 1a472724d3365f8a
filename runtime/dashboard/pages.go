package dashboard

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom/manifest"
	"github.com/nuvom/nuvom/manifest/jsonargs"
	"github.com/nuvom/nuvom/runtime/backend"
	"github.com/nuvom/nuvom/runtime/schedule"
)

// queueRow is one queue's line on the Overview and Queues pages.
type queueRow struct {
	Name   string
	Counts map[backend.State]int
	Total  int
	Ready  int
	// Running and FailedNow count the queue's running and failed jobs.
	Running, FailedNow int
	Oldest             time.Time // run-at of the oldest ready job
	Latency            time.Duration
	Paused             bool
	// Processed and Failed in the last hour (from the aggregates).
	Processed, Failed int
}

// queueRows groups Stats by queue, with the paused flags and last hour's throughput.
func (h *Handler) queueRows(r *http.Request, now time.Time, withHour bool) (rows []*queueRow, totals map[backend.State]int, counting bool, err error) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	// The first count after the dashboard started may take seconds on a
	// big store: a page waits for it a moment, then shows without counts
	// (Counting) and reloads.
	wctx, wcancel := context.WithTimeout(ctx, firstCountWait)
	stats, _, err := h.stats(wctx)
	wcancel()
	if err != nil {
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, false, err
		}
		counting, stats = true, nil
	}
	byQ := map[string]*queueRow{}
	row := func(q string) *queueRow {
		if byQ[q] == nil {
			byQ[q] = &queueRow{Name: q, Counts: map[backend.State]int{}}
		}
		return byQ[q]
	}
	totals = map[backend.State]int{}
	for _, s := range stats {
		qr := row(s.Queue)
		qr.Counts[s.State] += s.Count
		qr.Total += s.Count
		totals[s.State] += s.Count
		switch s.State {
		case backend.StateRunning:
			qr.Running += s.Count
		case backend.StateFailed:
			qr.FailedNow += s.Count
		}
		if s.State == backend.StateQueued {
			qr.Ready += s.Count
			if !s.OldestRunAt.IsZero() && (qr.Oldest.IsZero() || s.OldestRunAt.Before(qr.Oldest)) {
				qr.Oldest = s.OldestRunAt
			}
		}
		if (s.State == backend.StateScheduled || s.State == backend.StateRetrying) && !s.OldestRunAt.IsZero() && !s.OldestRunAt.After(now) {
			// due but not yet promoted: ready too
			if qr.Oldest.IsZero() || s.OldestRunAt.Before(qr.Oldest) {
				qr.Oldest = s.OldestRunAt
			}
		}
	}
	if h.admin != nil {
		paused, err := h.admin.Paused(ctx)
		if err != nil {
			return nil, nil, false, err
		}
		for _, q := range paused {
			row(q).Paused = true
		}
		if withHour {
			ms, err := h.minutes(ctx, lastHourByQueue(now), now)
			if err != nil {
				return nil, nil, false, err
			}
			for _, m := range ms {
				qr := row(m.Queue)
				qr.Processed += m.Processed()
				qr.Failed += m.Failed + m.Retried
			}
		}
	}
	rows = make([]*queueRow, 0, len(byQ))
	for _, qr := range byQ {
		if !qr.Oldest.IsZero() && qr.Oldest.Before(now) {
			qr.Latency = now.Sub(qr.Oldest)
		}
		rows = append(rows, qr)
	}
	slices.SortFunc(rows, func(a, b *queueRow) int { return cmp.Compare(a.Name, b.Name) })
	return rows, totals, counting, nil
}

// series is one bar chart: a count per bucket.
type series struct {
	Title   string
	Buckets []bar
	Max     int
}

type bar struct {
	At                time.Time
	Processed, Failed int
	// X, W, H, HF are the SVG geometry (percent of the chart's size).
	X, W, H, HF float64
}

func buildSeries(title string, ms []backend.MinuteStat, since time.Time, step time.Duration, n int) series {
	s := series{Title: title, Buckets: make([]bar, n)}
	for i := range s.Buckets {
		s.Buckets[i].At = since.Add(time.Duration(i) * step)
	}
	for _, m := range ms {
		i := int(m.Minute.Sub(since) / step)
		if i < 0 || i >= n {
			continue
		}
		s.Buckets[i].Processed += m.Processed()
		s.Buckets[i].Failed += m.Failed + m.Retried
	}
	for _, b := range s.Buckets {
		s.Max = max(s.Max, b.Processed)
	}
	w := 100.0 / float64(n)
	for i := range s.Buckets {
		b := &s.Buckets[i]
		b.X, b.W = float64(i)*w, w*0.85
		if s.Max > 0 {
			b.H = 100 * float64(b.Processed) / float64(s.Max)
			b.HF = 100 * float64(b.Failed) / float64(s.Max)
		}
	}
	return s
}

// historyCharts are the Overview's charts: title, bucket and bucket count.
var historyCharts = [...]struct {
	title string
	step  time.Duration
	n     int
}{{"Last hour (per minute)", time.Minute, 60}, {"Last day (per hour)", time.Hour, 24}, {"Last week (per 6 hours)", 6 * time.Hour, 28}}

// historyFilters are the aggregate reads of the Overview's charts at now.
func historyFilters(now time.Time) []backend.MinuteFilter {
	out := make([]backend.MinuteFilter, len(historyCharts))
	for i, c := range historyCharts {
		f := backend.MinuteFilter{Step: c.step, Group: backend.GroupAll, CountsOnly: true}
		f.Since = f.Bucket(now.UTC().Truncate(time.Minute)).Add(-time.Duration(c.n-1) * c.step)
		out[i] = f
	}
	return out
}

// lastHourByQueue reads the last 60 minutes by minute (closed minutes
// cached), summed by queue.
func lastHourByQueue(now time.Time) backend.MinuteFilter {
	return backend.MinuteFilter{Since: now.UTC().Truncate(time.Minute).Add(-59 * time.Minute), Step: time.Minute,
		Group: backend.GroupQueue, CountsOnly: true}
}

// firstCountWait is how long a page waits for the first count of the jobs.
const firstCountWait = 300 * time.Millisecond

// tasksFilter reads the current hour and the 23 before it by hour (closed
// hours cached), summed by task.
func tasksFilter(now time.Time) backend.MinuteFilter {
	return backend.MinuteFilter{Since: now.UTC().Truncate(time.Hour).Add(-23 * time.Hour), Step: time.Hour, Group: backend.GroupTask}
}

func (h *Handler) overview(r *http.Request) (string, any, error) {
	now := h.o.Now()
	rows, totals, counting, err := h.queueRows(r, now, false)
	if err != nil {
		return "", nil, err
	}
	type data struct {
		Counting bool
		Queues   []*queueRow
		Totals   map[backend.State]int
		States   []backend.State
		History  []series
		Workers  []backend.WorkerInfo
		Live     int
	}
	d := data{Counting: counting, Queues: rows, Totals: totals, States: backend.AllStates()}
	if h.admin != nil {
		ctx, cancel := reqCtx(r)
		defer cancel()
		for i, f := range historyFilters(now) {
			ms, err := h.minutes(ctx, f, now)
			if err != nil {
				return "", nil, err
			}
			d.History = append(d.History, buildSeries(historyCharts[i].title, ms, f.Since, f.Step, historyCharts[i].n))
		}
		if d.Workers, err = h.admin.Workers(ctx, now); err != nil {
			return "", nil, err
		}
		for _, w := range d.Workers {
			if !w.Gone {
				d.Live++
			}
		}
	}
	return "Overview", d, nil
}

func (h *Handler) queues(r *http.Request) (string, any, error) {
	rows, _, counting, err := h.queueRows(r, h.o.Now(), h.admin != nil)
	if err != nil {
		return "", nil, err
	}
	return "Queues", struct {
		Counting bool
		Queues   []*queueRow
		States   []backend.State
	}{counting, rows, backend.AllStates()}, nil
}

// jobsQuery reads the Jobs page's filters.
func jobsQuery(r *http.Request) (backend.JobQuery, error) {
	q := r.URL.Query()
	jq := backend.JobQuery{Task: q.Get("task"), Queue: q.Get("queue"), Text: strings.TrimSpace(q.Get("q")), After: q.Get("after")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return jq, statusError{http.StatusBadRequest, fmt.Sprintf("limit %q is not a positive number of jobs per page", v)}
		}
		jq.Limit = n
	}
	if s := q.Get("state"); s != "" {
		if !backend.State(s).Valid() {
			return jq, statusError{http.StatusBadRequest, fmt.Sprintf("unknown state %q", s)}
		}
		jq.States = []backend.State{backend.State(s)}
	}
	// A time range is read as a range of ids (ULIDs carry their creation
	// time), which the id index serves at any depth.
	for _, key := range []string{"since", "until"} {
		v := q.Get(key)
		if v == "" {
			continue
		}
		t, err := parseTimeInput(v)
		if err != nil {
			return jq, statusError{http.StatusBadRequest, fmt.Sprintf("%s: %v", key, err)}
		}
		id := idAt(t)
		if key == "since" {
			jq.MinID = id
		} else if jq.After == "" || id < jq.After {
			jq.After = id
		}
	}
	return jq, nil
}

// idAt is the smallest ULID of time t: ids at or above it were made at t or later.
func idAt(t time.Time) string {
	var u ulid.ULID
	if t.Before(time.UnixMilli(0)) {
		t = time.UnixMilli(0)
	}
	if err := u.SetTime(ulid.Timestamp(t)); err != nil {
		return strings.Repeat("7", 1) + strings.Repeat("Z", 25) // past the ULID range: above every id
	}
	return u.String()
}

// parseTimeInput reads an RFC 3339 time or a datetime-local input (UTC).
func parseTimeInput(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2006-01-02T15:04 or RFC 3339)", v)
}

type jobsData struct {
	Query   backend.JobQuery
	State   string
	Since   string
	Until   string
	Jobs    []*backend.Job
	Next    string // cursor of the next page
	States  []backend.State
	Tasks   []string
	Limit   string   // jobs per page, when the request set it
	Tag     string   // the tag filter: jobs of the manifest's tasks with this tag
	Tags    []string // every tag of the manifest's tasks
	Queues  []string
	Limited bool // the store has no Admin: List without search or pages
	Scanned bool // a text search stopped after backend.TextScanLimit jobs
	ScanMax int
}

func (h *Handler) jobs(r *http.Request) (string, any, error) {
	jq, err := jobsQuery(r)
	if err != nil {
		return "", nil, err
	}
	d, err := h.jobList(r, jq)
	if err != nil {
		return "", nil, err
	}
	return "Jobs", d, nil
}

func (h *Handler) jobList(r *http.Request, jq backend.JobQuery) (*jobsData, error) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	d := &jobsData{Query: jq, States: backend.AllStates(), ScanMax: backend.TextScanLimit, Since: r.URL.Query().Get("since"), Until: r.URL.Query().Get("until")}
	if len(jq.States) == 1 {
		d.State = string(jq.States[0])
	}
	limit := jq.PageLimit()
	d.Tag, d.Tags, d.Limit = r.URL.Query().Get("tag"), manifestTags(h.o.Manifest), r.URL.Query().Get("limit")
	var tagged []string
	if d.Tag != "" {
		var err error
		if tagged, err = tasksWithTag(h.o.Manifest, d.Tag, jq.Task); err != nil {
			return nil, err
		}
	}
	if h.admin != nil {
		var p backend.JobPage
		var err error
		if d.Tag != "" {
			p, err = searchTasks(ctx, h.admin, jq, tagged)
		} else {
			p, err = h.admin.Search(ctx, jq)
		}
		if err != nil {
			return nil, err
		}
		d.Jobs, d.Next, d.Scanned = p.Jobs, p.Next, p.Scanned
	} else if d.Tag != "" {
		return nil, statusError{http.StatusBadRequest, "tag filter: this store has no job search (backend.Admin)"}
	} else {
		d.Limited = true
		jobs, err := h.o.Backend.List(ctx, backend.ListFilter{States: jq.States, Task: jq.Task, Queue: jq.Queue, Since: jq.Since, Limit: limit})
		if err != nil {
			return nil, err
		}
		d.Jobs = jobs
	}
	if h.o.Manifest != nil {
		for _, t := range h.o.Manifest.Tasks {
			d.Tasks = append(d.Tasks, t.Name)
		}
	}
	return d, nil
}

// param is one argument shown with its manifest name and type.
type param struct {
	Name, Type string
	Value      any
}

type jobData struct {
	Job      *backend.Job
	Task     *manifest.Task
	Params   []param
	Args     any // when the manifest does not describe them
	ArgsErr  string
	Result   any
	HasRes   bool
	Raw      string // hex dump of the stored args
	Schedule string // the schedule the job came from
	Timeline []span
	stepOrigin
}

type span struct {
	backend.Attempt
	Left, Width float64 // percent of the timeline
	Duration    time.Duration
}

func (h *Handler) job(r *http.Request) (string, any, error) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	id := r.PathValue("id")
	j, err := h.o.Backend.Get(ctx, id)
	if errors.Is(err, backend.ErrNotFound) {
		return "", nil, statusError{http.StatusNotFound, "no job " + id}
	}
	if err != nil {
		return "", nil, err
	}
	d := jobData{Job: j, Raw: hex.Dump(j.Args)}
	if h.o.Manifest != nil {
		d.Task = h.o.Manifest.Lookup(j.Task)
	}
	if d.Task != nil {
		v, err := jsonargs.DecodeArgs(d.Task, j.Args)
		if err != nil {
			d.ArgsErr = err.Error()
		} else if items, ok := v.([]any); ok && len(items) == len(d.Task.Params) {
			for i, p := range d.Task.Params {
				d.Params = append(d.Params, param{Name: p.Name, Type: p.Type.String(), Value: items[i]})
			}
		} else {
			d.Args = v
		}
		if len(j.Result) > 0 {
			if v, err := jsonargs.DecodeResult(d.Task, j.Result); err == nil {
				d.Result, d.HasRes = v, true
			}
		}
	} else {
		v, err := jsonargs.Decode(j.Args)
		if err != nil {
			d.ArgsErr = err.Error()
		} else {
			d.Args = v
		}
		if len(j.Result) > 0 {
			if v, err := jsonargs.Decode(j.Result); err == nil {
				d.Result, d.HasRes = v, true
			}
		}
	}
	if rest, ok := strings.CutPrefix(j.UniqueKey, "sched:"); ok {
		if i := strings.LastIndex(rest, ":"); i > 0 {
			// sched:<id>:<fire time>, where the fire time has colons too
			d.Schedule = scheduleOfKey(rest)
		}
	}
	if so, ok := h.o.Backend.(backend.StepOrigins); ok {
		// The job's page does not depend on it: a store (or a remote
		// worker built with an older nuvom) that cannot tell shows no
		// workflow origin.
		if d.Workflow, err = so.StepOrigin(ctx, j.ID); err != nil {
			h.o.Logger.Warn("dashboard: workflow origin of a job", "job", j.ID, "err", err)
			d.Workflow = nil
		}
		d.MoreParents = capParents(d.Workflow)
	}
	d.Timeline = timeline(j)
	return "Job " + j.ID, d, nil
}

// scheduleOfKey extracts the schedule id from "<id>:<RFC 3339 time>".
func scheduleOfKey(rest string) string {
	for i := 0; i < len(rest); i++ {
		if rest[i] == ':' {
			if _, err := time.Parse(time.RFC3339Nano, rest[i+1:]); err == nil {
				return rest[:i]
			}
		}
	}
	return rest
}

func timeline(j *backend.Job) []span {
	if len(j.Attempts) == 0 {
		return nil
	}
	start, end := j.Attempts[0].StartedAt, j.Attempts[0].FinishedAt
	for _, a := range j.Attempts {
		if !a.StartedAt.IsZero() && a.StartedAt.Before(start) {
			start = a.StartedAt
		}
		if a.FinishedAt.After(end) {
			end = a.FinishedAt
		}
	}
	total := end.Sub(start)
	out := make([]span, len(j.Attempts))
	for i, a := range j.Attempts {
		s := span{Attempt: a, Duration: a.FinishedAt.Sub(a.StartedAt)}
		if total > 0 {
			s.Left = 100 * float64(a.StartedAt.Sub(start)) / float64(total)
			s.Width = max(0.5, 100*float64(s.Duration)/float64(total))
		} else {
			s.Width = 100
		}
		out[i] = s
	}
	return out
}

type taskRow struct {
	Task      manifest.Task
	Params    string
	Result    string
	Processed int
	Succeeded int
	Failed    int
	P50, P95  time.Duration
	Schedule  string
}

func (h *Handler) tasks(r *http.Request) (string, any, error) {
	now := h.o.Now()
	agg := map[string]*backend.MinuteStat{}
	if h.admin != nil {
		ctx, cancel := reqCtx(r)
		defer cancel()
		ms, err := h.minutes(ctx, tasksFilter(now), now)
		if err != nil {
			return "", nil, err
		}
		for _, m := range ms {
			if agg[m.Task] == nil {
				agg[m.Task] = &backend.MinuteStat{Task: m.Task}
			}
			agg[m.Task].Add(m)
		}
	}
	var rows []taskRow
	seen := map[string]bool{}
	add := func(t manifest.Task) {
		seen[t.Name] = true
		row := taskRow{Task: t}
		var ps []string
		for _, p := range t.Params {
			ps = append(ps, p.Name+" "+p.Type.String())
		}
		row.Params = strings.Join(ps, ", ")
		if t.Result != nil {
			row.Result = t.Result.String()
		}
		switch {
		case t.Options.Cron != "":
			row.Schedule = "cron " + t.Options.Cron
			if t.Options.TZ != "" {
				row.Schedule += " (" + t.Options.TZ + ")"
			}
		case t.Options.Every != 0:
			row.Schedule = "every " + t.Options.Every.Std().String()
		}
		if m := agg[t.Name]; m != nil {
			row.Processed, row.Succeeded, row.Failed = m.Processed(), m.Succeeded, m.Failed+m.Retried
			row.P50, row.P95 = m.Quantile(0.5), m.Quantile(0.95)
		}
		rows = append(rows, row)
	}
	if h.o.Manifest != nil {
		for _, t := range h.o.Manifest.Tasks {
			add(t)
		}
	}
	for name := range agg {
		if !seen[name] {
			add(manifest.Task{Name: name, Doc: "(not in the manifest)"})
		}
	}
	slices.SortFunc(rows, func(a, b taskRow) int { return cmp.Compare(a.Task.Name, b.Task.Name) })
	return "Tasks", struct {
		Tasks    []taskRow
		Manifest bool
	}{rows, h.o.Manifest != nil}, nil
}

type scheduleRow struct {
	schedule.Schedule
	Next    []time.Time
	LastJob *backend.Job
}

func (h *Handler) schedules(r *http.Request) (string, any, error) {
	if h.o.Schedules == nil {
		return "Schedules", struct{ Missing bool }{true}, nil
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	list, err := h.o.Schedules.List(ctx)
	if err != nil {
		return "", nil, err
	}
	now := h.o.Now()
	rows := make([]scheduleRow, 0, len(list))
	for _, s := range list {
		row := scheduleRow{Schedule: s}
		if tm, err := schedule.TimingOf(&s); err == nil && !s.Paused {
			t := s.NextRun
			for i := 0; i < 3 && !t.IsZero(); i++ {
				row.Next = append(row.Next, t)
				t = tm.Next(s.Anchor, t)
			}
		}
		if s.LastJobID != "" {
			if j, err := h.o.Backend.Get(ctx, s.LastJobID); err == nil {
				row.LastJob = j
			}
		}
		rows = append(rows, row)
	}
	_ = now
	return "Schedules", struct {
		Missing   bool
		Schedules []scheduleRow
	}{false, rows}, nil
}

func (h *Handler) workers(r *http.Request) (string, any, error) {
	var ws []backend.WorkerInfo
	if h.admin != nil {
		ctx, cancel := reqCtx(r)
		defer cancel()
		var err error
		if ws, err = h.admin.Workers(ctx, h.o.Now()); err != nil {
			return "", nil, err
		}
	}
	return "Workers", struct{ Workers []backend.WorkerInfo }{ws}, nil
}

type quarantined struct {
	*backend.Job
	Raw string
}

func (h *Handler) quarantine(r *http.Request) (string, any, error) {
	jq := backend.JobQuery{States: []backend.State{backend.StateQuarantined}, After: r.URL.Query().Get("after"), Limit: 50}
	d, err := h.jobList(r, jq)
	if err != nil {
		return "", nil, err
	}
	rows := make([]quarantined, len(d.Jobs))
	for i, j := range d.Jobs {
		rows[i] = quarantined{Job: j, Raw: hex.Dump(j.Args)}
	}
	return "Quarantine", struct {
		Jobs []quarantined
		Next string
	}{rows, d.Next}, nil
}

// jobAction retries, cancels or deletes one job.
func (h *Handler) jobAction(r *http.Request) (string, error) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	id, now := r.PathValue("id"), h.o.Now()
	switch r.PathValue("action") {
	case "retry":
		if err := h.o.Backend.Retry(ctx, id, now); err != nil {
			return "", err
		}
		return "Job " + id + " queued again", nil
	case "cancel":
		if err := h.o.Backend.Cancel(ctx, id, now); err != nil {
			return "", err
		}
		return "Job " + id + " cancelled", nil
	case "delete":
		n, err := h.o.Backend.Purge(ctx, backend.PurgeFilter{IDs: []string{id}})
		if err != nil {
			return "", err
		}
		if n == 0 {
			return "", fmt.Errorf("job %s was not deleted: it is running or gone", id)
		}
		return "Job " + id + " deleted", nil
	}
	return "", fmt.Errorf("unknown job action %q", r.PathValue("action"))
}

// bulk applies an action to the checked jobs, or to every job of a state and task.
func (h *Handler) bulk(r *http.Request) (string, error) {
	if h.admin == nil {
		return "", errors.New("this store does not support bulk actions")
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	action := backend.BulkAction(r.PostFormValue("action"))
	switch action {
	case backend.BulkRetry, backend.BulkCancel, backend.BulkDelete:
	default:
		return "", fmt.Errorf("unknown bulk action %q", action)
	}
	var sel backend.Selection
	if r.PostFormValue("all") == "1" {
		sel = backend.Selection{State: backend.State(r.PostFormValue("state")), Task: r.PostFormValue("task"), Queue: r.PostFormValue("queue")}
		if st := r.PostFormValue("state"); st != "" && !sel.State.Valid() {
			return "", fmt.Errorf("unknown state %q", st)
		}
		if !sel.State.Valid() {
			return "", errors.New("a bulk action on every matching job needs a state filter")
		}
	} else {
		sel.IDs = r.PostForm["id"]
		if len(sel.IDs) == 0 {
			return "", errors.New("no job selected")
		}
	}
	n, err := h.admin.Bulk(ctx, action, sel, h.o.Now())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: %d jobs", action, n), nil
}

func (h *Handler) queueAction(r *http.Request) (string, error) {
	if h.admin == nil {
		return "", errors.New("this store does not support pausing queues")
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	q := r.PostFormValue("queue")
	if q == "" {
		return "", errors.New("no queue given")
	}
	switch r.PathValue("action") {
	case "pause":
		if err := h.admin.SetPaused(ctx, q, true); err != nil {
			return "", err
		}
		return "Queue " + q + " paused", nil
	case "resume":
		if err := h.admin.SetPaused(ctx, q, false); err != nil {
			return "", err
		}
		return "Queue " + q + " resumed", nil
	}
	return "", fmt.Errorf("unknown queue action %q", r.PathValue("action"))
}

func (h *Handler) scheduleAction(r *http.Request) (string, error) {
	if h.o.Schedules == nil {
		return "", errors.New("no schedule store")
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	svc := schedule.Service{Store: h.o.Schedules, Now: h.o.Now}
	id := r.PathValue("id")
	switch r.PathValue("action") {
	case "pause":
		return "Schedule " + id + " paused", svc.Pause(ctx, id)
	case "resume":
		return "Schedule " + id + " resumed", svc.Resume(ctx, id)
	case "delete":
		return "Schedule " + id + " deleted", svc.Delete(ctx, id)
	case "run":
		jid, err := svc.RunNow(ctx, h.client, id)
		return "Schedule " + id + " enqueued job " + jid, err
	}
	return "", fmt.Errorf("unknown schedule action %q", r.PathValue("action"))
}
