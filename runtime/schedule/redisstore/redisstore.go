// Package redisstore keeps schedules in Redis, next to the Redis backend:
// one hash of schedules (JSON), the dispatcher lease and the annotation sets,
// all under one hash tag so that every change is one optimistic transaction
// (WATCH/MULTI/EXEC) on one Redis Cluster slot. Several dispatcher processes
// on several hosts share it.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	goredis "github.com/redis/go-redis/v9"

	nredis "github.com/nuvom/nuvom/runtime/redis"
	"github.com/nuvom/nuvom/runtime/schedule"
)

// Store is a schedule.Store on Redis.
type Store struct {
	c     goredis.UniversalClient
	owned bool
	// keys: schedules (hash id -> JSON), lease (JSON), sets (hash fp -> JSON)
	scheds, lease, sets string
}

var _ schedule.Store = (*Store)(nil)

// Open connects to the Redis at rawURL (the URL forms of runtime/redis.ParseURL);
// prefix is the key prefix ("" means "nuvom", the backend's default).
func Open(rawURL, prefix string, cluster bool) (*Store, error) {
	c, err := nredis.ParseURL(rawURL, cluster)
	if err != nil {
		return nil, err
	}
	s := New(c, prefix)
	s.owned = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, nredis.ConnectError(c, err)
	}
	return s, nil
}

// New uses a client the caller made (Close does not close it).
func New(c goredis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = "nuvom"
	}
	p := prefix + ":{schedules}:"
	return &Store{c: c, scheds: p + "s", lease: p + "lease", sets: p + "sets"}
}

// Close closes the client when Open made it.
func (s *Store) Close() error {
	if s.owned {
		return s.c.Close()
	}
	return nil
}

func decode(data string) (schedule.Schedule, error) {
	var sc schedule.Schedule
	if err := json.Unmarshal([]byte(data), &sc); err != nil {
		return sc, fmt.Errorf("decode schedule: %w", err)
	}
	return schedule.Normalize(sc), nil
}

func encode(sc schedule.Schedule) (string, error) {
	data, err := json.Marshal(schedule.Normalize(sc))
	if err != nil {
		return "", fmt.Errorf("encode schedule %s: %w", sc.ID, err)
	}
	return string(data), nil
}

