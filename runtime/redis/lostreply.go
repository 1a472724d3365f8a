package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/runtime/backend"
)

// An enqueue script inserts jobs once: run twice (go-redis sends a command
// again when the connection drops before its reply arrives), the second run
// fails with EXISTS although the first stored the jobs, and a caller told
// "failed" enqueues them again and they run twice. So the standalone
// enqueue scripts go out as onceCmd, which go-redis never sends again, and
// sendEnqueue settles a lost reply itself: it reads whether this call's
// jobs are stored (their records' field d is what this call wrote) and
// either reports them enqueued or, when none is, sends the script again.

// onceCmd is a command that go-redis must not send a second time.
type onceCmd struct{ *goredis.Cmd }

// NoRetry tells go-redis not to send the command again after a failure.
func (onceCmd) NoRetry() bool { return true }

// maxSends bounds how often a change sent once is sent again after an
// answer saying it did not run (a refusal, or a lost reply whose settling
// read found nothing stored; go-redis's default MaxRetries is 3 as well).
const maxSends = 3

// processor sends a command: a client or a pipeline.
type processor interface {
	Process(ctx context.Context, cmd goredis.Cmder) error
}

// evalShaOnce sends script s through c (a client or a pipeline) as a
// command that go-redis sends once (a pipeline holding one is not sent
// again either).
func evalShaOnce(ctx context.Context, c processor, s *goredis.Script, keys []string, args ...any) *goredis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, "evalsha", s.Hash(), len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	cmd := goredis.NewCmd(ctx, a...)
	if len(keys) > 0 {
		cmd.SetFirstKeyPos(3)
	}
	_ = c.Process(ctx, onceCmd{cmd})
	return cmd
}

// evalOnce runs script s once: it sends it again only after an answer
// saying it did not run: NOSCRIPT (Redis forgot the scripts: they are
// loaded again) or a refusal go-redis would have retried (refusedUnrun).
func (b *Backend) evalOnce(ctx context.Context, s *goredis.Script, keys []string, args ...any) *goredis.Cmd {
	loaded := false
	for n := 1; ; n++ {
		cmd := evalShaOnce(ctx, b.c, s, keys, args...)
		switch err := cmd.Err(); {
		case isNoScript(err) && !loaded:
			loaded = true
			for _, s := range allScripts {
				if err := s.Load(ctx, b.c).Err(); err != nil {
					return cmd
				}
			}
		case refusedUnrun(err) && n < maxSends:
			t := time.NewTimer(time.Duration(8<<n) * time.Millisecond) // 16, 32 ms
			select {
			case <-ctx.Done():
				t.Stop()
				return cmd
			case <-t.C:
			}
		default:
			return cmd
		}
	}
}

// refusedUnrun reports whether err is an answer of Redis refusing a
// command without running it, for a while (a replica loading its data, a
// failover, a Cluster resharding, too many clients): go-redis sends a
// command again after these, and so does evalOnce.
func refusedUnrun(err error) bool {
	for _, p := range []string{"LOADING ", "READONLY ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ", "NOREPLICAS ", "ERR max number of clients reached"} {
		if err != nil && strings.HasPrefix(err.Error(), p) {
			return true
		}
	}
	return false
}

// replyLost reports whether err leaves unknown whether a command ran: the
// connection failed (no reply from Redis, which would be a goredis.Error)
// while ctx is still live.
func replyLost(ctx context.Context, err error) bool {
	var reply goredis.Error
	return err != nil && !errors.As(err, &reply) && ctx.Err() == nil
}

// sendEnqueue runs send, which sends one enqueue script for jobs (clamped,
// on a standalone Redis) with evalOnce. When the reply is lost it settles
// the outcome: stored, it returns the jobs' results (settled) and no
// command; not stored, it sends again (maxSends in all). Otherwise
// it returns the last command, whose error the caller handles as before.
func (b *Backend) sendEnqueue(ctx context.Context, jobs []*backend.Job, send func() *goredis.Cmd) (cmd *goredis.Cmd, settled []backend.EnqueueResult) {
	for n := 1; ; n++ {
		cmd = send()
		err := cmd.Err()
		if n > 1 && err != nil && strings.HasPrefix(err.Error(), "EXISTS") {
			// An earlier send, still on its way when this call found
			// nothing stored, may have run since.
			if res, err := b.enqueuedBefore(ctx, jobs); err == nil && res != nil {
				return nil, res
			}
			return cmd, nil
		}
		if !replyLost(ctx, err) {
			return cmd, nil
		}
		res, err := b.enqueuedBefore(ctx, jobs)
		if err != nil || res != nil || n == maxSends {
			return cmd, res
		}
	}
}

