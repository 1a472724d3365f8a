package redis

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/runtime/backend"
)

// The operator data (backend.Admin), besides the queues' keys:
//
//	<prefix>:workers          hash: worker id -> its registry row (JSON)
//	<prefix>:paused           set: the paused queues (for listing)
//	P paused                  string: the queue is paused (read by the claim script, in the queue's slot)
//	P agg:<unix hour>         hash: the hour's aggregates, fields "<unix minute>|<task>|<field>",
//	                          expiring after backend.MinutesRetention
//	P aggh                    zset: the hours that have aggregates (score: unix hour)
//
// Aggregates are added by Complete's script itself, with the outcomes, for
// the outcomes it applies.
var _ backend.Admin = (*Backend)(nil)

var aggFields = func() []string {
	f := []string{"s", "f", "r", "o", "d"}
	for i := range backend.NumBuckets {
		f = append(f, "h"+strconv.Itoa(i))
	}
	return f
}()

func (b *Backend) aggKey(q string, hour int64) string {
	return b.qp(q) + "agg:" + strconv.FormatInt(hour, 10)
}

// aggTTL is how long an hour's aggregates hash lives.
const aggTTL = backend.MinutesRetention + 2*time.Hour

// appendAggregates appends to a, the complete script's arguments, what
// outcome o adds to its hour's aggregates (the script adds it when it
// applies o, under the task it reads from the job): its minute, its hour,
// the number of (field, increment) pairs and the pairs.
func appendAggregates(a []any, o *backend.Outcome) []any {
	m := backend.MinuteOf("", "", o)
	minute := m.Minute.Unix()
	a = append(a, minute, minute/3600)
	vals := []int64{int64(m.Succeeded), int64(m.Failed), int64(m.Retried), int64(m.Other), int64(m.Duration)}
	for _, n := range m.Buckets {
		vals = append(vals, n)
	}
	np := 0
	for _, v := range vals {
		if v != 0 {
			np++
		}
	}
	a = append(a, np)
	for i, v := range vals {
		if v != 0 {
			a = append(a, aggFields[i], v)
		}
	}
	return a
}

// Heartbeat stores w's registry row and forgets long-gone workers.
func (b *Backend) Heartbeat(ctx context.Context, w backend.WorkerInfo) error {
	if err := b.check(ctx, "heartbeat"); err != nil {
		return err
	}
	if w.ID == "" {
		return errors.New("redis: heartbeat: worker id is empty")
	}
	w.Gone = false
	data, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("redis: heartbeat: %w", err)
	}
	key := b.o.prefix + ":workers"
	if err := b.c.HSet(ctx, key, w.ID, data).Err(); err != nil {
		return wrap(ctx, "heartbeat", err)
	}
	ws, err := b.readWorkers(ctx)
	if err != nil {
		return wrap(ctx, "heartbeat", err)
	}
	var old []string
	for _, o := range ws {
		if o.LastHeartbeat.Before(w.LastHeartbeat.Add(-backend.WorkerForgetAfter)) {
			old = append(old, o.ID)
		}
	}
	if len(old) > 0 {
		if err := b.c.HDel(ctx, key, old...).Err(); err != nil {
			return wrap(ctx, "heartbeat: forget gone workers", err)
		}
	}
	return nil
}

