package file

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nuvom/nuvom/runtime/backend"
)

// The operator data (backend.Admin) lives under admin/:
//
//	admin/workers/<hex id>.json   one worker's registry row, replaced atomically
//	admin/paused/<queue folder>   a paused queue; the file holds its name
//	admin/minutes/<unix hour>.json the per-minute aggregates of one hour
//
// An hour's aggregates are read, merged and rewritten under the key lock
// k-minutes-<hour>. A job's outcome is stored before it is counted, so a
// crash between the two loses the count (never the outcome).
const (
	adminDir   = "admin"
	workersDir = "workers"
	pausedDir  = "paused"
	minutesDir = "minutes"
)

var _ backend.Admin = (*Backend)(nil)

func (b *Backend) adminPath(parts ...string) string {
	return b.path(append([]string{adminDir}, parts...)...)
}

func (b *Backend) ensureAdmin(sub string) error {
	return os.MkdirAll(b.adminPath(sub), 0o755)
}

// Heartbeat stores w's registry row and forgets long-gone workers.
func (b *Backend) Heartbeat(ctx context.Context, w backend.WorkerInfo) error {
	if w.ID == "" {
		return errors.New("file backend heartbeat: worker id is empty")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file backend heartbeat: %w", err)
	}
	if err := b.ensureAdmin(workersDir); err != nil {
		return fmt.Errorf("file backend heartbeat: %w", err)
	}
	w.Gone = false
	data, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("file backend heartbeat: %w", err)
	}
	if err := b.writeAtomic(b.adminPath(workersDir, hex.EncodeToString([]byte(w.ID))+".json"), data); err != nil {
		return fmt.Errorf("file backend heartbeat: %w", err)
	}
	ws, err := b.readWorkers()
	if err != nil {
		return fmt.Errorf("file backend heartbeat: %w", err)
	}
	for _, o := range ws {
		if o.LastHeartbeat.Before(w.LastHeartbeat.Add(-backend.WorkerForgetAfter)) {
			_ = remove(b.adminPath(workersDir, hex.EncodeToString([]byte(o.ID))+".json"))
		}
	}
	return nil
}

// RemoveWorker deletes a worker's row.
func (b *Backend) RemoveWorker(ctx context.Context, id string) error {
	err := remove(b.adminPath(workersDir, hex.EncodeToString([]byte(id))+".json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file backend remove worker %s: %w", id, err)
	}
	return nil
}

func (b *Backend) readWorkers() ([]backend.WorkerInfo, error) {
	names, err := readNames(b.adminPath(workersDir))
	if err != nil {
		return nil, err
	}
	out := []backend.WorkerInfo{}
	for _, n := range names {
		if !strings.HasSuffix(n, ".json") {
			continue
		}
		data, err := readFile(b.adminPath(workersDir, n))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		var w backend.WorkerInfo
		if json.Unmarshal(data, &w) != nil {
			continue // a damaged row is not a worker
		}
		out = append(out, w)
	}
	slices.SortFunc(out, func(x, y backend.WorkerInfo) int { return cmp.Compare(x.ID, y.ID) })
	return out, nil
}

// Workers lists the registered workers by id.
func (b *Backend) Workers(ctx context.Context, now time.Time) ([]backend.WorkerInfo, error) {
	ws, err := b.readWorkers()
	if err != nil {
		return nil, fmt.Errorf("file backend workers: %w", err)
	}
	for i := range ws {
		ws[i].Gone = ws[i].IsGone(now)
	}
	return ws, nil
}

// SetPaused pauses or resumes a queue: a marker file that every claim reads.
func (b *Backend) SetPaused(ctx context.Context, queue string, paused bool) error {
	p := b.adminPath(pausedDir, queueDir(queue))
	if !paused {
		if err := remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("file backend resume queue %s: %w", queue, err)
		}
		b.signal()
		return nil
	}
	if err := b.ensureAdmin(pausedDir); err != nil {
		return fmt.Errorf("file backend pause queue %s: %w", queue, err)
	}
	if err := b.writeAtomic(p, []byte(queue)); err != nil {
		return fmt.Errorf("file backend pause queue %s: %w", queue, err)
	}
	return nil
}

// Paused lists the paused queues.
func (b *Backend) Paused(ctx context.Context) ([]string, error) {
	names, err := readNames(b.adminPath(pausedDir))
	if err != nil {
		return nil, fmt.Errorf("file backend paused queues: %w", err)
	}
	out := []string{}
	for _, n := range names {
		data, err := readFile(b.adminPath(pausedDir, n))
		if err == nil {
			out = append(out, string(data))
		}
	}
	slices.Sort(out)
	return out, nil
}

// unpaused drops the folders of paused queues from dirs.
func (b *Backend) unpaused(dirs []string) ([]string, error) {
	names, err := readNames(b.adminPath(pausedDir))
	if err != nil || len(names) == 0 {
		return dirs, err
	}
	return slices.DeleteFunc(dirs, func(d string) bool { return slices.Contains(names, d) }), nil
}

// minuteBatch gathers the aggregates of one Complete call.
type minuteBatch map[string]*backend.MinuteStat

func (m *minuteBatch) add(s backend.MinuteStat) {
	if *m == nil {
		*m = minuteBatch{}
	}
	k := strconv.FormatInt(s.Minute.Unix(), 10) + "\x00" + s.Queue + "\x00" + s.Task
	if cur := (*m)[k]; cur != nil {
		cur.Add(s)
	} else {
		(*m)[k] = &s
	}
}