// enqueuedBefore reports whether an enqueue script for jobs ran: it returns
// their results when one of them is stored as this call stored it (its task
// and field d, which never change, as this call wrote them; the script
// inserts all of a batch or none, so the others were duplicates by unique
// key), nil when none is. A job that held the id before, with the same task
// and d, is the same job enqueued again: taken for this call's.
func (b *Backend) enqueuedBefore(ctx context.Context, jobs []*backend.Job) ([]backend.EnqueueResult, error) {
	got := make([]*goredis.SliceCmd, len(jobs))
	if _, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, j := range jobs {
			got[i] = p.HMGet(ctx, b.qp(j.Queue)+"j:"+j.ID, "tk", "d")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	res := make([]backend.EnqueueResult, len(jobs))
	stored := -1
	for i, j := range jobs {
		d, err := appendStatic(nil, j)
		if err != nil {
			return nil, err
		}
		if f := got[i].Val(); f[0] == j.Task && f[1] == string(d) {
			res[i] = backend.EnqueueResult{ID: j.ID}
			stored = i
		}
	}
	if stored < 0 {
		return nil, nil
	}
	for i, j := range jobs {
		if res[i].ID != "" {
			continue
		}
		if j.UniqueKey == "" {
			return nil, fmt.Errorf("job %s is not stored but job %s of the same batch is", j.ID, jobs[stored].ID)
		}
		m, err := b.c.ZRange(ctx, b.uniqueKey(j), -1, -1).Result()
		if err != nil {
			return nil, err
		}
		if len(m) == 0 || len(m[0]) <= 16 {
			return nil, fmt.Errorf("job %s is not stored and no job holds its unique key %q", j.ID, j.UniqueKey)
		}
		res[i] = backend.EnqueueResult{ID: m[0][16:], Duplicate: true}
	}
	return res, nil
}

// setOnce stores value at key unless key exists (SET NX), sent once; a lost
// reply is settled by reading key back. It reports whether this call stored
// value.
func (b *Backend) setOnce(ctx context.Context, key string, value []byte) (bool, error) {
	for n := 1; ; n++ {
		cmd := goredis.NewCmd(ctx, "set", key, value, "nx")
		cmd.SetFirstKeyPos(1)
		err := b.c.Process(ctx, onceCmd{cmd})
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, goredis.Nil):
			return false, nil
		case !replyLost(ctx, err) || n == maxSends:
			return false, err
		}
		got, gerr := b.c.Get(ctx, key).Result()
		switch {
		case gerr == nil:
			return got == string(value), nil
		case !errors.Is(gerr, goredis.Nil):
			return false, err
		}
		// Not stored: send again.
	}
}

// completedBefore settles Complete calls whose replies were lost: per
// outcome 1 when its job's history holds the outcome's attempt (the script
// appends it, and nothing else writes that record: the job may have moved on
// since, e.g. a retrying outcome's job claimed again), 2 when it is still
// running under the outcome's lease (the script did not run: the command
// never reached Redis, and may be sent again), -1 when the job is gone, 0
// when it is not. What a lost call's retention deleted is left for the
// sweeps (its ids stay in the location hash until then).
func (b *Backend) completedBefore(ctx context.Context, outcomes []backend.Outcome, idx []int, queues []string) (map[int]int64, error) {
	got := make([]*goredis.SliceCmd, len(idx))
	if _, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for k, i := range idx {
			got[k] = p.HMGet(ctx, b.qp(queues[k])+"j:"+outcomes[i].Lease.JobID, "st", "lt", "h")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(idx))
	for k, i := range idx {
		o := &outcomes[i]
		f := got[k].Val()
		if f[0] == nil {
			out[i] = -1
			continue
		}
		mine, err := encodeAttempt(o.Attempt)
		if err != nil {
			return nil, err
		}
		h, _ := f[2].(string)
		switch {
		case hasAttempt(h, mine):
			out[i] = 1
		case f[0] == string(backend.StateRunning) && f[1] == strconv.FormatInt(o.Lease.Token, 10):
			out[i] = 2 // still held: the script did not run
		}
	}
	return out, nil
}

// hasAttempt reports whether history h (field h) holds the attempt whose
// encoding is mine.
func hasAttempt(h, mine string) bool {
	as, err := decodeAttempts(h)
	if err != nil {
		return false
	}
	for _, a := range as {
		if s, err := encodeAttempt(a); err == nil && s == mine {
			return true
		}
	}
	return false
}

// casApplied settles a casScript call whose reply was lost: 1 when job id
// holds the call's nonce in field cx (each call writes its own, with its
// fields: the job may have moved on since, e.g. a retried job claimed
// again), -1 when it is gone, else 0 (read it again).
func (b *Backend) casApplied(ctx context.Context, q, id, nonce string) (int64, error) {
	got, err := b.c.HMGet(ctx, b.qp(q)+"j:"+id, "tk", "cx").Result()
	if err != nil {
		return 0, err
	}
	switch {
	case got[1] == nonce:
		return 1, nil
	case got[0] == nil:
		return -1, nil
	}
	return 0, nil
}

// casNonce returns a value no other cas call writes to field cx.
func casNonce() string {
	var n [8]byte
	_, _ = rand.Read(n[:]) // never fails (crypto/rand)
	return hex.EncodeToString(n[:])
}

