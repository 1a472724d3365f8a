package schedule

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// MemoryStore keeps schedules in memory, for tests and the memory backend.
type MemoryStore struct {
	mu         sync.Mutex
	scheds     map[string]Schedule
	sets       map[string]AnnotationSet
	newest     int64
	leaseOwner string
	leaseUntil time.Time
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{scheds: map[string]Schedule{}, sets: map[string]AnnotationSet{}}
}

// Update applies fn's decision about the schedule id atomically.
func (m *MemoryStore) Update(ctx context.Context, id string, fn UpdateFunc) (Action, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, found := m.scheds[id]
	next, act, err := UpdateChange(id, clone(cur), found, m.newest, fn)
	if err != nil {
		return Keep, err
	}
	switch act {
	case Put:
		m.scheds[id] = clone(next)
	case Remove:
		delete(m.scheds, id)
	}
	return act, nil
}

// RegisterAnnotationSet records a task set and returns it and the newest generation.
func (m *MemoryStore) RegisterAnnotationSet(ctx context.Context, fp string, now time.Time) (AnnotationSet, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set, ok := m.sets[fp]
	if !ok {
		m.newest++
		set = AnnotationSet{Fingerprint: fp, Generation: m.newest, FirstSeen: now.UTC().Round(0)}
		m.sets[fp] = set
	}
	return set, m.newest, nil
}

// List returns every schedule, sorted by ID.
func (m *MemoryStore) List(ctx context.Context) ([]Schedule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Schedule, 0, len(m.scheds))
	for _, s := range m.scheds {
		out = append(out, clone(s))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Get returns one schedule, or ErrNotFound.
func (m *MemoryStore) Get(ctx context.Context, id string) (Schedule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.scheds[id]
	if !ok {
		return Schedule{}, fmt.Errorf("get schedule %s: %w", id, ErrNotFound)
	}
	return clone(s), nil
}

// Upsert inserts s or replaces the schedule with its ID.
func (m *MemoryStore) Upsert(ctx context.Context, s Schedule) error {
	if s.ID == "" {
		return fmt.Errorf("upsert schedule: empty id")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scheds[s.ID] = clone(Normalize(s))
	return nil
}

// Delete removes a schedule.
func (m *MemoryStore) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.scheds[id]; !ok {
		return fmt.Errorf("delete schedule %s: %w", id, ErrNotFound)
	}
	delete(m.scheds, id)
	return nil
}

func (m *MemoryStore) modify(id, op string, fn func(s *Schedule) bool) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.scheds[id]
	if !ok {
		return false, fmt.Errorf("%s schedule %s: %w", op, id, ErrNotFound)
	}
	if !fn(&s) {
		return false, nil
	}
	m.scheds[id] = Normalize(s)
	return true, nil
}

// Pause marks a schedule paused.
func (m *MemoryStore) Pause(ctx context.Context, id string, now time.Time) error {
	_, err := m.modify(id, "pause", PauseChange(now))
	return err
}

// Resume clears paused and sets the next run.
func (m *MemoryStore) Resume(ctx context.Context, id string, next, now time.Time) error {
	_, err := m.modify(id, "resume", ResumeChange(next, now))
	return err
}

// Advance applies a if the schedule's next run still equals a.From.
func (m *MemoryStore) Advance(ctx context.Context, id string, a Advance) (bool, error) {
	return m.modify(id, "advance", a.Change())
}

// AcquireLease takes or renews the dispatcher lease.
func (m *MemoryStore) AcquireLease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leaseOwner != "" && m.leaseOwner != owner && m.leaseUntil.After(now) {
		return false, nil
	}
	m.leaseOwner, m.leaseUntil = owner, now.Add(ttl)
	return true, nil
}

// ReleaseLease frees the lease if owner holds it.
func (m *MemoryStore) ReleaseLease(ctx context.Context, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leaseOwner == owner {
		m.leaseOwner, m.leaseUntil = "", time.Time{}
	}
	return nil
}

// Close does nothing.
func (m *MemoryStore) Close() error { return nil }

func clone(s Schedule) Schedule {
	s.Args = append([]byte(nil), s.Args...)
	s.Task.Options.Tags = append([]string(nil), s.Task.Options.Tags...)
	return s
}
