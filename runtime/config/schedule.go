package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/nuvom/nuvom"
	"github.com/nuvom/nuvom/runtime/schedule"
	"github.com/nuvom/nuvom/runtime/schedule/filestore"
	"github.com/nuvom/nuvom/runtime/schedule/sqlitestore"
)

// SchedulerBackendValue is the effective schedule store: NUVOM_SCHEDULER_BACKEND,
// else the queue's backend when it is a built-in one, else sqlite (a backend
// a plugin provides has no schedule store).
func (c Config) SchedulerBackendValue() string {
	if c.SchedulerBackend.Value != "" {
		return c.SchedulerBackend.Value
	}
	if c.Backend.Value == "" || !IsBuiltinBackend(c.Backend.Value) {
		return "sqlite"
	}
	return c.Backend.Value
}

// ScheduleDir is the file schedule store's folder: <NUVOM_QUEUE_DIR>/schedules.
func (c Config) ScheduleDir() string { return filepath.Join(c.QueueDir.Value, "schedules") }

func (c Config) schedulerEntry() Entry {
	src := c.SchedulerBackend.Source
	switch {
	case c.SchedulerBackend.Value == "" && c.Backend.Value != "" && !IsBuiltinBackend(c.Backend.Value):
		src = SourceDefault + ": NUVOM_BACKEND is a plugin's, which stores no schedules"
	case c.SchedulerBackend.Value == "":
		src = SourceDefault + ": as NUVOM_BACKEND"
	}
	return Entry{"NUVOM_SCHEDULER_BACKEND", c.SchedulerBackendValue(), src}
}

// OpenScheduleStore opens the configured schedule store: SQLite tables in the
// queue's database file, a folder of files, or memory. The caller closes it.
func (c Config) OpenScheduleStore(ctx context.Context) (schedule.Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open schedule store: %w", err)
	}
	switch b := c.SchedulerBackendValue(); b {
	case "memory":
		return schedule.NewMemoryStore(), nil
	case "redis":
		return c.openRedisScheduleStore()
	case "file":
		s, err := filestore.Open(c.ScheduleDir())
		if err != nil {
			return nil, fmt.Errorf("open file schedule store: %w", err)
		}
		return s, nil
	case "sqlite":
		if err := os.MkdirAll(filepath.Dir(c.DB.Value), 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite schedule store: create %s: %w", filepath.Dir(c.DB.Value), err)
		}
		s, err := sqlitestore.Open(c.DB.Value)
		if err != nil {
			return nil, fmt.Errorf("open sqlite schedule store at %s: %w", c.DB.Value, err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("open schedule store: unknown backend %q", b)
	}
}

// lazyScheduler opens the schedule store on the client's first Schedule call,
// so that clients that never schedule never touch it.
type lazyScheduler struct {
	cfg  Config
	mu   sync.Mutex
	svc  *schedule.Service
	open bool
}

func (c Config) lazyScheduler() *lazyScheduler { return &lazyScheduler{cfg: c} }

// CreateSchedule opens the store if needed and creates the schedule.
func (l *lazyScheduler) CreateSchedule(ctx context.Context, task nuvom.TaskSpec, args []byte, when nuvom.ScheduleSpec) (string, error) {
	l.mu.Lock()
	if !l.open {
		st, err := l.cfg.OpenScheduleStore(ctx)
		if err != nil {
			l.mu.Unlock()
			return "", err
		}
		l.svc, l.open = schedule.NewService(st), true
	}
	svc := l.svc
	l.mu.Unlock()
	return svc.CreateSchedule(ctx, task, args, when)
}

// Close closes the store if it was opened.
func (l *lazyScheduler) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.open {
		return nil
	}
	l.open = false
	return l.svc.Close()
}
