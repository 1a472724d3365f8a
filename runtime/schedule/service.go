package schedule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/nuvom/nuvom"
)

// Service creates and manages schedules in a store. It implements
// nuvom.Scheduler, so a client given one with nuvom.WithScheduler can
// Schedule tasks; closing the service closes its store.
type Service struct {
	Store Store
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// NewService returns a service over store.
func NewService(store Store) *Service { return &Service{Store: store} }

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Close closes the store.
func (s *Service) Close() error { return s.Store.Close() }

// Build validates when for task and returns the schedule it describes, with
// its first fire time computed from now; it stores nothing. Empty args become
// the empty argument list (0x90), what a task without parameters decodes.
func Build(task nuvom.TaskSpec, args []byte, when nuvom.ScheduleSpec, now time.Time) (Schedule, error) {
	if task.Name == "" {
		return Schedule{}, errors.New("schedule: task name is empty")
	}
	sc := Schedule{
		ID: when.ID, Task: task, Args: argsOrEmpty(args), Kind: when.Kind, Zone: when.Zone,
		Misfire: when.Misfire, CatchUpLimit: when.CatchUpLimit, Jitter: when.Jitter,
		Source: SourceUser, CreatedAt: now, UpdatedAt: now,
	}
	if sc.Misfire == "" {
		sc.Misfire = nuvom.MisfireSkip
	}
	switch sc.Misfire {
	case nuvom.MisfireSkip, nuvom.MisfireCatchUp:
	default:
		return Schedule{}, fmt.Errorf("misfire policy %q is not skip or catch_up", sc.Misfire)
	}
	if sc.CatchUpLimit < 0 {
		return Schedule{}, fmt.Errorf("catch-up limit %d is negative", sc.CatchUpLimit)
	}
	if sc.Jitter < 0 {
		return Schedule{}, fmt.Errorf("jitter %s is negative", sc.Jitter)
	}
	switch when.Kind {
	case nuvom.ScheduleCron:
		tm, err := ParseCron(when.Cron, when.Zone)
		if err != nil {
			return Schedule{}, err
		}
		if sc.Jitter > 0 {
			if gap := tm.ShortestGap(now); gap > 0 && sc.Jitter >= gap {
				// Runs would start in any order, and two at once.
				return Schedule{}, fmt.Errorf("jitter %s is not shorter than %s, the shortest time between two runs of cron %q", sc.Jitter, gap, when.Cron)
			}
		}
		sc.Spec = when.Cron
		sc.NextRun = tm.Next(time.Time{}, now)
	case nuvom.ScheduleInterval:
		if _, err := IntervalTiming(when.Every); err != nil {
			return Schedule{}, err
		}
		if when.Zone != "" {
			return Schedule{}, errors.New("a time zone applies to cron schedules only")
		}
		if sc.Jitter >= when.Every {
			// Runs would start in any order, and two at once.
			return Schedule{}, fmt.Errorf("jitter %s is not shorter than the interval %s", sc.Jitter, when.Every)
		}
		sc.Spec = when.Every.String()
		sc.Anchor = when.At
		if sc.Anchor.IsZero() {
			sc.Anchor = now.Add(when.Every)
		}
		sc.NextRun = sc.Anchor
	case nuvom.ScheduleOnce:
		at := when.At
		if at.IsZero() {
			if when.In <= 0 {
				return Schedule{}, fmt.Errorf("one-off delay %s must be positive", when.In)
			}
			at = now.Add(when.In)
		}
		if !at.After(now) {
			return Schedule{}, fmt.Errorf("one-off time %s is in the past", at.UTC().Format(time.RFC3339))
		}
		sc.Spec = at.UTC().Format(time.RFC3339Nano)
		sc.NextRun = at
	case "":
		return Schedule{}, errors.New("schedule spec has no kind: use Cron, Every, OnceAt or OnceIn")
	default:
		return Schedule{}, fmt.Errorf("unknown schedule kind %q", when.Kind)
	}
	if sc.ID == "" {
		sc.ID = ulid.Make().String()
	}
	return Normalize(sc), nil
}

// CheckUserID refuses, for a schedule made by hand (Create, nuvom schedule
// add --id), an id of the form AnnotationID reserves for the schedules that
// task annotations declare: every worker start would put the annotation's
// schedule back over it, so the schedule made by hand would vanish.
func CheckUserID(id string) error {
	if strings.HasPrefix(id, AnnotationID("")) {
		return fmt.Errorf("schedule id %q: ids starting with %q are reserved for the schedules declared in task annotations (cron=, every=); choose another", id, AnnotationID(""))
	}
	return nil
}

// Create validates when and stores a schedule of task with the encoded args.
func (s *Service) Create(ctx context.Context, task nuvom.TaskSpec, args []byte, when nuvom.ScheduleSpec) (Schedule, error) {
	if err := CheckUserID(when.ID); err != nil {
		return Schedule{}, fmt.Errorf("schedule %s: %w", task.Name, err)
	}
	sc, err := Build(task, args, when, s.now())
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule %s: %w", task.Name, err)
	}
	if err := s.Store.Upsert(ctx, sc); err != nil {
		return Schedule{}, fmt.Errorf("schedule %s: %w", task.Name, err)
	}
	return sc, nil
}

