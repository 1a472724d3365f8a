package workercmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/config"
	"github.com/nuvom/nuvom/runtime/schedule"
)

// startScheduler opens the schedule store, upserts the schedules the tasks'
// annotations declare (logging those it cannot store) and, when run is true, starts a dispatcher that enqueues
// due ticks into backend until ctx ends (in burst mode it ticks once instead).
// The returned function stops the dispatcher and closes the store.
// onTick, when not nil, receives every due tick the dispatcher handles.
func startScheduler(ctx context.Context, cfg config.Config, backend nuvom.Backend, tasks []nuvom.TaskDef, run, burst bool, logger *slog.Logger, onTick func(schedule.TickEvent)) (func(), error) {
	if !run {
		return func() {}, nil
	}
	store, err := cfg.OpenScheduleStore(ctx)
	if err != nil {
		return nil, err
	}
	specs := make([]nuvom.TaskSpec, len(tasks))
	for i, t := range tasks {
		specs[i] = t.TaskSpec
	}
	// The dispatcher's client shares the worker's backend; it is not closed here.
	client := nuvom.NewClient(backend)
	// A schedule that cannot be stored (an unknown tz=, say) is that task's
	// problem: log it and let every other task and schedule run.
	res, err := schedule.SyncAnnotations(ctx, store, specs, time.Now())
	if err != nil {
		for _, e := range leafErrors(err) {
			logger.Error("annotation schedule not stored; the task still runs when enqueued", "err", e)
		}
	}
	if res.Stale {
		logger.Warn("scheduler: a newer build's task set owns the annotation schedules; this worker left them as they are",
			"set_generation", res.Set.Generation, "newest_generation", res.Newest)
	}
	if err := warnSignatures(ctx, store, specs, logger); err != nil {
		store.Close()
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	d := &schedule.Dispatcher{Store: store, Client: client, Logger: logger, OnTick: onTick}
	if burst {
		if _, err := d.Tick(ctx); err != nil {
			logger.Warn("scheduler tick", "err", err)
		}
		return func() { store.Close() }, nil
	}
	dctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.Run(dctx); err != nil {
			logger.Error("scheduler", "err", err)
		}
	}()
	logger.Debug("scheduler started", "backend", cfg.SchedulerBackendValue())
	return func() {
		cancel()
		wg.Wait()
		store.Close()
	}, nil
}

// warnSignatures logs a warning for each stored schedule whose task is in
// specs with another signature: its ticks fail to decode on this worker.
func warnSignatures(ctx context.Context, store schedule.Store, specs []nuvom.TaskSpec, logger *slog.Logger) error {
	list, err := store.List(ctx)
	if err != nil {
		return err
	}
	current := make(map[string]string, len(specs))
	for _, s := range specs {
		current[s.Name] = s.Signature
	}
	for _, m := range schedule.SignatureMismatches(list, current) {
		logger.Warn("scheduler: schedule's task signature differs from this worker's: its ticks will fail to decode; delete it and add it again",
			"schedule", m.ScheduleID, "task", m.Task, "schedule_signature", m.Stored, "task_signature", m.Current)
	}
	return nil
}

// leafErrors returns the errors joined inside err (errors.Join, possibly
// wrapped once), each with the context that wrapped the join; err alone when
// nothing is joined.
func leafErrors(err error) []error {
	var joined interface {
		error
		Unwrap() []error
	}
	if !errors.As(err, &joined) {
		return []error{err}
	}
	prefix := strings.TrimSuffix(err.Error(), joined.Error())
	var out []error
	for _, e := range joined.Unwrap() {
		out = append(out, fmt.Errorf("%s%w", prefix, e))
	}
	return out
}