func (b *Backend) readWorkers(ctx context.Context) ([]backend.WorkerInfo, error) {
	m, err := b.c.HGetAll(ctx, b.o.prefix+":workers").Result()
	if err != nil {
		return nil, err
	}
	out := []backend.WorkerInfo{}
	for _, v := range m {
		var w backend.WorkerInfo
		if json.Unmarshal([]byte(v), &w) == nil {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(x, y backend.WorkerInfo) int { return cmp.Compare(x.ID, y.ID) })
	return out, nil
}

// RemoveWorker deletes a worker's row.
func (b *Backend) RemoveWorker(ctx context.Context, id string) error {
	if err := b.check(ctx, "remove worker"); err != nil {
		return err
	}
	return wrap(ctx, "remove worker "+id, b.c.HDel(ctx, b.o.prefix+":workers", id).Err())
}

// Workers lists the registered workers by id.
func (b *Backend) Workers(ctx context.Context, now time.Time) ([]backend.WorkerInfo, error) {
	if err := b.check(ctx, "workers"); err != nil {
		return nil, err
	}
	ws, err := b.readWorkers(ctx)
	if err != nil {
		return nil, wrap(ctx, "workers", err)
	}
	for i := range ws {
		ws[i].Gone = ws[i].IsGone(now)
	}
	return ws, nil
}

// SetPaused pauses or resumes a queue: a flag in the queue's slot that the
// claim script reads, and the set of paused queues for listing.
func (b *Backend) SetPaused(ctx context.Context, queue string, paused bool) error {
	if err := b.check(ctx, "pause queue"); err != nil {
		return err
	}
	var err error
	if paused {
		if err = b.c.Set(ctx, b.qp(queue)+"paused", "1", 0).Err(); err == nil {
			err = b.c.SAdd(ctx, b.o.prefix+":paused", queue).Err()
		}
	} else {
		if err = b.c.Del(ctx, b.qp(queue)+"paused").Err(); err == nil {
			err = b.c.SRem(ctx, b.o.prefix+":paused", queue).Err()
		}
		b.notify()
	}
	return wrap(ctx, fmt.Sprintf("set queue %s paused=%t", queue, paused), err)
}

// Paused lists the paused queues.
func (b *Backend) Paused(ctx context.Context) ([]string, error) {
	if err := b.check(ctx, "paused queues"); err != nil {
		return nil, err
	}
	qs, err := b.c.SMembers(ctx, b.o.prefix+":paused").Result()
	if err != nil {
		return nil, wrap(ctx, "paused queues", err)
	}
	slices.Sort(qs)
	return qs, nil
}

// unpausedQueues drops the paused queues from qs (for a Cluster's claim
// plan; the claim script checks the flag too).
func (b *Backend) unpausedQueues(ctx context.Context, qs []string) ([]string, error) {
	p, err := b.c.SMembers(ctx, b.o.prefix+":paused").Result()
	if err != nil || len(p) == 0 {
		return qs, err
	}
	return slices.DeleteFunc(slices.Clone(qs), func(q string) bool { return slices.Contains(p, q) }), nil
}

// Minutes returns the aggregates selected by f: one hash per queue and hour.
func (b *Backend) Minutes(ctx context.Context, f backend.MinuteFilter) ([]backend.MinuteStat, error) {
	if err := b.check(ctx, "aggregates"); err != nil {
		return nil, err
	}
	qs := []string{f.Queue}
	if f.Queue == "" {
		var err error
		if qs, err = b.allQueues(ctx); err != nil {
			return nil, wrap(ctx, "aggregates", err)
		}
	}
	since := f.Since.Truncate(time.Minute)
	maxHour := "+inf"
	if !f.Until.IsZero() {
		maxHour = strconv.FormatInt(f.Until.Unix()/3600, 10)
	}
	hourCmds := make([]*goredis.StringSliceCmd, len(qs))
	if _, err := b.pipeline(ctx, func(p goredis.Pipeliner) {
		for i, q := range qs {
			hourCmds[i] = p.ZRangeByScore(ctx, b.qp(q)+"aggh", &goredis.ZRangeBy{
				Min: strconv.FormatInt(since.Unix()/3600, 10), Max: maxHour})
		}
	}); err != nil {
		return nil, wrap(ctx, "aggregates", err)
	}
	type hk struct {
		q    string
		hour int64
	}
	var keys []hk
	for i, q := range qs {
		for _, h := range hourCmds[i].Val() {
			if n, err := strconv.ParseInt(h, 10, 64); err == nil {
				keys = append(keys, hk{q, n})
			}
		}
	}
	cmds := make([]*goredis.MapStringStringCmd, len(keys))
	if _, err := b.pipeline(ctx, func(p goredis.Pipeliner) {
		for i, k := range keys {
			cmds[i] = p.HGetAll(ctx, b.aggKey(k.q, k.hour))
		}
	}); err != nil {
		return nil, wrap(ctx, "aggregates", err)
	}
	sums := map[string]*backend.MinuteStat{}
	for i, k := range keys {
		for field, v := range cmds[i].Val() {
			parts := strings.SplitN(field, "|", 3)
			if len(parts) != 3 {
				continue
			}
			sec, err1 := strconv.ParseInt(parts[0], 10, 64)
			n, err2 := strconv.ParseInt(v, 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			minute := time.Unix(sec, 0).UTC()
			if minute.Before(since) || (!f.Until.IsZero() && !minute.Before(f.Until)) || (f.Task != "" && parts[1] != f.Task) {
				continue
			}
			q, t := f.Keys(k.q, parts[1])
			bucket := f.Bucket(minute)
			sk := strconv.FormatInt(bucket.Unix(), 10) + "\x00" + q + "\x00" + t
			m := sums[sk]
			if m == nil {
				m = &backend.MinuteStat{Minute: bucket, Queue: q, Task: t}
				sums[sk] = m
			}
			switch fl := parts[2]; {
			case fl == "s":
				m.Succeeded += int(n)
			case fl == "f":
				m.Failed += int(n)
			case fl == "r":
				m.Retried += int(n)
			case fl == "o":
				m.Other += int(n)
			case fl == "d" && !f.CountsOnly:
				m.Duration += time.Duration(n)
			case strings.HasPrefix(fl, "h") && !f.CountsOnly:
				if h, err := strconv.Atoi(fl[1:]); err == nil && h >= 0 && h < backend.NumBuckets {
					m.Buckets[h] += n
				}
			}
		}
	}
	out := make([]backend.MinuteStat, 0, len(sums))
	for _, m := range sums {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(x, y backend.MinuteStat) int {
		return cmp.Or(x.Minute.Compare(y.Minute), cmp.Compare(x.Queue, y.Queue), cmp.Compare(x.Task, y.Task))
	})
	return out, nil
}

// searchScanLimit bounds the jobs one Search page reads without a text
// (filters that few jobs match).
const searchScanLimit = 100000

// Search returns a page of jobs matching q, newest first: the queues' state
// indexes (of q's states, or all) are merged page by page below the cursor,
// and each candidate's hash is read and filtered.
func (b *Backend) Search(ctx context.Context, q backend.JobQuery) (backend.JobPage, error) {
	if err := b.check(ctx, "search jobs"); err != nil {
		return backend.JobPage{}, err
	}
	limit := q.PageLimit()
	if q.Text != "" && q.After == "" {
		if j, err := b.Get(ctx, q.Text); err == nil && searchMatch(j, q, false) {
			return backend.JobPage{Jobs: []*backend.Job{j}}, nil
		}
	}
	qs := []string{q.Queue}
	if q.Queue == "" {
		var err error
		if qs, err = b.allQueues(ctx); err != nil {
			return backend.JobPage{}, wrap(ctx, "search jobs", err)
		}
	}
	scanCap := searchScanLimit
	if q.Text != "" {
		scanCap = backend.TextScanLimit
	}
	const chunk = 256
	cursor := q.After // ids below it are left to read
	srcs := b.stateSources(qs, q.States)
	var p backend.JobPage
	scanned := 0
	for scanned < scanCap {
		// The next chunk of every state index of every queue below the
		// cursor, merged (see idsPage).
		cands, more, err := b.idsPage(ctx, srcs, cursor, q.MinID, chunk)
		if err != nil {
			return backend.JobPage{}, wrap(ctx, "search jobs", err)
		}
		if len(cands) == 0 {
			return p, nil
		}
		cmds := make([]*goredis.MapStringStringCmd, len(cands))
		if _, err := b.pipeline(ctx, func(pp goredis.Pipeliner) {
			for i, c := range cands {
				cmds[i] = pp.HGetAll(ctx, b.qp(c.q)+"j:"+c.id)
			}
		}); err != nil {
			return backend.JobPage{}, wrap(ctx, "search jobs", err)
		}
		for i, c := range cands {
			scanned++
			f := cmds[i].Val()
			if len(f) == 0 {
				continue
			}
			j, _, _ := decodeJob(c.id, f)
			if j.Queue == "" {
				j.Queue = c.q
			}
			if !searchMatch(j, q, true) {
				continue
			}
			if len(p.Jobs) == limit {
				p.Next = p.Jobs[limit-1].ID
				return p, nil
			}
			p.Jobs = append(p.Jobs, j)
		}
		cursor = cands[len(cands)-1].id
		if !more {
			return p, nil // every queue is read to its end
		}
	}
	p.Next, p.Scanned = cursor, true
	return p, nil
}

// searchMatch reports whether j passes q's filters (its text too when text).
func searchMatch(j *backend.Job, q backend.JobQuery, text bool) bool {
	return (len(q.States) == 0 || slices.Contains(q.States, j.State)) &&
		(q.Task == "" || j.Task == q.Task) && (q.Queue == "" || j.Queue == q.Queue) &&
		(q.Since.IsZero() || !j.CreatedAt.Before(backend.ClampTime(q.Since))) &&
		(q.Until.IsZero() || j.CreatedAt.Before(backend.ClampTime(q.Until))) &&
		(q.After == "" || j.ID < q.After) && (q.MinID == "" || j.ID >= q.MinID) &&
		(!text || q.Text == "" || j.ID == q.Text || j.UniqueKey == q.Text || bytes.Contains(j.Args, []byte(q.Text)))
}

// Bulk applies action to the selected jobs.
func (b *Backend) Bulk(ctx context.Context, action backend.BulkAction, sel backend.Selection, now time.Time) (int, error) {
	return backend.BulkEach(ctx, b, action, sel, now)
}
