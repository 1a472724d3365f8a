// Package filestore keeps schedules in a folder: one JSON file per schedule,
// replaced atomically (temporary file and rename), a lock file that
// serialises changes across processes, and a lease file for the dispatcher
// election. It works wherever the file backend does, Windows included.
//
// The lock is an operating-system file lock on the file "lock" (see
// internal/filelock): the kernel releases it when its holder's process dies,
// so nobody waits for a crashed process. It is the store's only lock. Every
// temp file is written under it, so a temp file found by the next holder
// belongs to a writer that died, and that holder removes it.
package filestore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nuvom/nuvom/internal/filelock"
	"github.com/nuvom/nuvom/runtime/schedule"
)

const (
	lockName  = "lock"
	leaseName = "lease.json"
	setsName  = "annotation-sets.json"
	prefix    = "s-"
	suffix    = ".json"
	tmpPrefix = ".tmp-"
	// lockWait bounds how long a change waits for a live holder of the lock
	// (changes take microseconds; a dead holder's lock is free at once).
	lockWait = 30 * time.Second
)

// Store is a schedule.Store over a folder.
type Store struct {
	dir string
}

var _ schedule.Store = (*Store)(nil)

// Open opens (creating if needed) the schedule folder dir.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("open file schedule store: folder is empty")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open file schedule store %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir returns the store's folder.
func (s *Store) Dir() string { return s.dir }

// Close does nothing: the store holds no open files between calls.
func (s *Store) Close() error { return nil }

// fileOf is a schedule's file; the id is hex-encoded, so any id makes a valid
// file name on every OS.
func (s *Store) fileOf(id string) string {
	return filepath.Join(s.dir, prefix+hex.EncodeToString([]byte(id))+suffix)
}

// retry runs op until it succeeds or fails with something other than a
// transient sharing error (Windows reports those while another process renames).
func retry(op func() error) error {
	var err error
	for i := 0; i < 30; i++ {
		if err = op(); err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) {
			return err
		}
		var pe *fs.PathError
		var le *os.LinkError
		if !errors.As(err, &pe) && !errors.As(err, &le) {
			return err
		}
		time.Sleep(time.Duration(i+1) * time.Millisecond / 2)
	}
	return err
}

func readFile(path string) ([]byte, error) {
	var data []byte
	err := retry(func() error {
		var err error
		data, err = os.ReadFile(path)
		return err
	})
	return data, err
}

// writeAtomic replaces path with data through a temporary file and a rename.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), tmpPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := retry(func() error { return os.Rename(tmp, path) }); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// lock takes the store's lock, waiting at most lockWait for its holder, and
// removes temp files that writers who died while holding it left behind; the
// returned function frees it. Call writeAtomic only with the lock held.
func (s *Store) lock(ctx context.Context) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	l, err := filelock.Wait(ctx, filepath.Join(s.dir, lockName))
	if err != nil {
		return nil, err
	}
	if err := s.removeTemps(); err != nil {
		_ = l.Unlock()
		return nil, err
	}
	return func() { _ = l.Unlock() }, nil
}

// removeTemps removes the temp files in the folder. Call with the lock held:
// every writer holds it, so none of them is being written.
func (s *Store) removeTemps() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("look for temp files in %s: %w", s.dir, err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		p := filepath.Join(s.dir, e.Name())
		if err := retry(func() error { return os.Remove(p) }); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove temp file left by a dead writer: %w", err)
		}
	}
	return nil
}

func (s *Store) read(path string) (schedule.Schedule, error) {
	data, err := readFile(path)
	if err != nil {
		return schedule.Schedule{}, err
	}
	var sc schedule.Schedule
	if err := json.Unmarshal(data, &sc); err != nil {
		return sc, fmt.Errorf("decode %s: %w", path, err)
	}
	return schedule.Normalize(sc), nil
}

func (s *Store) write(sc schedule.Schedule) error {
	data, err := json.MarshalIndent(schedule.Normalize(sc), "", "  ")
	if err != nil {
		return fmt.Errorf("encode schedule %s: %w", sc.ID, err)
	}
	return writeAtomic(s.fileOf(sc.ID), append(data, '\n'))
}

// List returns every schedule, sorted by ID.
func (s *Store) List(ctx context.Context) ([]schedule.Schedule, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list schedules in %s: %w", s.dir, err)
	}
	out := []schedule.Schedule{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, suffix) {
			continue
		}
		sc, err := s.read(filepath.Join(s.dir, n))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return nil, fmt.Errorf("list schedules in %s: %w", s.dir, err)
		}
		out = append(out, sc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Get returns one schedule, or schedule.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (schedule.Schedule, error) {
	sc, err := s.read(s.fileOf(id))
	if errors.Is(err, fs.ErrNotExist) {
		return sc, fmt.Errorf("get schedule %s: %w", id, schedule.ErrNotFound)
	}
	if err != nil {
		return sc, fmt.Errorf("get schedule %s: %w", id, err)
	}
	return sc, nil
}

// Upsert inserts sc or replaces the schedule with its ID.
func (s *Store) Upsert(ctx context.Context, sc schedule.Schedule) error {
	if sc.ID == "" {
		return errors.New("upsert schedule: empty id")
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("upsert schedule %s: %w", sc.ID, err)
	}
	defer unlock()
	if err := s.write(sc); err != nil {
		return fmt.Errorf("upsert schedule %s: %w", sc.ID, err)
	}
	return nil
}

// Delete removes a schedule.
func (s *Store) Delete(ctx context.Context, id string) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	defer unlock()
	err = retry(func() error { return os.Remove(s.fileOf(id)) })
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete schedule %s: %w", id, schedule.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	return nil
}