// CreateSchedule implements nuvom.Scheduler.
func (s *Service) CreateSchedule(ctx context.Context, task nuvom.TaskSpec, args []byte, when nuvom.ScheduleSpec) (string, error) {
	sc, err := s.Create(ctx, task, args, when)
	return sc.ID, err
}

// Pause stops a schedule from firing until it is resumed.
func (s *Service) Pause(ctx context.Context, id string) error {
	return s.Store.Pause(ctx, id, s.now())
}

// Resume lets a paused schedule fire again from now on: ticks that fell due
// while it was paused are not enqueued.
func (s *Service) Resume(ctx context.Context, id string) error {
	sc, err := s.Store.Get(ctx, id)
	if err != nil {
		return err
	}
	now := s.now()
	next := sc.NextRun
	if !next.IsZero() && next.Before(now) {
		tm, err := TimingOf(&sc)
		if err != nil {
			return err
		}
		next = tm.Next(sc.Anchor, now)
	}
	return s.Store.Resume(ctx, id, next, now)
}

// Delete removes a schedule.
func (s *Service) Delete(ctx context.Context, id string) error { return s.Store.Delete(ctx, id) }

// RunNow enqueues the schedule's task at once, outside its tick sequence, and
// records the job as the schedule's last; it returns the job's id.
func (s *Service) RunNow(ctx context.Context, c *nuvom.Client, id string) (string, error) {
	sc, err := s.Store.Get(ctx, id)
	if err != nil {
		return "", err
	}
	res, err := c.Enqueue(ctx, sc.Task, argsOrEmpty(sc.Args))
	if err != nil {
		return "", fmt.Errorf("run schedule %s now: %w", id, err)
	}
	// Record it; a concurrent tick may move NextRun, so retry a few times.
	for i := 0; i < 5; i++ {
		ok, err := s.Store.Advance(ctx, id, Advance{From: sc.NextRun, NextRun: sc.NextRun, LastRun: s.now(), LastJobID: res.ID, Now: s.now()})
		if err != nil || ok {
			break
		}
		if sc, err = s.Store.Get(ctx, id); err != nil {
			break
		}
	}
	return res.ID, nil
}

// AnnotationID is the id of the schedule declared in task's annotation.
func AnnotationID(task string) string { return "task:" + task }

// SyncResult is what SyncAnnotations did.
type SyncResult struct {
	// Set is the task set synchronised and the generation the store gave it.
	Set AnnotationSet
	// Newest is the newest generation the store has recorded.
	Newest int64
	// Stale is true when a newer task set owns the annotation schedules: this
	// set's sync changed none of them (or only those it reached before the
	// newer set registered, which the newer set's sync replaces).
	Stale bool
	// Written and Deleted are the ids of the annotation schedules stored and
	// deleted.
	Written, Deleted []string
}

