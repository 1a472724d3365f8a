// Package redis is the Redis backend of Nuvom: jobs of many worker processes
// on many hosts, shared through one Redis (standalone, Sentinel or Cluster).
//
// Every state change is one Lua script that runs atomically on the server: a
// claim takes a batch of jobs in one round trip, completions are applied in
// batches with the fencing token checked inside the script (a worker that
// lost its lease can never complete, fail or extend the job), and every key
// of one queue carries the queue's hash tag ({queue}), so that each script
// touches one Redis Cluster slot; operations over several queues run one
// script per queue. Workers are woken across hosts by Redis pub/sub, not by
// polling. Stats reads per-state indexes: its cost is O(queues), not O(jobs).
//
// Differences from the single-host backends, all documented in the README:
// unique keys are matched among the jobs of the same task on the same queue
// (a task's jobs normally all go to one queue); an Enqueue batch spanning
// several queues is all-or-nothing through a rollback rather than one
// transaction; what survives a Redis crash is what its appendfsync policy keeps.
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/runtime/backend"
)

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("redis backend is closed")

// Option configures the backend.
type Option func(*options)

type options struct {
	prefix      string
	cluster     bool
	keepCount   int
	keepFor     time.Duration
	logger      *slog.Logger
	now         func() time.Time
	tlsInsecure bool
}

// WithPrefix sets the prefix of every key (default "nuvom"): several
// independent Nuvom installations may share one Redis with different prefixes.
func WithPrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithCluster makes Open treat the URL as the address of a Redis Cluster
// (more seed nodes may be given as addr= query parameters).
func WithCluster(on bool) Option { return func(o *options) { o.cluster = on } }

// WithRetention bounds the finished jobs (succeeded, failed, cancelled,
// quarantined) kept per queue: at most keep of them (0: no limit), and none
// finished more than keepFor ago (0: no limit). The oldest go first; they
// are deleted as jobs complete (at most 1000 a batch) and by Prune. A
// workflow step that a pending step waits for is kept, and not counted,
// until none does (wfkeep.go).
func WithRetention(keep int, keepFor time.Duration) Option {
	return func(o *options) { o.keepCount, o.keepFor = keep, keepFor }
}

// WithLogger sets where the backend reports jobs it quarantines because
// their records cannot be read.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the clock retention by age reads (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Backend is a backend.Backend on Redis. Make it with Open or New.
type Backend struct {
	c      goredis.UniversalClient
	owned  bool
	o      options
	loc    string // hash: job id -> queue
	queues string // set of queue names
	ch     string // pub/sub channel of new work

	limits limitCache // the task limits claims enforce (limits.go)

	mu     sync.Mutex
	closed bool
	subs   map[uint64]chan struct{}
	nsub   uint64
	ps     *goredis.PubSub
	psDone chan struct{}

	// leased remembers the queue of jobs this process claimed, so that
	// Complete, Extend and Release need not look it up, and the lease token
	// it handed out, so that a lost claim reply is not settled without a job
	// claimed again under a new lease (claimedBefore).
	leasedMu sync.Mutex
	leased   map[string]leasedJob
	// unsettled holds the leases of outcomes sent by a Complete that failed
	// after losing a reply, before it could tell whether they were stored
	// (lostreply.go); nil until one does.
	unsettled map[backend.Lease]bool

	// reg remembers when this backend added a queue and task ("queue\x00task")
	// to the queues and tasks sets (see registered).
	regMu sync.Mutex
	reg   map[string]time.Time

	// wfSweepFrom is the last workflow id the sweep of workflows looked
	// at, where its next pass starts ("": the first; wfgc.go).
	wfSweepMu   sync.Mutex
	wfSweepFrom string
	wfSweptAt   time.Time // when RecoverExpired last swept (sweepWorkflowsEvery)
}

var _ backend.Backend = (*Backend)(nil)