// tx runs fn in an optimistic transaction watching keys, again while another
// client changed them in between.
func (s *Store) tx(ctx context.Context, fn func(tx *goredis.Tx) error, keys ...string) error {
	for range 1000 {
		err := s.c.Watch(ctx, fn, keys...)
		if !errors.Is(err, goredis.TxFailedErr) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return errors.New("too much contention")
}

// List returns every schedule, sorted by ID.
func (s *Store) List(ctx context.Context) ([]schedule.Schedule, error) {
	m, err := s.c.HGetAll(ctx, s.scheds).Result()
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	out := make([]schedule.Schedule, 0, len(m))
	for id, data := range m {
		sc, err := decode(data)
		if err != nil {
			return nil, fmt.Errorf("list schedules: %s: %w", id, err)
		}
		out = append(out, sc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Get returns one schedule, or schedule.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (schedule.Schedule, error) {
	data, err := s.c.HGet(ctx, s.scheds, id).Result()
	if errors.Is(err, goredis.Nil) {
		return schedule.Schedule{}, fmt.Errorf("get schedule %s: %w", id, schedule.ErrNotFound)
	}
	if err != nil {
		return schedule.Schedule{}, fmt.Errorf("get schedule %s: %w", id, err)
	}
	sc, err := decode(data)
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
	data, err := encode(sc)
	if err != nil {
		return err
	}
	if err := s.c.HSet(ctx, s.scheds, sc.ID, data).Err(); err != nil {
		return fmt.Errorf("upsert schedule %s: %w", sc.ID, err)
	}
	return nil
}

// Delete removes a schedule.
func (s *Store) Delete(ctx context.Context, id string) error {
	n, err := s.c.HDel(ctx, s.scheds, id).Result()
	if err != nil {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("delete schedule %s: %w", id, schedule.ErrNotFound)
	}
	return nil
}

// modify reads, changes and writes one schedule atomically; fn returns false
// to leave it unchanged.
func (s *Store) modify(ctx context.Context, id, op string, fn func(sc *schedule.Schedule) bool) (bool, error) {
	changed := false
	err := s.tx(ctx, func(tx *goredis.Tx) error {
		changed = false
		data, err := tx.HGet(ctx, s.scheds, id).Result()
		if errors.Is(err, goredis.Nil) {
			return schedule.ErrNotFound
		}
		if err != nil {
			return err
		}
		sc, err := decode(data)
		if err != nil {
			return err
		}
		if !fn(&sc) {
			return nil
		}
		out, err := encode(sc)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error { return p.HSet(ctx, s.scheds, id, out).Err() })
		changed = err == nil
		return err
	}, s.scheds)
	if err != nil {
		return false, fmt.Errorf("%s schedule %s: %w", op, id, err)
	}
	return changed, nil
}

// Update applies fn's decision about the schedule id atomically.
func (s *Store) Update(ctx context.Context, id string, fn schedule.UpdateFunc) (schedule.Action, error) {
	act := schedule.Keep
	err := s.tx(ctx, func(tx *goredis.Tx) error {
		act = schedule.Keep
		var cur schedule.Schedule
		found := true
		data, err := tx.HGet(ctx, s.scheds, id).Result()
		switch {
		case errors.Is(err, goredis.Nil):
			found = false
		case err != nil:
			return err
		default:
			if cur, err = decode(data); err != nil {
				return err
			}
		}
		sets, err := s.readSets(ctx, tx)
		if err != nil {
			return err
		}
		next, a, err := schedule.UpdateChange(id, cur, found, newestOf(sets), fn)
		if err != nil {
			return err
		}
		var out string
		if a == schedule.Put {
			if out, err = encode(next); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			switch a {
			case schedule.Put:
				p.HSet(ctx, s.scheds, id, out)
			case schedule.Remove:
				p.HDel(ctx, s.scheds, id)
			}
			return nil
		})
		if err == nil {
			act = a
		}
		return err
	}, s.scheds, s.sets)
	if err != nil {
		return schedule.Keep, fmt.Errorf("update schedule %s: %w", id, err)
	}
	return act, nil
}

func (s *Store) readSets(ctx context.Context, tx *goredis.Tx) ([]schedule.AnnotationSet, error) {
	m, err := tx.HGetAll(ctx, s.sets).Result()
	if err != nil {
		return nil, err
	}
	out := make([]schedule.AnnotationSet, 0, len(m))
	for fp, data := range m {
		var set schedule.AnnotationSet
		if err := json.Unmarshal([]byte(data), &set); err != nil {
			return nil, fmt.Errorf("decode annotation set %s: %w", fp, err)
		}
		out = append(out, set)
	}
	return out, nil
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
	var set schedule.AnnotationSet
	var newest int64
	err := s.tx(ctx, func(tx *goredis.Tx) error {
		sets, err := s.readSets(ctx, tx)
		if err != nil {
			return err
		}
		newest = newestOf(sets)
		for _, x := range sets {
			if x.Fingerprint == fp {
				set = x
				return nil
			}
		}
		set = schedule.AnnotationSet{Fingerprint: fp, Generation: newest + 1, FirstSeen: now.UTC().Round(0)}
		data, err := json.Marshal(set)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error { return p.HSet(ctx, s.sets, fp, string(data)).Err() })
		newest = set.Generation
		return err
	}, s.sets)
	if err != nil {
		return schedule.AnnotationSet{}, 0, fmt.Errorf("register annotation set: %w", err)
	}
	return set, newest, nil
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

// AcquireLease takes or renews the dispatcher lease. Its deadline is the
// caller's now+ttl (dispatchers' clocks are assumed roughly in step).
func (s *Store) AcquireLease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (bool, error) {
	ok := false
	err := s.tx(ctx, func(tx *goredis.Tx) error {
		ok = false
		var cur lease
		data, err := tx.Get(ctx, s.lease).Result()
		switch {
		case errors.Is(err, goredis.Nil):
		case err != nil:
			return err
		default:
			if json.Unmarshal([]byte(data), &cur) != nil {
				cur = lease{} // a foreign value: treat the lease as free
			}
		}
		if cur.Owner != "" && cur.Owner != owner && cur.Until.After(now) {
			return nil
		}
		out, err := json.Marshal(lease{Owner: owner, Until: now.Add(ttl).UTC()})
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error { return p.Set(ctx, s.lease, string(out), 0).Err() })
		ok = err == nil
		return err
	}, s.lease)
	if err != nil {
		return false, fmt.Errorf("acquire scheduler lease: %w", err)
	}
	return ok, nil
}

// ReleaseLease frees the lease if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, owner string) error {
	err := s.tx(ctx, func(tx *goredis.Tx) error {
		data, err := tx.Get(ctx, s.lease).Result()
		if errors.Is(err, goredis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		var cur lease
		if json.Unmarshal([]byte(data), &cur) != nil || cur.Owner != owner {
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error { return p.Del(ctx, s.lease).Err() })
		return err
	}, s.lease)
	if err != nil {
		return fmt.Errorf("release scheduler lease: %w", err)
	}
	return nil
}