// addMinutes merges a batch into its hour files. Failures are logged: the
// outcomes are stored already.
func (b *Backend) addMinutes(ctx context.Context, m minuteBatch) {
	byHour := map[int64][]backend.MinuteStat{}
	for _, s := range m {
		h := s.Minute.Unix() / 3600
		byHour[h] = append(byHour[h], *s)
	}
	for h, rows := range byHour {
		if err := b.mergeHour(ctx, h, rows); err != nil {
			b.logger().Warn("nuvom file backend: cannot record aggregates", "hour", h, "error", err)
		}
	}
}

func (b *Backend) mergeHour(ctx context.Context, hour int64, rows []backend.MinuteStat) error {
	if err := b.ensureAdmin(minutesDir); err != nil {
		return err
	}
	unlock, err := b.lock(context.WithoutCancel(ctx), keyLock("minutes-"+strconv.FormatInt(hour, 10)))
	if err != nil {
		return err
	}
	defer unlock()
	path := b.adminPath(minutesDir, strconv.FormatInt(hour, 10)+".json")
	cur, err := readHour(path)
	if err != nil {
		return err
	}
	for _, r := range rows {
		i := slices.IndexFunc(cur, func(c backend.MinuteStat) bool {
			return c.Minute.Equal(r.Minute) && c.Queue == r.Queue && c.Task == r.Task
		})
		if i >= 0 {
			cur[i].Add(r)
		} else {
			cur = append(cur, r)
		}
	}
	data, err := json.Marshal(cur)
	if err != nil {
		return err
	}
	if err := b.writeAtomic(path, data); err != nil {
		return err
	}
	// Forget hours past the retention.
	names, err := readNames(b.adminPath(minutesDir))
	if err != nil {
		return nil //nolint:nilerr // tidying only
	}
	oldest := hour - int64(backend.MinutesRetention/time.Hour)
	for _, n := range names {
		if h, err := strconv.ParseInt(strings.TrimSuffix(n, ".json"), 10, 64); err == nil && h < oldest {
			_ = remove(b.adminPath(minutesDir, n))
		}
	}
	return nil
}

func readHour(path string) ([]backend.MinuteStat, error) {
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rows []backend.MinuteStat
	if json.Unmarshal(data, &rows) != nil {
		return nil, nil // a damaged hour starts over
	}
	return rows, nil
}

// Minutes returns the aggregates selected by f.
func (b *Backend) Minutes(ctx context.Context, f backend.MinuteFilter) ([]backend.MinuteStat, error) {
	names, err := readNames(b.adminPath(minutesDir))
	if err != nil {
		return nil, fmt.Errorf("file backend aggregates: %w", err)
	}
	since := f.Since.Truncate(time.Minute)
	sums := map[string]*backend.MinuteStat{}
	for _, n := range names {
		h, err := strconv.ParseInt(strings.TrimSuffix(n, ".json"), 10, 64)
		if err != nil || time.Unix((h+1)*3600, 0).Before(since) || (!f.Until.IsZero() && !time.Unix(h*3600, 0).Before(f.Until)) {
			continue
		}
		rows, err := readHour(b.adminPath(minutesDir, n))
		if err != nil {
			return nil, fmt.Errorf("file backend aggregates: %w", err)
		}
		for _, m := range rows {
			if m.Minute.Before(since) || (!f.Until.IsZero() && !m.Minute.Before(f.Until)) ||
				(f.Queue != "" && m.Queue != f.Queue) || (f.Task != "" && m.Task != f.Task) {
				continue
			}
			g := m
			if f.CountsOnly {
				g.Duration, g.Buckets = 0, [backend.NumBuckets]int64{}
			}
			g.Minute = f.Bucket(m.Minute.UTC())
			g.Queue, g.Task = f.Keys(m.Queue, m.Task)
			k := strconv.FormatInt(g.Minute.Unix(), 10) + "\x00" + g.Queue + "\x00" + g.Task
			if cur := sums[k]; cur != nil {
				cur.Add(g)
			} else {
				sums[k] = &g
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

// Search lists a page of jobs matching q, newest first: a walk of the
// folders, reading the files below the cursor until the page is full.
func (b *Backend) Search(ctx context.Context, q backend.JobQuery) (backend.JobPage, error) {
	all, err := b.walk()
	if err != nil {
		return backend.JobPage{}, fmt.Errorf("file backend search: %w", err)
	}
	limit := q.PageLimit()
	var p backend.JobPage
	for _, s := range all {
		if (q.After != "" && s.id >= q.After) || (q.MinID != "" && s.id < q.MinID) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return backend.JobPage{}, fmt.Errorf("file backend search: %w", err)
		}
		j, err := b.Get(ctx, s.id)
		if err != nil {
			continue // removed meanwhile
		}
		if !((len(q.States) == 0 || slices.Contains(q.States, j.State)) &&
			(q.Task == "" || j.Task == q.Task) && (q.Queue == "" || j.Queue == q.Queue) &&
			(q.Since.IsZero() || !j.CreatedAt.Before(backend.ClampTime(q.Since))) &&
			(q.Until.IsZero() || j.CreatedAt.Before(backend.ClampTime(q.Until))) &&
			(q.Text == "" || j.ID == q.Text || j.UniqueKey == q.Text || strings.Contains(string(j.Args), q.Text))) {
			continue
		}
		if len(p.Jobs) == limit {
			p.Next = p.Jobs[limit-1].ID
			break
		}
		p.Jobs = append(p.Jobs, j)
	}
	return p, nil
}

// Bulk applies action to the selected jobs.
func (b *Backend) Bulk(ctx context.Context, action backend.BulkAction, sel backend.Selection, now time.Time) (int, error) {
	return backend.BulkEach(ctx, b, action, sel, now)
}
