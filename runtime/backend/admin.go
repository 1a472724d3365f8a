package backend

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Admin is the part of the storage contract that operators' tools (the
// dashboard, `nuvom workers`, `nuvom queue pause`) use: a registry of live
// worker processes, persistent queue pauses, per-minute aggregates of
// finished attempts, a paged job search and bulk actions. A backend offers it
// by implementing this interface next to Backend; AdminOf finds it, also
// through wrappers that expose their inner backend with Unwrap. The
// conformance cases in backendtest.RunAdmin state it precisely.
type Admin interface {
	// Heartbeat inserts or replaces the registry row of w.ID, and deletes the
	// rows whose LastHeartbeat is more than WorkerForgetAfter before
	// w.LastHeartbeat.
	Heartbeat(ctx context.Context, w WorkerInfo) error
	// RemoveWorker deletes a worker's row (a worker that stops cleanly). An
	// unknown id is not an error.
	RemoveWorker(ctx context.Context, id string) error
	// Workers lists the registered workers by ID, with Gone set on those whose
	// last heartbeat is more than WorkerGoneAfter missed beats (of their own
	// Every) before now.
	Workers(ctx context.Context, now time.Time) ([]WorkerInfo, error)

	// SetPaused pauses or resumes a queue. A paused queue keeps its jobs and
	// takes new ones, but Claim, in every process on the store, takes none of
	// its jobs until it is resumed. The state is stored: it survives restarts.
	SetPaused(ctx context.Context, queue string, paused bool) error
	// Paused lists the paused queues, sorted.
	Paused(ctx context.Context) ([]string, error)

	// Minutes returns the per-minute aggregates of attempts finished through
	// Complete with FinishedAt in [Since, Until), optionally of one queue
	// and/or task, in minute, queue, task order; with f.Step and f.Group the
	// rows are summed per Step-wide bucket (aligned on multiples of Step
	// since the Unix epoch) and per group. Aggregates are kept when the jobs
	// are purged, for MinutesRetention.
	Minutes(ctx context.Context, f MinuteFilter) ([]MinuteStat, error)

	// Search returns a page of the jobs matching q, newest (highest ID)
	// first: at most q.Limit (default 50) jobs with an ID below q.After, and
	// the cursor of the next page. A search by Text that is not an ID or a
	// unique key reads at most TextScanLimit jobs per page, so a page may
	// hold fewer matches than Limit and still have a Next.
	Search(ctx context.Context, q JobQuery) (JobPage, error)

	// Bulk applies one action (retry, cancel or delete) to the jobs selected
	// by sel at now, each job as Retry, Cancel or Purge would, skipping jobs
	// in states the action does not apply to. It returns how many it changed.
	Bulk(ctx context.Context, action BulkAction, sel Selection, now time.Time) (int, error)
}

// AdminOf returns b's Admin: b itself, or the Admin of the backend it wraps
// (through an Unwrap() Backend method), or false.
func AdminOf(b Backend) (Admin, bool) {
	for b != nil {
		if a, ok := b.(Admin); ok {
			return a, true
		}
		u, ok := b.(interface{ Unwrap() Backend })
		if !ok {
			return nil, false
		}
		b = u.Unwrap()
	}
	return nil, false
}

// Registry timing: a worker heartbeats its row every Every (WorkerBeat by
// default); it is shown as gone after WorkerGoneAfter missed beats, and
// forgotten WorkerForgetAfter after its last beat.
const (
	WorkerBeat        = 2 * time.Second
	WorkerGoneAfter   = 3
	WorkerForgetAfter = 24 * time.Hour
	// MinutesRetention is how long per-minute aggregates are kept.
	MinutesRetention = 8 * 24 * time.Hour
)

// WorkerInfo is one worker process's registry row.
type WorkerInfo struct {
	ID           string   `json:"id"`
	Host         string   `json:"host"`
	PID          int      `json:"pid"`
	Version      string   `json:"version,omitempty"`
	ManifestHash string   `json:"manifest_hash,omitempty"`
	Concurrency  int      `json:"concurrency"`
	Queues       []string `json:"queues"` // empty: any queue
	Running      int      `json:"running"`
	// Every is the worker's heartbeat interval (WorkerBeat when zero).
	Every         time.Duration `json:"every"`
	StartedAt     time.Time     `json:"started_at"`
	LastHeartbeat time.Time     `json:"last_heartbeat"`
	// Gone is set by Workers on a worker that missed WorkerGoneAfter beats.
	Gone bool `json:"gone"`
}

// IsGone reports whether w missed WorkerGoneAfter beats at now.
func (w WorkerInfo) IsGone(now time.Time) bool {
	every := w.Every
	if every <= 0 {
		every = WorkerBeat
	}
	return now.Sub(w.LastHeartbeat) > WorkerGoneAfter*every
}