// AnnotationFingerprint identifies the annotation schedules a task set
// declares: a hash of every declaring task's name, signature and options.
// Tasks without cron= or every= do not count.
func AnnotationFingerprint(tasks []nuvom.TaskSpec) string {
	var decl []nuvom.TaskSpec
	for _, t := range tasks {
		if t.Options.Cron != "" || t.Options.Every > 0 {
			decl = append(decl, t)
		}
	}
	sort.Slice(decl, func(i, j int) bool { return decl[i].Name < decl[j].Name })
	data, _ := json.Marshal(decl) // TaskSpec is plain data: Marshal cannot fail
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// SyncAnnotations makes the store's annotation schedules match the tasks'
// declared ones (TaskOptions.Cron/Zone/Every): it adds new ones, replaces
// changed ones (keeping paused and last-run), and deletes annotation schedules
// of tasks that no longer declare one or no longer exist. User schedules are
// left alone. It returns a problem per task whose declaration is invalid.
//
// The newest task set wins, so that during a rolling deploy an old worker
// (re)starting does not undo a new one's schedules: the store gives each
// distinct set of declarations (AnnotationFingerprint) a generation when it
// first sees it, one above every generation before. A set first seen later
// is newer: the new build's workers register their set after the old build's
// did, and an old worker restarting finds its set already recorded with a
// lower generation. A set whose generation is not the newest changes nothing;
// and every write and delete is conditional, applied only while the stored
// schedule was written by a generation not newer than this set's, so an old
// worker that registered just before a new one cannot overwrite the new
// one's schedules either (Store.Update reads the newest generation in the
// same atomic step as the schedule). The order is first-seen, not build time: rolling
// back to a set seen before does not win back the annotation schedules (a
// changed set does, as it is new).
func SyncAnnotations(ctx context.Context, store Store, tasks []nuvom.TaskSpec, now time.Time) (SyncResult, error) {
	var res SyncResult
	set, newest, err := store.RegisterAnnotationSet(ctx, AnnotationFingerprint(tasks), now)
	if err != nil {
		return res, fmt.Errorf("sync annotation schedules: %w", err)
	}
	res.Set, res.Newest = set, newest
	if set.Generation < newest {
		res.Stale = true
		return res, nil
	}
	existing, err := store.List(ctx)
	if err != nil {
		return res, fmt.Errorf("sync annotation schedules: %w", err)
	}
	// newer reports whether a newer set registered or wrote cur since: this
	// set must not change it then.
	newer := func(cur Schedule, newestSet int64) bool {
		if newestSet > set.Generation || cur.SetGeneration > set.Generation {
			res.Stale = true
			return true
		}
		return false
	}
	want := map[string]bool{}
	var errs []error
	for _, t := range tasks {
		o := t.Options
		var when nuvom.ScheduleSpec
		switch {
		case o.Cron != "":
			when = nuvom.Cron(o.Cron, o.Zone)
		case o.Every > 0:
			when = nuvom.Every(o.Every)
		default:
			continue
		}
		id := AnnotationID(t.Name)
		want[id] = true
		sc, err := Build(t, nil, when.WithID(id), now)
		if err != nil {
			errs = append(errs, fmt.Errorf("task %s: %w", t.Name, err))
			continue
		}
		sc.Source = SourceAnnotation
		sc.SetGeneration, sc.SetFingerprint, sc.SetWrittenAt = set.Generation, set.Fingerprint, now
		act, err := store.Update(ctx, id, func(cur Schedule, found bool, newestSet int64) (Schedule, Action) {
			if newer(cur, newestSet) {
				return cur, Keep
			}
			if !found || cur.Source != SourceAnnotation {
				return sc, Put // a user schedule with this id is replaced, as before
			}
			sameTiming := cur.Kind == sc.Kind && cur.Spec == sc.Spec && cur.Zone == sc.Zone
			if sameTiming && sameTask(cur.Task, t) && len(cur.Args) > 0 {
				if cur.SetGeneration == set.Generation {
					return cur, Keep // unchanged
				}
				// Unchanged, but claimed for this generation, so that an
				// older set cannot replace it afterwards.
				cur.SetGeneration, cur.SetFingerprint, cur.SetWrittenAt = set.Generation, set.Fingerprint, now
				return cur, Put
			}
			sc.CreatedAt, sc.Paused, sc.LastRun, sc.LastJobID = cur.CreatedAt, cur.Paused, cur.LastRun, cur.LastJobID
			if sameTiming {
				// Only the task (or a missing payload) changed: keep the timing.
				sc.Anchor, sc.NextRun = cur.Anchor, cur.NextRun
			}
			return sc, Put
		})
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("task %s: %w", t.Name, err))
		case act == Put:
			res.Written = append(res.Written, id)
		}
	}
	for _, sc := range existing {
		if sc.Source != SourceAnnotation || want[sc.ID] {
			continue
		}
		act, err := store.Update(ctx, sc.ID, func(cur Schedule, found bool, newestSet int64) (Schedule, Action) {
			if !found || cur.Source != SourceAnnotation || newer(cur, newestSet) {
				return cur, Keep
			}
			return cur, Remove
		})
		if err != nil {
			errs = append(errs, err)
		} else if act == Remove {
			res.Deleted = append(res.Deleted, sc.ID)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("sync annotation schedules: %w", err)
	}
	return res, nil
}

// specText is how Build writes a cron or interval spec.
func specText(w nuvom.ScheduleSpec) string {
	if w.Kind == nuvom.ScheduleInterval {
		return w.Every.String()
	}
	return w.Cron
}

func sameTask(a, b nuvom.TaskSpec) bool {
	ao, bo := a.Options, b.Options
	return a.Name == b.Name && a.Signature == b.Signature && ao.Queue == bo.Queue && ao.Priority == bo.Priority &&
		ao.Retries == bo.Retries && ao.Timeout == bo.Timeout && ao.TimeoutPolicy == bo.TimeoutPolicy &&
		ao.StoreResult == bo.StoreResult
}

// SignatureMismatch is a schedule whose stored task signature differs from
// the signature the task has now: each tick's job carries arguments encoded
// for the old signature, and fails to decode.
type SignatureMismatch struct {
	ScheduleID, Task string
	// Stored is the signature in the schedule, Current the task's now.
	Stored, Current string
}

// String says what is wrong and what to do.
func (m SignatureMismatch) String() string {
	return fmt.Sprintf("schedule %s: task %s's signature changed (schedule has %s, the task now %s): its ticks will fail to decode; delete it and add it again with the new args",
		m.ScheduleID, m.Task, m.Stored, m.Current)
}

// SignatureMismatches returns the schedules whose task is in current (task
// name to signature) with another signature. Tasks not in current are not
// judged.
func SignatureMismatches(scheds []Schedule, current map[string]string) []SignatureMismatch {
	var out []SignatureMismatch
	for _, sc := range scheds {
		if sig, ok := current[sc.Task.Name]; ok && sig != sc.Task.Signature {
			out = append(out, SignatureMismatch{ScheduleID: sc.ID, Task: sc.Task.Name, Stored: sc.Task.Signature, Current: sig})
		}
	}
	return out
}