// ParseURL turns a URL into client options. Forms:
//
//	redis://[user:password@]host:port[/db][?options]   plain TCP
//	rediss://...                                      TLS
//	redis://[user:password@]sentinel:port/db?master_name=mymaster[&addr=sentinel2:port]  Sentinel
//	with WithCluster(true): redis://[user:password@]node:port[?addr=node2:port]          Cluster
//
// Query options are go-redis's (dial_timeout, read_timeout, pool_size, ...).
// The protocol is RESP2 unless the URL asks for protocol=3: the backend uses
// nothing of RESP3, and RESP3 makes the client look for push notifications
// around every command (a system call each).
func ParseURL(rawURL string, cluster bool) (goredis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis: parse URL: %w", err)
	}
	resp2 := !u.Query().Has("protocol")
	switch {
	case cluster:
		o, err := goredis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis: parse cluster URL: %w", err)
		}
		if resp2 {
			o.Protocol = 2
		}
		return goredis.NewClusterClient(o), nil
	case u.Query().Has("master_name"):
		o, err := goredis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis: parse Sentinel URL: %w", err)
		}
		if resp2 {
			o.Protocol = 2
		}
		return goredis.NewFailoverClient(o), nil
	}
	o, err := goredis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis: parse URL: %w", err)
	}
	if resp2 {
		o.Protocol = 2
	}
	if o.TLSConfig != nil && o.TLSConfig.MinVersion == 0 {
		o.TLSConfig.MinVersion = tls.VersionTLS12
	}
	return goredis.NewClient(o), nil
}

// Open connects to the Redis at rawURL (see ParseURL) and checks that it answers.
func Open(rawURL string, opts ...Option) (*Backend, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	c, err := ParseURL(rawURL, o.cluster)
	if err != nil {
		return nil, err
	}
	b, err := New(c, opts...)
	if err != nil {
		c.Close()
		return nil, err
	}
	b.owned = true
	return b, nil
}

// New uses a client the caller made (Close does not close it).
func New(c goredis.UniversalClient, opts ...Option) (*Backend, error) {
	o := options{prefix: "nuvom", now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	b := &Backend{c: c, o: o, loc: o.prefix + ":loc", queues: o.prefix + ":queues", ch: o.prefix + ":wake",
		subs: map[uint64]chan struct{}{}, leased: map[string]leasedJob{}, reg: map[string]time.Time{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return nil, ConnectError(c, err)
	}
	for _, s := range allScripts {
		if err := s.Load(ctx, c).Err(); err != nil {
			return nil, fmt.Errorf("redis: load scripts: %w", err)
		}
	}
	if err := b.checkLayout(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// checkLayout refuses data written by the layout before the state indexes
// held bare ids (it kept an index of every id, "P all", and state index
// entries that began with the run-at): this build would misread it. One
// EXISTS per queue.
func (b *Backend) checkLayout(ctx context.Context) error {
	queues, err := b.c.SMembers(ctx, b.queues).Result()
	if err != nil {
		return fmt.Errorf("redis: read the queues under prefix %q: %w", b.o.prefix, err)
	}
	if len(queues) == 0 {
		return nil
	}
	cmds, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, q := range queues {
			p.Exists(ctx, b.qp(q)+"all")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: check the layout of the data under prefix %q: %w", b.o.prefix, err)
	}
	for i, c := range cmds {
		if c.(*goredis.IntCmd).Val() > 0 {
			return fmt.Errorf("redis: queue %q under prefix %q was written by an earlier Nuvom build, whose layout this one "+
				"cannot read (it has the key %s): finish or purge its jobs with the build that wrote them, or give this one "+
				"another prefix (?prefix= in NUVOM_REDIS_URL)", queues[i], b.o.prefix, b.qp(queues[i])+"all")
		}
	}
	return nil
}

// Client returns the underlying client.
func (b *Backend) Client() goredis.UniversalClient { return b.c }

// qp returns the key prefix of queue q: every key of q carries its hash tag.
func (b *Backend) qp(q string) string { return b.o.prefix + ":{" + q + "}:" }

// meta returns the routing key of queue q (KEYS[1] of its scripts).
func (b *Backend) meta(q string) []string { return []string{b.qp(q) + "m"} }

func (b *Backend) check(ctx context.Context, op string) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return fmt.Errorf("redis: %s: %w", op, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	return nil
}

// wrap adds context to err, wrapping ctx.Err() when ctx ended.
func wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("redis: %s: %w (%w)", op, cerr, err)
	}
	return fmt.Errorf("redis: %s: %w", op, err)
}

// allQueues returns every queue name known.
func (b *Backend) allQueues(ctx context.Context) ([]string, error) {
	return b.c.SMembers(ctx, b.queues).Result()
}

// queuesOfAll is queuesOf for any number of ids: 4,000 a command.
func (b *Backend) queuesOfAll(ctx context.Context, ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for c := range slices.Chunk(ids, 4000) {
		qs, err := b.queuesOf(ctx, c)
		if err != nil {
			return nil, err
		}
		out = append(out, qs...)
	}
	return out, nil
}

// queuesOf returns the queue of each id ("" when unknown).
func (b *Backend) queuesOf(ctx context.Context, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	var missing []int
	b.leasedMu.Lock()
	for i, id := range ids {
		if l, ok := b.leased[id]; ok {
			out[i] = l.queue
		} else {
			missing = append(missing, i)
		}
	}
	b.leasedMu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	ask := make([]string, len(missing))
	for k, i := range missing {
		ask[k] = ids[i]
	}
	vals, err := b.c.HMGet(ctx, b.loc, ask...).Result()
	if err != nil {
		return nil, err
	}
	for k, i := range missing {
		if s, ok := vals[k].(string); ok {
			out[i] = s
		}
	}
	return out, nil
}

// leasedJob is what leased remembers of a claimed job.
type leasedJob struct {
	queue string
	token int64
}

func (b *Backend) remember(jobs []*backend.Job) {
	b.leasedMu.Lock()
	for _, j := range jobs {
		if len(b.leased) < 1<<16 {
			b.leased[j.ID] = leasedJob{j.Queue, j.LeaseToken}
		}
	}
	b.leasedMu.Unlock()
}

// forgetLeases forgets the jobs of leases this process no longer holds
// (cancelled while running, recovered by another worker, deleted), unless
// it holds a newer lease of the job: left behind, they would fill leased,
// which stops remembering at 1<<16 jobs.
func (b *Backend) forgetLeases(leases []backend.Lease) {
	b.leasedMu.Lock()
	for _, l := range leases {
		if j, ok := b.leased[l.JobID]; ok && j.token == l.Token {
			delete(b.leased, l.JobID)
		}
	}
	b.leasedMu.Unlock()
}

func (b *Backend) forget(ids []string) {
	b.leasedMu.Lock()
	for _, id := range ids {
		delete(b.leased, id)
	}
	b.leasedMu.Unlock()
}

// Close stops the subscription and, when Open made the client, closes it. It is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	ps, done := b.ps, b.psDone
	b.ps = nil
	b.mu.Unlock()
	var errs []error
	if ps != nil {
		errs = append(errs, ps.Close())
		<-done
	}
	if b.owned {
		errs = append(errs, b.c.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}

// Subscribe returns a channel signalled when work may be ready, in this
// process or (through Redis pub/sub) in any other sharing the Redis.
func (b *Backend) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ch, func() {}
	}
	if b.ps == nil {
		b.ps = b.c.Subscribe(context.Background(), b.ch)
		b.psDone = make(chan struct{})
		go b.listen(b.ps, b.psDone)
	}
	id := b.nsub
	b.nsub++
	b.subs[id] = ch
	return ch, func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	}
}