// DurationBuckets are the upper bounds of the duration histogram of a
// MinuteStat; the last bucket (index len(DurationBuckets)) counts the rest.
var DurationBuckets = [...]time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
	30 * time.Second, time.Minute,
}

// NumBuckets is the number of histogram buckets of a MinuteStat.
const NumBuckets = len(DurationBuckets) + 1

// BucketOf returns the histogram bucket of an attempt that took d.
func BucketOf(d time.Duration) int {
	for i, b := range DurationBuckets {
		if d <= b {
			return i
		}
	}
	return len(DurationBuckets)
}

// MinuteStat aggregates the attempts of one task on one queue that finished
// in one minute (Minute is that minute's start, UTC).
type MinuteStat struct {
	Minute time.Time `json:"minute"`
	Queue  string    `json:"queue"`
	Task   string    `json:"task"`
	// Succeeded, Failed (for good), Retried (failed, will retry) and Other
	// (cancelled, quarantined) count attempts by the job's next state.
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Retried   int `json:"retried"`
	Other     int `json:"other"`
	// Duration is the sum of the attempts' durations; Buckets their histogram
	// (see DurationBuckets).
	Duration time.Duration     `json:"duration"`
	Buckets  [NumBuckets]int64 `json:"buckets"`
}

// Processed is the number of attempts counted.
func (m MinuteStat) Processed() int { return m.Succeeded + m.Failed + m.Retried + m.Other }

// Add adds o's counts to m.
func (m *MinuteStat) Add(o MinuteStat) {
	m.Succeeded += o.Succeeded
	m.Failed += o.Failed
	m.Retried += o.Retried
	m.Other += o.Other
	m.Duration += o.Duration
	for i := range m.Buckets {
		m.Buckets[i] += o.Buckets[i]
	}
}

// Quantile returns an upper bound of the q-quantile (0 < q <= 1) of the
// histogram's durations: the bound of the bucket holding it (for the last,
// open bucket, the largest bound). Zero when the histogram is empty.
func (m MinuteStat) Quantile(q float64) time.Duration {
	var total int64
	for _, n := range m.Buckets {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total) + 0.999999)
	rank = max(rank, 1)
	var seen int64
	for i, n := range m.Buckets {
		seen += n
		if seen >= rank {
			if i < len(DurationBuckets) {
				return DurationBuckets[i]
			}
			break
		}
	}
	return DurationBuckets[len(DurationBuckets)-1]
}

// MinuteOf returns the aggregate row an outcome adds to, with its one count.
// Backends call it from Complete for each applied outcome of a job of queue
// and task.
func MinuteOf(queue, task string, o *Outcome) MinuteStat {
	fin := o.FinishedAt
	if fin.IsZero() {
		fin = o.Attempt.FinishedAt
	}
	m := MinuteStat{Minute: fin.UTC().Truncate(time.Minute), Queue: queue, Task: task}
	switch o.State {
	case StateSucceeded:
		m.Succeeded = 1
	case StateFailed:
		m.Failed = 1
	case StateRetrying:
		m.Retried = 1
	default:
		m.Other = 1
	}
	d := o.Attempt.FinishedAt.Sub(o.Attempt.StartedAt)
	if o.Attempt.StartedAt.IsZero() || d < 0 {
		d = 0
	}
	m.Duration = d
	m.Buckets[BucketOf(d)] = 1
	return m
}

// MinuteFilter selects aggregates. Zero Queue and Task match all.
type MinuteFilter struct {
	Since, Until time.Time
	Queue, Task  string
	// Step, when above a minute, sums the rows of each Step-wide bucket
	// (Minute is the bucket's start).
	Step time.Duration
	// Group says which rows are summed together: GroupNone keeps queue and
	// task apart, GroupQueue sums the tasks of each queue (Task is ""),
	// GroupTask the queues of each task (Queue is ""), GroupAll everything.
	Group Grouping
	// CountsOnly leaves Duration and Buckets zero, which lets a store read
	// less (a chart of counts needs no histogram).
	CountsOnly bool
}

// Grouping is how Minutes sums rows (see MinuteFilter.Group).
type Grouping int

// The groupings of MinuteFilter.
const (
	GroupNone Grouping = iota
	GroupQueue
	GroupTask
	GroupAll
)

// Bucket returns the start of the bucket of minute m under f.Step.
func (f MinuteFilter) Bucket(m time.Time) time.Time {
	if f.Step <= time.Minute {
		return m
	}
	return time.Unix(0, m.UnixNano()-m.UnixNano()%int64(f.Step)).UTC()
}

// Keys returns the queue and task a row is summed under with f.Group.
func (f MinuteFilter) Keys(queue, task string) (string, string) {
	switch f.Group {
	case GroupQueue:
		return queue, ""
	case GroupTask:
		return "", task
	case GroupAll:
		return "", ""
	}
	return queue, task
}

// TextScanLimit is the most jobs a Search by argument text reads per page.
const TextScanLimit = 25000