// markUnsettled records that the outcomes of leases were sent by a Complete
// whose reply was lost and which failed before settling them: the caller
// sends them again (worker.store), and a "lease lost" answer then may be
// their own earlier send, stored.
func (b *Backend) markUnsettled(leases []backend.Lease) {
	b.leasedMu.Lock()
	defer b.leasedMu.Unlock()
	if b.unsettled == nil {
		b.unsettled = map[backend.Lease]bool{}
	}
	for _, l := range leases {
		b.unsettled[l] = true
	}
}

// takeUnsettled reports which outcomes were marked unsettled (nil: none),
// and forgets them: one lock a call, none held when nothing is marked.
func (b *Backend) takeUnsettled(outcomes []backend.Outcome) map[int]bool {
	b.leasedMu.Lock()
	defer b.leasedMu.Unlock()
	if len(b.unsettled) == 0 {
		return nil
	}
	var was map[int]bool
	for i, o := range outcomes {
		if b.unsettled[o.Lease] {
			if was == nil {
				was = map[int]bool{}
			}
			was[i] = true
			delete(b.unsettled, o.Lease)
		}
	}
	return was
}

// leasesOf returns the leases of outcomes[i] for i in idx.
func leasesOf(outcomes []backend.Outcome, idx []int) []backend.Lease {
	out := make([]backend.Lease, len(idx))
	for k, i := range idx {
		out[k] = outcomes[i].Lease
	}
	return out
}

// sendClaim runs the claim script (args a, keys routed by route, over
// queues: none is every queue) once, or settles its first send when given
// one whose reply was lost: when claimedBefore finds jobs that send leased
// to worker, it returns them (settled) and no command; when it finds none,
// the claim did not run (or took nothing) and is sent again, maxSends in
// all (handed: the jobs this Claim handed out already; see claimedBefore);
// when it cannot tell (Redis out of reach), it returns the failed
// command, and what the claim may have leased waits for its lease to
// expire, as before.
func (b *Backend) sendClaim(ctx context.Context, first *goredis.Cmd, route string, queues []string, a []any, req backend.ClaimRequest, handed []*backend.Job, now, until time.Time) (cmd *goredis.Cmd, settled []*backend.Job) {
	cmd = first
	for n := 1; ; n++ {
		if cmd == nil {
			cmd = b.evalOnce(ctx, claimScript, b.meta(route), a...)
		}
		if !replyLost(ctx, cmd.Err()) {
			return cmd, nil
		}
		jobs, err := b.claimedBefore(ctx, queues, req.Tasks, req.Worker, handed, now, until)
		if err != nil || len(jobs) > 0 || n == maxSends {
			return cmd, jobs
		}
		cmd = nil
	}
}

// claimedBefore returns the jobs of queues (none: every queue) and tasks
// (none: every task) that a claim by worker at now, leasing until until,
// took: running under worker, with that start and lease end (the lease
// index lists jobs by the end of their lease), and neither among handed
// (the jobs handed out by earlier rounds of the same Claim) nor among the
// jobs this backend already handed out under that lease (an earlier claim
// of a clock that stands still). The tasks and handed keep it right when
// this backend's memory of leases is full: a Claim of a limited task
// claims the other tasks first, at the same now. It writes nothing.
func (b *Backend) claimedBefore(ctx context.Context, queues, tasks []string, worker string, handed []*backend.Job, now, until time.Time) ([]*backend.Job, error) {
	if len(queues) == 0 {
		var err error
		if queues, err = b.allQueues(ctx); err != nil {
			return nil, err
		}
	}
	nowKey, untilKey := timeKey(now), timeKey(until)
	rng := &goredis.ZRangeBy{Min: "[" + untilKey, Max: "(" + timeKey(until.Add(time.Microsecond))}
	cmds := make([]*goredis.StringSliceCmd, len(queues))
	if _, err := b.pipeline(ctx, func(p goredis.Pipeliner) {
		for i, q := range queues {
			cmds[i] = p.ZRangeByLex(ctx, b.qp(q)+"lease", rng)
		}
	}); err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range cmds {
		for _, m := range c.Val() {
			if len(m) > len(untilKey) {
				ids = append(ids, m[len(untilKey):])
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	jobs, err := b.loadMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	var out []*backend.Job
	b.leasedMu.Lock()
	defer b.leasedMu.Unlock()
	for _, j := range jobs {
		if j == nil || j.State != backend.StateRunning || j.LeaseOwner != worker ||
			timeKey(j.StartedAt) != nowKey || timeKey(j.LeaseUntil) != untilKey ||
			(len(tasks) > 0 && !slices.Contains(tasks, j.Task)) ||
			slices.ContainsFunc(handed, func(h *backend.Job) bool { return h.ID == j.ID && h.LeaseToken == j.LeaseToken }) {
			continue
		}
		if l, known := b.leased[j.ID]; known && l.token == j.LeaseToken {
			continue // handed out (an entry of an older lease is stale)
		}
		out = append(out, j)
	}
	return out, nil
}