// listen forwards pub/sub messages to the subscribers until ps is closed.
func (b *Backend) listen(ps *goredis.PubSub, done chan<- struct{}) {
	defer close(done)
	for range ps.Channel() {
		b.notify()
	}
}

// notify signals every subscriber of this process without blocking.
func (b *Backend) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range b.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// hashToMap turns a flat HGETALL reply into a map.
func hashToMap(v any) (map[string]string, error) {
	arr, ok := v.([]any)
	if !ok || len(arr)%2 != 0 {
		return nil, fmt.Errorf("unexpected reply %T", v)
	}
	m := make(map[string]string, len(arr)/2)
	for i := 0; i < len(arr); i += 2 {
		k, _ := arr[i].(string)
		s, _ := arr[i+1].(string)
		m[k] = s
	}
	return m, nil
}

func strs(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// DeleteAll deletes every key under the backend's prefix (every job, index
// and queue of this installation), on every node of a Cluster. nuvom bench
// calls it on the fresh prefix it measured under.
func (b *Backend) DeleteAll(ctx context.Context) error {
	del := func(ctx context.Context, c goredis.UniversalClient) error {
		iter := c.Scan(ctx, 0, b.o.prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	var err error
	if cc, ok := b.c.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return del(ctx, c) })
	} else {
		err = del(ctx, b.c)
	}
	b.regMu.Lock()
	clear(b.reg)
	b.regMu.Unlock()
	if err != nil {
		return fmt.Errorf("redis: delete all keys under %s: %w", b.o.prefix, err)
	}
	return nil
}