// JobPage is one page of Search.
type JobPage struct {
	Jobs []*Job
	// Next is the After of the next page; empty on the last page.
	Next string
	// Scanned is set when a text search read TextScanLimit jobs before
	// filling the page: Next continues where it stopped.
	Scanned bool
}

// JobQuery selects a page of jobs for Search. Zero fields match everything.
type JobQuery struct {
	States []State
	Task   string
	Queue  string
	// Since and Until bound CreatedAt: Since <= CreatedAt < Until.
	Since, Until time.Time
	// Text matches a job whose ID or UniqueKey equals it, or whose args
	// contain it (bytes).
	Text string
	// After, when set, keeps jobs with an ID below it (the last ID of the
	// previous page).
	After string
	// MinID, when set, keeps jobs with an ID at or above it. With After it
	// bounds a time range by IDs: Nuvom's IDs are ULIDs of the enqueue time,
	// so a range of IDs is a range of creation times read from the ID index.
	MinID string
	// Limit caps the page; 0 means 50, at most 1000.
	Limit int
}

// PageLimit returns q.Limit with its default and bound applied.
func (q JobQuery) PageLimit() int {
	switch {
	case q.Limit <= 0:
		return 50
	case q.Limit > 1000:
		return 1000
	}
	return q.Limit
}

// BulkAction is what Bulk does.
type BulkAction string

// The bulk actions.
const (
	BulkRetry  BulkAction = "retry"
	BulkCancel BulkAction = "cancel"
	BulkDelete BulkAction = "delete"
)

// Selection names the jobs of a bulk action: the IDs given, or, when IDs is
// empty, every job in State of Task (and Queue when set). An empty selection
// (no IDs, no State) selects nothing.
type Selection struct {
	IDs   []string `json:"ids,omitempty"`
	State State    `json:"state,omitempty"`
	Task  string   `json:"task,omitempty"`
	Queue string   `json:"queue,omitempty"`
}

// Empty reports whether s selects nothing.
func (s Selection) Empty() bool { return len(s.IDs) == 0 && s.State == "" }

// BulkEach is Bulk done one job at a time through b's Retry, Cancel and
// Purge, for backends without a faster way: the selected IDs, or the jobs
// of the selection's state listed page by page. Jobs in states the action
// does not apply to, and jobs gone meanwhile, are skipped.
func BulkEach(ctx context.Context, b Backend, action BulkAction, sel Selection, now time.Time) (int, error) {
	var apply func(id string) error
	switch action {
	case BulkRetry:
		apply = func(id string) error { return b.Retry(ctx, id, now) }
	case BulkCancel:
		apply = func(id string) error { return b.Cancel(ctx, id, now) }
	case BulkDelete:
		apply = func(id string) error {
			n, err := b.Purge(ctx, PurgeFilter{IDs: []string{id}})
			if err == nil && n == 0 {
				return ErrWrongState // running, or gone
			}
			return err
		}
	default:
		return 0, fmt.Errorf("bulk: unknown action %q", action)
	}
	done := 0
	each := func(ids []string) (int, error) {
		n := 0
		for _, id := range ids {
			if err := apply(id); err != nil {
				if errors.Is(err, ErrWrongState) || errors.Is(err, ErrNotFound) {
					continue
				}
				return n, fmt.Errorf("bulk %s of job %s: %w", action, id, err)
			}
			n++
		}
		return n, nil
	}
	if len(sel.IDs) > 0 {
		return each(sel.IDs)
	}
	if sel.State == "" {
		return 0, nil
	}
	// Page through the selection by id (keyset: each page starts below the
	// last), with Search where the store has it, so that every page is read
	// through the store's indexes whatever the action did to the last one.
	a, hasSearch := AdminOf(b)
	seen := map[string]bool{}
	after := ""
	for {
		var ids []string
		next := ""
		if hasSearch {
			p, err := a.Search(ctx, JobQuery{States: []State{sel.State}, Task: sel.Task, Queue: sel.Queue, After: after, Limit: 500})
			if err != nil {
				return done, fmt.Errorf("bulk %s: list: %w", action, err)
			}
			for _, j := range p.Jobs {
				ids = append(ids, j.ID)
			}
			next = p.Next
		} else {
			page, err := b.List(ctx, ListFilter{States: []State{sel.State}, Task: sel.Task, Queue: sel.Queue, Limit: 500})
			if err != nil {
				return done, fmt.Errorf("bulk %s: list: %w", action, err)
			}
			for _, j := range page {
				if !seen[j.ID] {
					seen[j.ID] = true
					ids = append(ids, j.ID)
				}
			}
			if len(ids) > 0 {
				next = "more"
			}
		}
		n, err := each(ids)
		done += n
		if err != nil {
			return done, err
		}
		if next == "" {
			return done, nil
		}
		after = next
	}
}
