package schedule

import (
	"context"
	"errors"
	"fmt"
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
// its first fire time computed from now; it stores nothing.
func Build(task nuvom.TaskSpec, args []byte, when nuvom.ScheduleSpec, now time.Time) (Schedule, error) {
	if task.Name == "" {
		return Schedule{}, errors.New("schedule: task name is empty")
	}
	sc := Schedule{
		ID: when.ID, Task: task, Args: args, Kind: when.Kind, Zone: when.Zone,
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
		sc.Spec = when.Cron
		sc.NextRun = tm.Next(time.Time{}, now)
	case nuvom.ScheduleInterval:
		if _, err := IntervalTiming(when.Every); err != nil {
			return Schedule{}, err
		}
		if when.Zone != "" {
			return Schedule{}, errors.New("a time zone applies to cron schedules only")
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

// Create validates when and stores a schedule of task with the encoded args.
func (s *Service) Create(ctx context.Context, task nuvom.TaskSpec, args []byte, when nuvom.ScheduleSpec) (Schedule, error) {
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
	res, err := c.Enqueue(ctx, sc.Task, sc.Args)
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

// SyncAnnotations makes the store's annotation schedules match the tasks'
// declared ones (TaskOptions.Cron/Zone/Every): it adds new ones, replaces
// changed ones (keeping paused and last-run), and deletes annotation schedules
// of tasks that no longer declare one or no longer exist. User schedules are
// left alone. It returns a problem per task whose declaration is invalid.
func SyncAnnotations(ctx context.Context, store Store, tasks []nuvom.TaskSpec, now time.Time) error {
	existing, err := store.List(ctx)
	if err != nil {
		return fmt.Errorf("sync annotation schedules: %w", err)
	}
	have := map[string]Schedule{}
	for _, sc := range existing {
		if sc.Source == SourceAnnotation {
			have[sc.ID] = sc
		}
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
		old, ok := have[id]
		if ok && old.Kind == when.Kind && old.Spec == specText(when) && old.Zone == when.Zone && sameTask(old.Task, t) {
			continue
		}
		sc, err := Build(t, nil, when.WithID(id), now)
		if err != nil {
			errs = append(errs, fmt.Errorf("task %s: %w", t.Name, err))
			continue
		}
		sc.Source = SourceAnnotation
		if ok {
			sc.CreatedAt, sc.Paused, sc.LastRun, sc.LastJobID = old.CreatedAt, old.Paused, old.LastRun, old.LastJobID
		}
		if err := store.Upsert(ctx, sc); err != nil {
			errs = append(errs, fmt.Errorf("task %s: %w", t.Name, err))
		}
	}
	for _, sc := range existing {
		if sc.Source == SourceAnnotation && !want[sc.ID] {
			if err := store.Delete(ctx, sc.ID); err != nil && !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sync annotation schedules: %w", err)
	}
	return nil
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