// modify reads, changes and writes one schedule under the lock; fn returns
// false to leave it unchanged.
func (s *Store) modify(ctx context.Context, id, op string, fn func(sc *schedule.Schedule) bool) (bool, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return false, fmt.Errorf("%s schedule %s: %w", op, id, err)
	}
	defer unlock()
	sc, err := s.read(s.fileOf(id))
	if errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("%s schedule %s: %w", op, id, schedule.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("%s schedule %s: %w", op, id, err)
	}
	if !fn(&sc) {
		return false, nil
	}
	if err := s.write(sc); err != nil {
		return false, fmt.Errorf("%s schedule %s: %w", op, id, err)
	}
	return true, nil
}

// Update applies fn's decision about the schedule id under the lock.
func (s *Store) Update(ctx context.Context, id string, fn schedule.UpdateFunc) (schedule.Action, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return schedule.Keep, fmt.Errorf("update schedule %s: %w", id, err)
	}
	defer unlock()
	cur, err := s.read(s.fileOf(id))
	found := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return schedule.Keep, fmt.Errorf("update schedule %s: %w", id, err)
	}
	if !found {
		cur = schedule.Schedule{}
	}
	sets, err := s.readSets()
	if err != nil {
		return schedule.Keep, fmt.Errorf("update schedule %s: %w", id, err)
	}
	next, act, err := schedule.UpdateChange(id, cur, found, newestOf(sets), fn)
	if err != nil {
		return schedule.Keep, err
	}
	switch act {
	case schedule.Put:
		err = s.write(next)
	case schedule.Remove:
		err = retry(func() error { return os.Remove(s.fileOf(id)) })
	}
	if err != nil {
		return schedule.Keep, fmt.Errorf("update schedule %s: %w", id, err)
	}
	return act, nil
}

// readSets reads the annotation sets recorded (none when the file is missing).
func (s *Store) readSets() ([]schedule.AnnotationSet, error) {
	path := filepath.Join(s.dir, setsName)
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var sets []schedule.AnnotationSet
	if err := json.Unmarshal(data, &sets); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return sets, nil
}

func newestOf(sets []schedule.AnnotationSet) int64 {
	var n int64
	for _, set := range sets {
		n = max(n, set.Generation)
	}
	return n
}

// RegisterAnnotationSet records a task set and returns it and the newest generation.
func (s *Store) RegisterAnnotationSet(ctx context.Context, fp string, now time.Time) (schedule.AnnotationSet, int64, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return schedule.AnnotationSet{}, 0, fmt.Errorf("register annotation set: %w", err)
	}
	defer unlock()
	sets, err := s.readSets()
	if err != nil {
		return schedule.AnnotationSet{}, 0, fmt.Errorf("register annotation set: %w", err)
	}
	newest := newestOf(sets)
	for _, set := range sets {
		if set.Fingerprint == fp {
			return set, newest, nil
		}
	}
	set := schedule.AnnotationSet{Fingerprint: fp, Generation: newest + 1, FirstSeen: now.UTC().Round(0)}
	data, err := json.MarshalIndent(append(sets, set), "", "  ")
	if err != nil {
		return set, 0, fmt.Errorf("register annotation set: %w", err)
	}
	if err := writeAtomic(filepath.Join(s.dir, setsName), append(data, '\n')); err != nil {
		return set, 0, fmt.Errorf("register annotation set: %w", err)
	}
	return set, set.Generation, nil
}

// Pause marks a schedule paused.
func (s *Store) Pause(ctx context.Context, id string, now time.Time) error {
	_, err := s.modify(ctx, id, "pause", schedule.PauseChange(now))
	return err
}

// Resume clears paused and sets the next run.
func (s *Store) Resume(ctx context.Context, id string, next, now time.Time) error {
	_, err := s.modify(ctx, id, "resume", schedule.ResumeChange(next, now))
	return err
}

// Advance applies a if the schedule's next run still equals a.From.
func (s *Store) Advance(ctx context.Context, id string, a schedule.Advance) (bool, error) {
	return s.modify(ctx, id, "advance", a.Change())
}

type lease struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

// AcquireLease takes or renews the dispatcher lease.
func (s *Store) AcquireLease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (bool, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return false, fmt.Errorf("acquire scheduler lease: %w", err)
	}
	defer unlock()
	path := filepath.Join(s.dir, leaseName)
	var cur lease
	data, err := readFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &cur); err != nil {
			cur = lease{} // a torn or foreign file: treat the lease as free
		}
	case !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("acquire scheduler lease: %w", err)
	}
	if cur.Owner != "" && cur.Owner != owner && cur.Until.After(now) {
		return false, nil
	}
	data, err = json.Marshal(lease{Owner: owner, Until: now.Add(ttl).UTC()})
	if err != nil {
		return false, fmt.Errorf("acquire scheduler lease: %w", err)
	}
	if err := writeAtomic(path, data); err != nil {
		return false, fmt.Errorf("acquire scheduler lease: %w", err)
	}
	return true, nil
}

// ReleaseLease frees the lease if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, owner string) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("release scheduler lease: %w", err)
	}
	defer unlock()
	path := filepath.Join(s.dir, leaseName)
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release scheduler lease: %w", err)
	}
	var cur lease
	if json.Unmarshal(data, &cur) == nil && cur.Owner != owner {
		return nil
	}
	if err := retry(func() error { return os.Remove(path) }); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("release scheduler lease: %w", err)
	}
	return nil
}
