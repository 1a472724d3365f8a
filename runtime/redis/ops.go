package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/runtime/backend"
)

// evalSha runs s in pipe by its SHA (the scripts are loaded at Open).
func evalSha(ctx context.Context, p goredis.Pipeliner, s *goredis.Script, keys []string, args ...any) *goredis.Cmd {
	return s.EvalSha(ctx, p, keys, args...)
}

// isNoScript reports whether err says a script is not loaded (Redis restarted).
func isNoScript(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") }

// pipeline runs fn's commands; when Redis forgot the scripts (a restart), it
// loads them and runs fn again.
func (b *Backend) pipeline(ctx context.Context, fn func(p goredis.Pipeliner)) ([]goredis.Cmder, error) {
	for try := 0; ; try++ {
		cmds, err := b.c.Pipelined(ctx, func(p goredis.Pipeliner) error { fn(p); return nil })
		if try == 0 && isNoScript(err) {
			for _, s := range allScripts {
				if lerr := s.Load(ctx, b.c).Err(); lerr != nil {
					return cmds, lerr
				}
			}
			continue
		}
		return cmds, err
	}
}

// eval runs one script by its SHA, outside a pipeline (a pipeline of one
// command costs more); when Redis forgot the scripts (a restart), it loads
// them and runs it again.
func (b *Backend) eval(ctx context.Context, s *goredis.Script, keys []string, args ...any) *goredis.Cmd {
	cmd := s.EvalSha(ctx, b.c, keys, args...)
	if isNoScript(cmd.Err()) {
		for _, s := range allScripts {
			if err := s.Load(ctx, b.c).Err(); err != nil {
				return cmd
			}
		}
		cmd = s.EvalSha(ctx, b.c, keys, args...)
	}
	return cmd
}

// run runs one script (loading it again if Redis forgot it).
func (b *Backend) run(ctx context.Context, s *goredis.Script, keys []string, args ...any) (any, error) {
	return s.Run(ctx, b.c, keys, args...).Result()
}

// Enqueue inserts jobs all-or-nothing: ids are reserved in the location hash
// (failing the batch when one exists), then each queue's jobs are inserted by
// one script; when a step fails, what was done is undone.
func (b *Backend) Enqueue(ctx context.Context, jobs []*backend.Job) ([]backend.EnqueueResult, error) {
	return b.enqueue(ctx, jobs, false, nil, "")
}

// enqueue is Enqueue; pending allows the pending steps of a workflow, the
// records of the ids in parents (a workflow's steps that have children)
// get field wp (wfkeep.go), and with wf (jobs are the steps of workflow wf)
// every record gets field wf (wfgc.go).
func (b *Backend) enqueue(ctx context.Context, jobs []*backend.Job, pending bool, parents map[string]bool, wf string) ([]backend.EnqueueResult, error) {
	if err := b.check(ctx, "enqueue"); err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return []backend.EnqueueResult{}, nil
	}
	seen := make(map[string]bool, len(jobs))
	byQueue := map[string][]int{}
	var order []string
	clamped := make([]*backend.Job, len(jobs))
	for i, j := range jobs {
		switch {
		case j == nil:
			return nil, fmt.Errorf("redis: enqueue: job %d of %d is nil", i+1, len(jobs))
		case j.ID == "":
			return nil, fmt.Errorf("redis: enqueue: job %d of %d (task %s) has no id", i+1, len(jobs), j.Task)
		case j.Task == "":
			return nil, fmt.Errorf("redis: enqueue job %s: no task name", j.ID)
		case j.Queue == "":
			return nil, fmt.Errorf("redis: enqueue job %s: no queue", j.ID)
		case j.State != backend.StateQueued && j.State != backend.StateScheduled && (!pending || j.State != backend.StatePending):
			return nil, fmt.Errorf("redis: enqueue job %s: state %q, want queued or scheduled", j.ID, j.State)
		case seen[j.ID]:
			return nil, fmt.Errorf("redis: enqueue job %s: id appears twice in the batch", j.ID)
		}
		seen[j.ID] = true
		c := *j
		c.Attempts = slices.Clone(j.Attempts)
		c.ClampTimes()
		clamped[i] = &c
		if _, ok := byQueue[j.Queue]; !ok {
			order = append(order, j.Queue)
		}
		byQueue[j.Queue] = append(byQueue[j.Queue], i)
	}
	jobArgs := func(j *backend.Job) ([]any, error) {
		rest, err := restFields(j)
		if err != nil {
			return nil, fmt.Errorf("redis: enqueue: %w", err)
		}
		if parents[j.ID] {
			rest = append(rest, "wp", "1")
		}
		if wf != "" {
			rest = append(rest, "wf", wf)
		}
		a := make([]any, 0, 12+len(rest))
		a = append(a, j.ID, j.Task, string(j.State), prioKey(j.Priority), timeKey(j.RunAt), j.Queue)
		if j.UniqueKey != "" {
			a = append(a, 1, j.UniqueKey, timeKey(j.UniqueUntil), b.uniqueKey(j), timeKey(j.CreatedAt))
		} else {
			a = append(a, 0)
		}
		a = append(a, len(rest)/2)
		return append(a, rest...), nil
	}
	var (
		cmds []goredis.Cmder
		err  error
	)
	// The lean scripts take jobs without unique keys on a standalone Redis,
	// whose queues and tasks are registered, and no pending workflow step
	// (indexed by state only: the general script's rule).
	if len(clamped) == 1 && noUniqueKeys(clamped) && !pending && !b.cluster() && b.registered(clamped) == 0 {
		return b.enqueueOne(ctx, jobs[0], clamped[0])
	}
	if len(clamped) > 1 && noUniqueKeys(clamped) && !pending && !b.cluster() && b.registered(clamped) == 0 {
		return b.enqueueMany(ctx, clamped, byQueue, order)
	}
	if !b.cluster() {
		// One script: the whole batch, atomically.
		a := make([]any, 0, 7+len(jobs)*16)
		reg := b.registered(clamped)
		a = append(a, b.qp(order[0]), b.ch, b.loc, b.queues, reg, b.o.prefix, len(jobs))
		for _, j := range clamped {
			ja, err := jobArgs(j)
			if err != nil {
				return nil, err
			}
			a = append(a, ja...)
		}
		cmd, settled := b.sendEnqueue(ctx, clamped, func() *goredis.Cmd { return b.evalOnce(ctx, enqueueScript, b.meta(order[0]), a...) })
		if settled != nil {
			if reg == 1 {
				b.register(clamped)
			}
			b.notify()
			return settled, nil
		}
		if err = cmd.Err(); err != nil {
			if strings.HasPrefix(err.Error(), "EXISTS") {
				return nil, fmt.Errorf("redis: enqueue: %w", err)
			}
			if ctx.Err() != nil {
				// The script may have run although its reply was lost.
				b.undoEnqueue(clamped, byQueue, order)
			}
			return nil, wrap(ctx, "enqueue", err)
		}
		res := make([]backend.EnqueueResult, len(jobs))
		if reg == 1 {
			b.register(clamped)
		}
		out := strs(cmd.Val())
		for i, j := range jobs {
			res[i] = backend.EnqueueResult{ID: j.ID}
			if i < len(out) && out[i] != "" {
				res[i] = backend.EnqueueResult{ID: out[i], Duplicate: true}
			}
		}
		b.notify()
		return res, nil
	}
	// Cluster: ids reserved first, then one script per queue, undone on failure.
	args := make(map[string][]any, len(order))
	for _, q := range order {
		idx := byQueue[q]
		a := make([]any, 0, 7+len(idx)*16)
		a = append(a, b.qp(q), b.ch, "", "", 1, b.o.prefix, len(idx))
		for _, i := range idx {
			ja, err := jobArgs(clamped[i])
			if err != nil {
				return nil, err
			}
			a = append(a, ja...)
		}
		args[q] = a
	}
	if err := b.reserve(ctx, clamped); err != nil {
		return nil, err
	}
	cmds, err = b.pipeline(ctx, func(p goredis.Pipeliner) {
		p.SAdd(ctx, b.queues, toAny(order)...)
		for _, q := range order {
			evalSha(ctx, p, enqueueScript, b.meta(q), args[q]...)
		}
	})
	if err == nil {
		for _, c := range cmds {
			if c.Err() != nil {
				err = c.Err()
				break
			}
		}
	}
	if err != nil {
		b.undoEnqueue(clamped, byQueue, order)
		return nil, wrap(ctx, "enqueue", err)
	}
	res := make([]backend.EnqueueResult, len(jobs))
	var dups []string
	for k, q := range order {
		out := strs(cmds[k+1].(*goredis.Cmd).Val())
		for n, i := range byQueue[q] {
			res[i] = backend.EnqueueResult{ID: jobs[i].ID}
			if n < len(out) && out[n] != "" {
				res[i] = backend.EnqueueResult{ID: out[n], Duplicate: true}
				dups = append(dups, jobs[i].ID)
			}
		}
	}
	if len(dups) > 0 {
		// The batch is stored; forgetting the reservations of the duplicates is cleanup.
		b.c.HDel(context.WithoutCancel(ctx), b.loc, dups...)
	}
	b.notify()
	return res, nil
}

// enqueueOne inserts j (c: j clamped), a single job without a unique key
// whose queue and task are registered, on a standalone Redis: one lean script.
func (b *Backend) enqueueOne(ctx context.Context, j, c *backend.Job) ([]backend.EnqueueResult, error) {
	p := b.qp(c.Queue)
	pk, ra := prioKey(c.Priority), timeKey(c.RunAt)
	var send func() *goredis.Cmd
	if plainBatch([]*backend.Job{c}) {
		d, err := appendStatic(nil, c)
		if err != nil {
			return nil, fmt.Errorf("redis: enqueue: %w", err)
		}
		send = func() *goredis.Cmd {
			return b.evalOnce(ctx, enqueueOnePlainScript, []string{b.loc}, p, c.ID, c.Queue, b.ch, c.Task, string(c.State),
				pk, ra, d, c.MaxAttempts)
		}
	} else {
		rest, err := restFields(c)
		if err != nil {
			return nil, fmt.Errorf("redis: enqueue: %w", err)
		}
		wait := p + "w:" + c.Task
		member := ra + pk + c.ID
		if c.State == backend.StateQueued {
			wait, member = p+"r:"+c.Task, pk+ra+c.ID
		}
		keys := []string{p + "m", p + "j:" + c.ID, p + "s:" + string(c.State), wait, b.loc}
		a := make([]any, 0, 14+len(rest))
		a = append(a, c.ID, c.Queue, b.ch, member,
			"tk", c.Task, "st", string(c.State), "pk", pk, "ra", ra)
		a = append(a, rest...)
		send = func() *goredis.Cmd { return b.evalOnce(ctx, enqueueOneScript, keys, a...) }
	}
	cmd, settled := b.sendEnqueue(ctx, []*backend.Job{c}, send)
	if settled != nil {
		b.notify()
		return settled, nil
	}
	if err := cmd.Err(); err != nil {
		if strings.HasPrefix(err.Error(), "EXISTS") {
			return nil, fmt.Errorf("redis: enqueue: %w", err)
		}
		if ctx.Err() != nil {
			// The script may have run although its reply was lost.
			b.undoEnqueue([]*backend.Job{c}, map[string][]int{c.Queue: {0}}, []string{c.Queue})
		}
		return nil, wrap(ctx, "enqueue", err)
	}
	b.notify()
	return []backend.EnqueueResult{{ID: j.ID}}, nil
}

// noUniqueKeys reports whether no job of jobs has a unique key.
func noUniqueKeys(jobs []*backend.Job) bool {
	for _, j := range jobs {
		if j.UniqueKey != "" {
			return false
		}
	}
	return true
}

// enqueueMany inserts jobs (clamped, none with a unique key, their queues
// and tasks registered) on a standalone Redis: one lean script whose
// arguments are laid out as the commands it runs.
func (b *Backend) enqueueMany(ctx context.Context, jobs []*backend.Job, byQueue map[string][]int, order []string) ([]backend.EnqueueResult, error) {
	script, lay := enqueueManyScript, b.manyArgs
	if plainBatch(jobs) {
		script, lay = enqueuePlainScript, b.plainArgs
	}
	args, err := lay(jobs)
	if err != nil {
		return nil, fmt.Errorf("redis: enqueue: %w", err)
	}
	cmd, settled := b.sendEnqueue(ctx, jobs, func() *goredis.Cmd { return b.evalOnce(ctx, script, []string{b.qp(order[0]) + "m", b.loc}, args...) })
	if settled != nil {
		b.notify()
		return settled, nil
	}
	if err := cmd.Err(); err != nil {
		if strings.HasPrefix(err.Error(), "EXISTS") {
			return nil, fmt.Errorf("redis: enqueue: %w", err)
		}
		if ctx.Err() != nil {
			// The script may have run although its reply was lost.
			b.undoEnqueue(jobs, byQueue, order)
		}
		return nil, wrap(ctx, "enqueue", err)
	}
	res := make([]backend.EnqueueResult, len(jobs))
	for i, j := range jobs {
		res[i] = backend.EnqueueResult{ID: j.ID}
	}
	b.notify()
	return res, nil
}

// manyArgs lays out the ARGV of enqueueManyScript for jobs.
func (b *Backend) manyArgs(jobs []*backend.Job) ([]any, error) {
	n := len(jobs)
	a := newArgBuilder(2+3*n+20*n, 240*n)
	a.str(&b.ch)
	a.int(n)
	for _, j := range jobs {
		a.str(&j.ID)
	}
	for _, j := range jobs {
		a.str(&j.ID)
		a.str(&j.Queue)
	}
	// The index entries, per index key in the order first met; a member is
	// a job's id or a slice of the buffer.
	type member struct {
		id         *string
		start, end int
	}
	type index struct {
		key     string
		members []member
	}
	type indexName struct {
		q, name string
		kind    byte
	}
	var idx []*index
	byName := map[indexName]*index{}
	add := func(q, name string, kind byte, m member) {
		x, ok := byName[indexName{q, name, kind}]
		if !ok {
			key := b.qp(q)
			switch kind {
			case 's':
				key += "s:" + name
			case 'r':
				key += "r:" + name
			default:
				key += "w:" + name
			}
			x = &index{key: key}
			idx = append(idx, x)
			byName[indexName{q, name, kind}] = x
		}
		x.members = append(x.members, m)
	}
	fTk, fSt, fPk, fRa, fD, fAt, fMa, zero := "tk", "st", "pk", "ra", "d", "at", "ma", "0"
	// Jobs of a batch mostly share their priority and run-at: their keys
	// are written once.
	lastPrio, lastRunAt := 0, time.Time{}
	pk0, pk1, ra0, ra1 := 0, 0, 0, 0
	for k, j := range jobs {
		p := b.qp(j.Queue)
		s := len(a.buf)
		a.buf = append(append(append(a.buf, p...), "j:"...), j.ID...)
		a.span(s)
		count := a.placeholder()
		fields := 0
		a.str(&fTk)
		a.str(&j.Task)
		a.str(&fSt)
		s = len(a.buf)
		a.buf = append(a.buf, j.State...)
		a.span(s)
		if k == 0 || j.Priority != lastPrio {
			pk0 = len(a.buf)
			a.buf = appendPrioKey(a.buf, j.Priority)
			pk1, lastPrio = len(a.buf), j.Priority
		}
		if k == 0 || !j.RunAt.Equal(lastRunAt) {
			ra0 = len(a.buf)
			a.buf = appendTimeKey(a.buf, j.RunAt)
			ra1, lastRunAt = len(a.buf), j.RunAt
		}
		a.str(&fPk)
		a.spanOf(pk0, pk1)
		a.str(&fRa)
		a.spanOf(ra0, ra1)
		fields += 8
		if plainJob(j) {
			a.str(&fD)
			s = len(a.buf)
			var err error
			if a.buf, err = appendStatic(a.buf, j); err != nil {
				return nil, err
			}
			a.span(s)
			fields += 2
			for _, f := range [...]struct {
				name *string
				v    int
			}{{&fAt, j.Attempt}, {&fMa, j.MaxAttempts}} {
				if f.v != 0 {
					a.str(f.name)
					a.int(f.v)
					fields += 2
				}
			}
		} else {
			rest, err := restFields(j)
			if err != nil {
				return nil, err
			}
			for _, v := range rest {
				s = len(a.buf)
				a.buf = fmt.Append(a.buf, v)
				a.span(s)
			}
			fields += len(rest)
		}
		s = len(a.buf)
		a.buf = strconv.AppendInt(a.buf, int64(fields), 10)
		a.fix = append(a.fix, argSpan{count, s, len(a.buf)})
		// Index members: s:<state> id; r:<task> pk..ra..id or w:<task> ra..pk..id.
		add(j.Queue, string(j.State), 's', member{id: &j.ID})
		s = len(a.buf)
		if j.State == backend.StateQueued {
			a.buf = append(append(append(a.buf, a.buf[pk0:pk1]...), a.buf[ra0:ra1]...), j.ID...)
			add(j.Queue, j.Task, 'r', member{start: s, end: len(a.buf)})
		} else {
			a.buf = append(append(append(a.buf, a.buf[ra0:ra1]...), a.buf[pk0:pk1]...), j.ID...)
			add(j.Queue, j.Task, 'w', member{start: s, end: len(a.buf)})
		}
	}
	for _, x := range idx {
		a.str(&x.key)
		a.int(2 * len(x.members))
		for _, m := range x.members {
			a.str(&zero)
			if m.id != nil {
				a.str(m.id)
			} else {
				a.spanOf(m.start, m.end)
			}
		}
	}
	return a.done(), nil
}

// uniqueKey returns the name of the index of j's unique key: global on a
// standalone Redis, the queue's on a Cluster.
func (b *Backend) uniqueKey(j *backend.Job) string {
	p := b.o.prefix + ":"
	if b.cluster() {
		p = b.qp(j.Queue)
	}
	return fmt.Sprintf("%su:%d:%s:%s", p, len(j.Task), j.Task, j.UniqueKey)
}

// cluster reports whether the client talks to a Redis Cluster.
func (b *Backend) cluster() bool {
	_, ok := b.c.(*goredis.ClusterClient)
	return ok
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// reserve records the queues of jobs' ids in the location hash, failing when
// one is taken by a stored job. A reservation left by an enqueue that died
// half-way (its job is not stored) is taken over.
func (b *Backend) reserve(ctx context.Context, jobs []*backend.Job) error {
	args := make([]any, 0, 2*len(jobs))
	for _, j := range jobs {
		args = append(args, j.ID, j.Queue)
	}
	for range 3 {
		v, err := b.run(ctx, reserveScript, []string{b.loc}, args...)
		if err != nil {
			return wrap(ctx, "enqueue: reserve ids", err)
		}
		taken, _ := v.(string)
		if taken == "" {
			return nil
		}
		q, err := b.c.HGet(ctx, b.loc, taken).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return wrap(ctx, "enqueue: reserve ids", err)
		}
		n, err := b.c.Exists(ctx, b.qp(q)+"j:"+taken).Result()
		if err != nil {
			return wrap(ctx, "enqueue: reserve ids", err)
		}
		if n == 1 {
			return fmt.Errorf("redis: enqueue job %s: a job with this id exists", taken)
		}
		b.c.HDel(ctx, b.loc, taken) // an orphan reservation
	}
	return fmt.Errorf("redis: enqueue: ids keep being taken concurrently")
}

// registerFor is how long the backend trusts that a queue and task it added
// to the queues and tasks sets are still there (only DeleteAll removes them).
const registerFor = time.Minute

// registered returns 0 when every queue and task of jobs was added to the
// queues and tasks sets by this backend less than registerFor ago (the
// enqueue script need not add them again), else 1.
func (b *Backend) registered(jobs []*backend.Job) int {
	now := time.Now()
	b.regMu.Lock()
	defer b.regMu.Unlock()
	for _, j := range jobs {
		if t, ok := b.reg[j.Queue+"\x00"+j.Task]; !ok || now.Sub(t) > registerFor {
			return 1
		}
	}
	return 0
}

// register records that the queues and tasks of jobs are in the sets now.
func (b *Backend) register(jobs []*backend.Job) {
	now := time.Now()
	b.regMu.Lock()
	defer b.regMu.Unlock()
	if len(b.reg) > 10000 {
		clear(b.reg)
	}
	for _, j := range jobs {
		b.reg[j.Queue+"\x00"+j.Task] = now
	}
}

// undoEnqueue deletes what a failed Enqueue may have stored.
func (b *Backend) undoEnqueue(jobs []*backend.Job, byQueue map[string][]int, order []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []string
	for _, q := range order {
		a := []any{b.qp(q), "", "", 0, len(byQueue[q])} // purgeScript: no cutoff, no states, the ids
		for _, i := range byQueue[q] {
			a = append(a, jobs[i].ID)
			ids = append(ids, jobs[i].ID)
		}
		b.run(ctx, purgeScript, b.meta(q), a...)
	}
	b.c.HDel(ctx, b.loc, ids...)
}

// Claim leases up to req.Limit ready jobs: one script per queue; with several
// queues it first peeks at each queue's best jobs, so that the batch follows
// the claim order across queues.
func (b *Backend) Claim(ctx context.Context, req backend.ClaimRequest) ([]*backend.Job, error) {
	if err := b.check(ctx, "claim"); err != nil {
		return nil, err
	}
	if req.Limit <= 0 {
		return []*backend.Job{}, nil
	}
	if jobs, handled, err := b.limitedClaim(ctx, req); handled { // limits.go
		return jobs, err
	}
	return b.claim(ctx, req)
}

// claim is Claim without flow control.
func (b *Backend) claim(ctx context.Context, req backend.ClaimRequest) ([]*backend.Job, error) {
	now := backend.ClampTime(req.Now)
	until := backend.ClampTime(req.Now.Add(req.LeaseFor))
	var out []*backend.Job
	for range 100 { // a quarantined record makes room for another job
		want := req.Limit - len(out)
		var plan map[string]int
		if !b.cluster() || len(req.Queues) == 1 {
			// One script over every queue asked for (standalone Redis).
			plan = map[string]int{"": want}
		} else {
			qs := req.Queues
			if len(qs) == 0 {
				var err error
				if qs, err = b.allQueues(ctx); err != nil {
					return out, wrap(ctx, "claim", err)
				}
			}
			var err error
			if qs, err = b.unpausedQueues(ctx, qs); err != nil {
				return out, wrap(ctx, "claim", err)
			}
			if plan, err = b.planClaim(ctx, qs, req.Tasks, now, want); err != nil {
				return out, wrap(ctx, "claim", err)
			}
		}
		if len(plan) == 0 {
			break
		}
		got, bad, err := b.claimQueues(ctx, plan, req, out, now, until)
		// Remembered at once: a lost reply of the next round, at the same
		// now, is settled without them (claimedBefore).
		b.remember(got)
		out = append(out, got...)
		if err != nil {
			return out, wrap(ctx, "claim", err)
		}
		if bad == 0 || len(out) >= req.Limit {
			break
		}
	}
	if out == nil {
		out = []*backend.Job{}
	}
	return out, nil
}

// planClaim decides how many jobs to claim from each queue of a Cluster: it
// reads up to want best ready candidates of every queue and merges them.
func (b *Backend) planClaim(ctx context.Context, qs, tasks []string, now time.Time, want int) (map[string]int, error) {
	nowKey := timeKey(now)
	nextKey := timeKey(now.Add(time.Microsecond))
	type cand struct{ key, q string }
	taskCmds := make([]*goredis.StringSliceCmd, len(qs))
	if len(tasks) == 0 {
		_, err := b.pipeline(ctx, func(p goredis.Pipeliner) {
			for i, q := range qs {
				taskCmds[i] = p.SMembers(ctx, b.qp(q)+"tasks")
			}
		})
		if err != nil {
			return nil, err
		}
	}
	type rng struct {
		q     string
		ready bool
		cmd   *goredis.StringSliceCmd
	}
	var rs []rng
	_, err := b.pipeline(ctx, func(p goredis.Pipeliner) {
		for i, q := range qs {
			ts := tasks
			if len(tasks) == 0 {
				ts = taskCmds[i].Val()
			}
			for _, t := range ts {
				rs = append(rs, rng{q, true, p.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: b.qp(q) + "r:" + t, Start: 0, Stop: want + 15})})
				rs = append(rs, rng{q, false, p.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: b.qp(q) + "w:" + t, ByLex: true,
					Start: "-", Stop: "(" + nextKey, Count: 1000})}) // every due job (as many as a claim promotes): they sort by run-at, not priority
			}
		}
	})
	if err != nil {
		return nil, err
	}
	var cs []cand
	for _, r := range rs {
		for _, m := range r.cmd.Val() {
			if len(m) < 32 {
				continue
			}
			if !r.ready {
				m = m[16:32] + m[:16] + m[32:]
			}
			if m[16:32] > nowKey {
				continue
			}
			cs = append(cs, cand{m, r.q})
		}
	}
	slices.SortFunc(cs, func(a, b cand) int { return strings.Compare(a.key, b.key) })
	plan := map[string]int{}
	for _, c := range cs[:min(want, len(cs))] {
		plan[c.q]++
	}
	return plan, nil
}

// claimQueues runs the claim script: for the queue "" of plan, once over
// every queue of req; for other queues, once per queue. handed holds the
// jobs earlier rounds of the same claim handed out.
func (b *Backend) claimQueues(ctx context.Context, plan map[string]int, req backend.ClaimRequest, handed []*backend.Job, now, until time.Time) ([]*backend.Job, int, error) {
	qs := make([]string, 0, len(plan))
	for q := range plan {
		qs = append(qs, q)
	}
	slices.Sort(qs)
	cmds := make([]*goredis.Cmd, len(qs))
	var err error
	nowKey, untilKey := timeKey(now), timeKey(until)
	// The claim script goes out once (evalOnce, evalShaOnce): sent again
	// after its reply was lost, a second claim would lease other jobs, and
	// those of the first would wait, unknown to this worker, for their
	// leases to expire. A lost reply is settled by sendClaim.
	queuesOf := make([][]string, len(qs))
	argsOf := make([][]any, len(qs))
	routeOf := make([]string, len(qs))
	for i, q := range qs {
		queuesOf[i], routeOf[i] = []string{q}, q
		if q == "" {
			queuesOf[i] = req.Queues
			if len(req.Queues) > 0 {
				routeOf[i] = req.Queues[0]
			}
		}
		a := []any{b.qp(routeOf[i]), nowKey, timeKey(now.Add(time.Microsecond)), plan[q], req.Worker,
			untilKey, "redis: stored record cannot be read: ", b.o.prefix, b.queues, len(req.Tasks)}
		a = append(a, toAny(req.Tasks)...)
		a = append(a, len(queuesOf[i]))
		argsOf[i] = append(a, toAny(queuesOf[i])...)
	}
	if len(qs) > 1 {
		// Not b.pipeline: a NOSCRIPT of one node (a restart) would send the
		// whole pipeline again, and the claims the other nodes ran a second
		// time. A script refused unrun is sent again alone below.
		_, err = b.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i := range qs {
				cmds[i] = evalShaOnce(ctx, p, claimScript, b.meta(routeOf[i]), argsOf[i]...)
			}
			return nil
		})
	}
	var out []*backend.Job
	for i := range qs {
		var first *goredis.Cmd
		if len(qs) > 1 {
			switch first = cmds[i]; {
			case refusedUnrun(first.Err()) || isNoScript(first.Err()):
				first = nil // not run: sent again alone (evalOnce loads the scripts)
			case !replyLost(ctx, first.Err()):
				continue
			}
		}
		cmd, settled := b.sendClaim(ctx, first, routeOf[i], queuesOf[i], argsOf[i], req, handed, now, until)
		cmds[i] = cmd
		if settled != nil {
			out = append(out, settled...)
			cmds[i] = nil
		}
	}
	if err != nil && !slices.ContainsFunc(cmds, func(c *goredis.Cmd) bool { return c != nil && c.Err() != nil }) {
		err = nil // every lost reply settled
	}
	bad := 0
	for i, c := range cmds {
		if c == nil || c.Err() != nil {
			continue
		}
		parts, _ := c.Val().([]any)
		if len(parts) != 2 {
			continue
		}
		pairs, _ := parts[0].([]any)
		for k := 0; k+4 < len(pairs); k += 5 {
			id, _ := pairs[k].(string)
			f, ferr := hashToMap(pairs[k+1])
			if ferr != nil {
				continue
			}
			// The claim's fields: the script returns the record as it was read.
			f["st"], f["sa"], f["lo"], f["lu"] = string(backend.StateRunning), nowKey, req.Worker, untilKey
			f["at"], _ = pairs[k+2].(string)
			f["lt"], _ = pairs[k+3].(string)
			f["v"], _ = pairs[k+4].(string)
			j, _, derr := decodeJob(id, f)
			if derr != nil {
				bad++
				b.quarantineClaimed(ctx, j.Queue, j, f, now, derr)
				continue
			}
			out = append(out, j)
		}
		for _, id := range strs(parts[1]) {
			bad++
			b.o.logger.Warn("nuvom/redis: quarantined a job whose record cannot be read", "job", id, "queue", qs[i])
		}
	}
	if err == nil {
		for _, c := range cmds {
			if c != nil && c.Err() != nil {
				err = c.Err()
				break
			}
		}
	}
	return out, bad, err
}

// quarantineClaimed moves a claimed job whose record cannot be decoded to quarantined.
func (b *Backend) quarantineClaimed(ctx context.Context, q string, j *backend.Job, f map[string]string, now time.Time, cause error) {
	ctx = context.WithoutCancel(ctx)
	if q == "" { // the queue was in the part that cannot be read
		q, _ = b.locate(ctx, j.ID)
	}
	b.o.logger.Warn("nuvom/redis: quarantined a job whose record cannot be read", "job", j.ID, "queue", q, "error", cause)
	o, _ := encodeOutcome(nil, j.Error, nil, "")
	b.run(ctx, casScript, b.meta(q), b.qp(q), b.ch, j.ID, f["v"], 0,
		"st", string(backend.StateQuarantined), "fa", timeKey(now), "lo", "", "lu", "", "o", o)
}

// byQueue groups leases by the queue of their job; leases of unknown jobs go to missing.
func (b *Backend) groupLeases(ctx context.Context, leases []backend.Lease) (map[string][]int, []int, error) {
	ids := make([]string, len(leases))
	for i, l := range leases {
		ids[i] = l.JobID
	}
	qs, err := b.queuesOf(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	groups := map[string][]int{}
	var missing []int
	for i, q := range qs {
		if q == "" {
			missing = append(missing, i)
			continue
		}
		groups[q] = append(groups[q], i)
	}
	return groups, missing, nil
}

// Extend moves the deadline of the leases still held to until.
func (b *Backend) Extend(ctx context.Context, leases []backend.Lease, until time.Time) ([]string, error) {
	if err := b.check(ctx, "extend leases"); err != nil {
		return nil, err
	}
	if len(leases) == 0 {
		return nil, nil
	}
	groups, missing, err := b.groupLeases(ctx, leases)
	if err != nil {
		return nil, wrap(ctx, "extend leases", err)
	}
	var lost []string
	for _, i := range missing {
		lost = append(lost, leases[i].JobID)
	}
	lu := timeKey(backend.ClampTime(until))
	var cmds []*goredis.Cmd
	_, err = b.pipeline(ctx, func(p goredis.Pipeliner) {
		for q, idx := range groups {
			a := []any{b.qp(q), lu, len(idx)}
			for _, i := range idx {
				a = append(a, leases[i].JobID, leases[i].Token)
			}
			cmds = append(cmds, evalSha(ctx, p, extendScript, b.meta(q), a...))
		}
	})
	if err != nil {
		return nil, wrap(ctx, "extend leases", err)
	}
	for _, c := range cmds {
		lost = append(lost, strs(c.Val())...)
	}
	return lost, nil
}

// Complete records outcomes whose leases are still held: one script per
// queue, all in one pipeline; the fence is checked inside the script.
func (b *Backend) Complete(ctx context.Context, outcomes []backend.Outcome) ([]error, error) {
	return b.complete(ctx, outcomes, 1)
}

// complete is Complete; send counts the sends of these outcomes: when a
// reply is lost and an outcome's script did not run (its lease is still
// held: the command never reached Redis), the outcome is sent again, at
// most maxSends times in all, as go-redis itself did before these
// scripts were sent once (lostreply.go).
func (b *Backend) complete(ctx context.Context, outcomes []backend.Outcome, send int) ([]error, error) {
	if err := b.check(ctx, "complete"); err != nil {
		return nil, err
	}
	errs := make([]error, len(outcomes))
	var valid []backend.Lease
	var validIdx []int
	for i := range outcomes {
		o := &outcomes[i]
		switch o.State {
		case backend.StateSucceeded, backend.StateFailed, backend.StateRetrying, backend.StateCancelled, backend.StateQuarantined:
			valid = append(valid, o.Lease)
			validIdx = append(validIdx, i)
		default:
			errs[i] = fmt.Errorf("redis: complete job %s: next state %q is not succeeded, failed, retrying, cancelled or quarantined: %w",
				o.Lease.JobID, o.State, backend.ErrWrongState)
		}
	}
	if len(valid) == 0 {
		return errs, nil
	}
	groups, missing, err := b.groupLeases(ctx, valid)
	if err != nil {
		return nil, wrap(ctx, "complete", err)
	}
	for _, k := range missing {
		i := validIdx[k]
		errs[i] = fmt.Errorf("redis: complete job %s: %w: %w", outcomes[i].Lease.JobID, backend.ErrLeaseLost, backend.ErrNotFound)
	}
	keep, cutoff := b.retention()
	type call struct {
		q   string
		idx []int
		cmd *goredis.Cmd
	}
	var calls []*call
	for q, ks := range groups {
		c := &call{q: q}
		for _, k := range ks {
			c.idx = append(c.idx, validIdx[k])
		}
		calls = append(calls, c)
	}
	argsOf := func(c *call) ([]any, error) {
		a := make([]any, 0, 7+17*len(c.idx))
		a = append(a, b.qp(c.q), b.ch, keep, cutoff, len(c.idx), int64(aggTTL/time.Second), int64(aggTTL/time.Hour))
		for _, i := range c.idx {
			o := &outcomes[i]
			out, err := encodeOutcome(o.Result, o.Error, o.ErrorChain, o.PanicStack)
			if err != nil {
				return nil, err
			}
			at, err := encodeAttempt(o.Attempt)
			if err != nil {
				return nil, err
			}
			refund := 0
			if o.Refund {
				refund = 1
			}
			a = append(a, o.Lease.JobID, o.Lease.Token, string(o.State), timeKey(backend.ClampTime(o.RunAt)),
				timeKey(backend.ClampTime(o.FinishedAt)), out, at, refund)
			a = appendAggregates(a, o)
		}
		return a, nil
	}
	allArgs := make([][]any, len(calls))
	for k, c := range calls {
		if allArgs[k], err = argsOf(c); err != nil {
			return nil, fmt.Errorf("redis: complete: %w", err)
		}
	}
	// Sent once (lostreply.go): a completion sent again after its reply was
	// lost finds its lease ended and reports it lost, although stored.
	if len(calls) == 1 {
		calls[0].cmd = b.evalOnce(ctx, completeScript, b.meta(calls[0].q), allArgs[0]...)
		err = calls[0].cmd.Err()
	} else {
		_, err = b.pipeline(ctx, func(p goredis.Pipeliner) {
			for k, c := range calls {
				c.cmd = evalShaOnce(ctx, p, completeScript, b.meta(c.q), allArgs[k]...)
			}
		})
	}
	// codes holds per outcome index the script's answer: 1 applied, 0 lease
	// lost, -1 not found; when the reply was lost, what the store holds
	// (completedBefore: 2 when the script did not run).
	var codes map[int]int64
	var steps, gone []string
	lostErr := err
	if err != nil {
		if !replyLost(ctx, err) {
			return nil, wrap(ctx, "complete", err)
		}
		var idx []int
		var qs []string
		for _, c := range calls {
			for _, i := range c.idx {
				idx = append(idx, i)
				qs = append(qs, c.q)
			}
		}
		if codes, err = b.completedBefore(ctx, outcomes, idx, qs); err != nil {
			b.markUnsettled(leasesOf(outcomes, idx))
			return nil, wrap(ctx, "complete", err)
		}
	} else {
		codes = make(map[int]int64, len(validIdx))
		was := b.takeUnsettled(outcomes)
		var idx []int
		var qs []string
		for _, c := range calls {
			parts, _ := c.cmd.Val().([]any)
			if len(parts) == 3 { // retention deleted workflow steps (wfgc.go)
				steps = append(steps, strs(parts[2])...)
				parts = parts[:2]
			}
			if len(parts) != 2 {
				return nil, fmt.Errorf("redis: complete: unexpected reply %v", c.cmd.Val())
			}
			res, _ := parts[0].([]any)
			gone = append(gone, strs(parts[1])...)
			for n, i := range c.idx {
				r, _ := res[n].(int64)
				codes[i] = r
				if r == 0 && (send > 1 || was[i]) {
					idx = append(idx, i)
					qs = append(qs, c.q)
				}
			}
		}
		if len(idx) > 0 {
			// "Lease lost" may be this outcome, stored by an earlier send
			// whose reply was lost: by this call's (Redis read it after the
			// read that found it had not run), or by a call that failed as
			// a whole when its settling read failed too, whose outcomes
			// the caller sends again (worker.store; markUnsettled). The
			// outcome's attempt in the job's history tells.
			again, err := b.completedBefore(ctx, outcomes, idx, qs)
			if err != nil {
				return nil, wrap(ctx, "complete", err)
			}
			for _, i := range idx {
				if again[i] == 1 {
					codes[i] = 1
				}
			}
		}
	}
	var held []int // outcomes whose scripts did not run
	sent := 0
	for _, c := range calls {
		for _, i := range c.idx {
			sent++
			if codes[i] == 2 {
				held = append(held, i)
			}
		}
	}
	resent := map[int]bool{}
	if len(held) > 0 {
		if len(held) == sent && send == maxSends {
			// Nothing ran: the caller may send them all again (a send
			// still on its way may yet run).
			b.markUnsettled(leasesOf(outcomes, held))
			return nil, wrap(ctx, "complete", lostErr)
		}
		sub := make([]backend.Outcome, len(held))
		for k, i := range held {
			sub[k] = outcomes[i]
		}
		var subErrs []error
		if send < maxSends {
			subErrs, err = b.complete(ctx, sub, send+1)
			if err != nil && len(held) == sent { // nothing stored at this level
				if subErrs == nil {
					return nil, err
				}
				for k, i := range held {
					errs[i] = subErrs[k]
				}
				return errs, err
			}
		} else {
			err = fmt.Errorf("not stored: the connection failed %d times: %w", send, lostErr)
		}
		for k, i := range held {
			resent[i] = true
			if err != nil {
				errs[i] = fmt.Errorf("redis: complete job %s: %w", outcomes[i].Lease.JobID, err)
			} else {
				errs[i] = subErrs[k]
			}
		}
	}
	var done []string
	var lost []backend.Lease
	for _, c := range calls {
		for _, i := range c.idx {
			id := outcomes[i].Lease.JobID
			switch r := codes[i]; {
			case resent[i]:
			case r == 1:
				done = append(done, id)
			case r == 0:
				errs[i] = fmt.Errorf("redis: complete job %s with token %d: %w", id, outcomes[i].Lease.Token, backend.ErrLeaseLost)
				lost = append(lost, outcomes[i].Lease)
			default:
				errs[i] = fmt.Errorf("redis: complete job %s: %w: %w", id, backend.ErrLeaseLost, backend.ErrNotFound)
				lost = append(lost, outcomes[i].Lease)
			}
		}
	}
	b.forget(done)
	b.forgetLeases(lost)
	if len(gone) > 0 {
		b.c.HDel(context.WithoutCancel(ctx), b.loc, gone...)
	}
	var ended []string
	at := time.Time{}
	for i, o := range outcomes {
		if errs[i] == nil && o.State.Final() && !resent[i] { // the resend settled its own
			ended = append(ended, o.Lease.JobID)
			at = backend.ClampTime(o.FinishedAt)
		}
	}
	if err := b.settleChildren(ctx, ended, at, false); err != nil {
		return errs, wrap(ctx, "complete: release workflow steps", err)
	}
	if err := b.dropSteps(ctx, steps); err != nil {
		return errs, wrap(ctx, "complete", err)
	}
	return errs, nil
}

// retention returns the script arguments of the retention options.
func (b *Backend) retention() (keep int, cutoff string) {
	if b.o.keepFor > 0 {
		cutoff = timeKey(backend.ClampTime(b.o.now().Add(-b.o.keepFor)))
	}
	return b.o.keepCount, cutoff
}

// Prune applies the retention options to every queue now and returns how
// many finished jobs it deleted. Complete applies them too, as jobs finish.
func (b *Backend) Prune(ctx context.Context) (int, error) {
	if err := b.check(ctx, "prune"); err != nil {
		return 0, err
	}
	qs, err := b.allQueues(ctx)
	if err != nil {
		return 0, wrap(ctx, "prune", err)
	}
	if err := b.sweepParked(ctx, qs); err != nil {
		return 0, wrap(ctx, "prune", err)
	}
	keep, cutoff := b.retention()
	n := 0
	for _, q := range qs {
		for {
			v, err := b.run(ctx, retainScript, b.meta(q), b.qp(q), keep, cutoff)
			if err != nil {
				return n, wrap(ctx, "prune", err)
			}
			k, err := b.deleted(ctx, v)
			n += k
			if err != nil {
				return n, wrap(ctx, "prune", err)
			}
			if k == 0 {
				break
			}
		}
	}
	return n, nil
}

// Release hands held leases back without spending an attempt.
func (b *Backend) Release(ctx context.Context, leases []backend.Lease) error {
	if err := b.check(ctx, "release leases"); err != nil {
		return err
	}
	if len(leases) == 0 {
		return nil
	}
	groups, _, err := b.groupLeases(ctx, leases)
	if err != nil {
		return wrap(ctx, "release leases", err)
	}
	_, err = b.pipeline(ctx, func(p goredis.Pipeliner) {
		for q, idx := range groups {
			a := []any{b.qp(q), b.ch, len(idx)}
			for _, i := range idx {
				a = append(a, leases[i].JobID, leases[i].Token)
			}
			evalSha(ctx, p, releaseScript, b.meta(q), a...)
		}
	})
	if err != nil {
		return wrap(ctx, "release leases", err)
	}
	ids := make([]string, len(leases))
	for i, l := range leases {
		ids[i] = l.JobID
	}
	b.forget(ids)
	b.notify()
	return nil
}

// load reads job id of queue q: its record, version and decode error.
func (b *Backend) load(ctx context.Context, q, id string) (*backend.Job, string, error, error) {
	f, err := b.c.HGetAll(ctx, b.qp(q)+"j:"+id).Result()
	if err != nil {
		return nil, "", nil, err
	}
	if len(f) == 0 {
		return nil, "", nil, backend.ErrNotFound
	}
	j, v, derr := decodeJob(id, f)
	if j.Queue == "" {
		j.Queue = q
	}
	return j, v, derr, nil
}

// locate returns the queue of job id, or ErrNotFound.
func (b *Backend) locate(ctx context.Context, id string) (string, error) {
	q, err := b.c.HGet(ctx, b.loc, id).Result()
	if errors.Is(err, goredis.Nil) {
		return "", backend.ErrNotFound
	}
	return q, err
}

// Get returns a job's record, or backend.ErrNotFound.
func (b *Backend) Get(ctx context.Context, id string) (*backend.Job, error) {
	if err := b.check(ctx, "get job "+id); err != nil {
		return nil, err
	}
	q, err := b.locate(ctx, id)
	if err != nil {
		return nil, wrap(ctx, "get job "+id, err)
	}
	j, _, _, err := b.load(ctx, q, id)
	if err != nil {
		return nil, wrap(ctx, "get job "+id, err)
	}
	return j, nil
}

// cas applies change to job id (read fresh each try) with a compare-and-set
// on the record's version; change returns the fields to write, or an error
// that ends the call.
func (b *Backend) cas(ctx context.Context, op, id string, publish bool, change func(j *backend.Job) ([]any, error)) error {
	q, err := b.locate(ctx, id)
	if err != nil {
		return wrap(ctx, op, err)
	}
	for range 50 {
		j, v, derr, err := b.load(ctx, q, id)
		if err != nil {
			return wrap(ctx, op, err)
		}
		_ = derr // a damaged record is quarantined: change sees that state
		fields, err := change(j)
		if err != nil {
			return fmt.Errorf("redis: %s: %w", op, err)
		}
		pub := 0
		if publish {
			pub = 1
		}
		// Field cx tells a lost reply's settling read that this call applied.
		nonce := casNonce()
		a := append([]any{b.qp(q), b.ch, id, v, pub}, fields...)
		a = append(a, "cx", nonce)
		// Sent once (lostreply.go): sent again after its reply was lost, it
		// finds the version moved on and reads as a change by someone else.
		cmd := b.evalOnce(ctx, casScript, b.meta(q), a...)
		r, err := cmd.Int64()
		if replyLost(ctx, err) {
			if r, err = b.casApplied(ctx, q, id, nonce); err != nil {
				return wrap(ctx, op, err)
			}
		} else if err != nil {
			return wrap(ctx, op, err)
		}
		switch r {
		case 1:
			if publish {
				b.notify()
			}
			return nil
		case -1:
			return wrap(ctx, op, backend.ErrNotFound)
		}
	}
	return fmt.Errorf("redis: %s: the job keeps changing concurrently", op)
}

// Cancel moves a pending, scheduled, queued, retrying or running job to
// cancelled, then settles its children when it is a workflow step and
// unparks its parents (wfkeep.go).
func (b *Backend) Cancel(ctx context.Context, id string, now time.Time) error {
	now = backend.ClampTime(now)
	if err := b.cancel(ctx, id, now, "cancelled while running", ""); err != nil {
		return err
	}
	if err := b.settleChildren(ctx, []string{id}, now, true); err != nil {
		return wrap(ctx, "cancel job "+id+": settle workflow steps", err)
	}
	return nil
}

// cancel is Cancel without the settling; msg is a running job's error, and
// why, when set, every job's (a workflow's steps say why they ended).
func (b *Backend) cancel(ctx context.Context, id string, now time.Time, msg, why string) error {
	if err := b.check(ctx, "cancel job "+id); err != nil {
		return err
	}
	return b.cas(ctx, "cancel job "+id, id, true, func(j *backend.Job) ([]any, error) {
		switch j.State {
		case backend.StatePending, backend.StateScheduled, backend.StateQueued, backend.StateRetrying:
		case backend.StateRunning:
			j.Attempts = append(j.Attempts, backend.Attempt{Number: j.Attempt, StartedAt: j.StartedAt,
				FinishedAt: now, Worker: j.LeaseOwner, Outcome: backend.OutcomeCancelled, Error: msg})
			j.Error, j.ErrorChain, j.PanicStack, j.Result = msg, nil, "", nil
			j.LeaseOwner, j.LeaseUntil = "", time.Time{}
		default:
			return nil, fmt.Errorf("job in state %s: %w", j.State, backend.ErrWrongState)
		}
		if why != "" {
			j.Error = why
		}
		j.State = backend.StateCancelled
		j.FinishedAt = now
		return mutableFields(j)
	})
}

// Retry queues a failed, cancelled or quarantined job again, keeping its history.
func (b *Backend) Retry(ctx context.Context, id string, now time.Time) error {
	if err := b.check(ctx, "retry job "+id); err != nil {
		return err
	}
	now = backend.ClampTime(now)
	return b.cas(ctx, "retry job "+id, id, true, func(j *backend.Job) ([]any, error) {
		switch j.State {
		case backend.StateFailed, backend.StateCancelled, backend.StateQuarantined:
		default:
			return nil, fmt.Errorf("job in state %s: %w", j.State, backend.ErrWrongState)
		}
		if j.Attempt >= j.MaxAttempts {
			j.MaxAttempts = j.Attempt + 1
		}
		fields := []any{"st", string(backend.StateQueued), "ra", timeKey(now), "fa", "", "ma", j.MaxAttempts}
		return fields, nil
	})
}

// RecoverExpired records a lost attempt for each running job whose lease
// ended before now, queue by queue.
func (b *Backend) RecoverExpired(ctx context.Context, now time.Time, maxLost int) (int, error) {
	if err := b.check(ctx, "recover expired leases"); err != nil {
		return 0, err
	}
	now = backend.ClampTime(now)
	qs, err := b.allQueues(ctx)
	if err != nil {
		return 0, wrap(ctx, "recover expired leases", err)
	}
	n := 0
	for _, q := range qs {
		for {
			ms, err := b.c.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: b.qp(q) + "lease", ByLex: true,
				Start: "-", Stop: "(" + timeKey(now), Count: 500}).Result()
			if err != nil {
				return n, wrap(ctx, "recover expired leases", err)
			}
			if len(ms) == 0 {
				break
			}
			k, err := b.recoverBatch(ctx, q, ms, now, maxLost)
			n += k
			if err != nil {
				return n, err
			}
			if len(ms) < 500 {
				break
			}
		}
	}
	if err := b.settleAllPending(ctx, now); err != nil {
		return n, wrap(ctx, "recover expired leases: settle workflow steps", err)
	}
	if err := b.sweepWorkflowsEvery(ctx); err != nil {
		return n, wrap(ctx, "recover expired leases", err)
	}
	return n, nil
}

func (b *Backend) recoverBatch(ctx context.Context, q string, members []string, now time.Time, maxLost int) (int, error) {
	n := 0
	for _, m := range members {
		if len(m) <= 16 {
			continue
		}
		id := m[16:]
		j, v, derr, err := b.load(ctx, q, id)
		if errors.Is(err, backend.ErrNotFound) {
			b.c.ZRem(ctx, b.qp(q)+"lease", m)
			continue
		}
		if err != nil {
			return n, wrap(ctx, "recover expired leases", err)
		}
		var fields []any
		if derr != nil {
			o, err := encodeOutcome(nil, j.Error, nil, "")
			if err != nil {
				return n, fmt.Errorf("redis: recover expired leases: %w", err)
			}
			fields = []any{"st", string(backend.StateQuarantined), "fa", timeKey(now), "lo", "", "lu", "", "o", o}
		} else {
			if j.State != backend.StateRunning || !j.LeaseUntil.Before(now) {
				continue // changed since the index was read
			}
			lost, fail, msg := backend.RecoverLost(j, now, maxLost)
			j.Attempts = append(j.Attempts, lost)
			j.MaxAttempts++
			j.Error, j.ErrorChain, j.PanicStack, j.Result = msg, nil, "", nil
			j.LeaseOwner, j.LeaseUntil = "", time.Time{}
			if fail {
				j.State = backend.StateFailed
				j.FinishedAt = now
			} else {
				j.State = backend.StateRetrying
				j.RunAt = now
			}
			if fields, err = mutableFields(j); err != nil {
				return n, fmt.Errorf("redis: recover expired leases: %w", err)
			}
		}
		a := append([]any{b.qp(q), b.ch, id, v, 1}, fields...)
		r, err := b.run(ctx, casScript, b.meta(q), a...)
		if err != nil {
			return n, wrap(ctx, "recover expired leases", err)
		}
		if r.(int64) == 1 {
			n++
			b.forget([]string{id})
		}
	}
	if n > 0 {
		b.notify()
	}
	return n, nil
}

// List returns jobs matching f, newest (highest id) first: per queue it
// merges the state indexes (the asked states, or all) from the newest id,
// reading records in chunks.
func (b *Backend) List(ctx context.Context, f backend.ListFilter) ([]*backend.Job, error) {
	if err := b.check(ctx, "list jobs"); err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	qs := []string{f.Queue}
	if f.Queue == "" {
		var err error
		if qs, err = b.allQueues(ctx); err != nil {
			return nil, wrap(ctx, "list jobs", err)
		}
	}
	since := backend.ClampTime(f.Since)
	var all []*backend.Job
	for _, q := range qs {
		got, err := b.listQueue(ctx, q, f, since, limit)
		if err != nil {
			return nil, wrap(ctx, "list jobs", err)
		}
		all = append(all, got...)
	}
	slices.SortFunc(all, func(a, b *backend.Job) int { return cmp.Compare(b.ID, a.ID) })
	if all == nil {
		all = []*backend.Job{}
	}
	return all[:min(limit, len(all))], nil
}

func (b *Backend) listQueue(ctx context.Context, q string, f backend.ListFilter, since time.Time, limit int) ([]*backend.Job, error) {
	p := b.qp(q)
	chunk := max(limit, 256)
	srcs := b.stateSources([]string{q}, f.States)
	var out []*backend.Job
	cursor := ""
	for {
		cands, more, err := b.idsPage(ctx, srcs, cursor, "", chunk)
		if err != nil {
			return nil, err
		}
		if len(cands) == 0 {
			return out, nil
		}
		cmds := make([]*goredis.MapStringStringCmd, len(cands))
		if _, err := b.pipeline(ctx, func(pp goredis.Pipeliner) {
			for i, c := range cands {
				cmds[i] = pp.HGetAll(ctx, p+"j:"+c.id)
			}
		}); err != nil {
			return nil, err
		}
		for i, c := range cands {
			m := cmds[i].Val()
			if len(m) == 0 {
				continue
			}
			j, _, _ := decodeJob(c.id, m)
			if j.Queue == "" {
				j.Queue = q
			}
			if (len(f.States) == 0 || slices.Contains(f.States, j.State)) &&
				(f.Task == "" || j.Task == f.Task) &&
				(since.IsZero() || !j.CreatedAt.Before(since)) {
				out = append(out, j)
				if len(out) == limit {
					return out, nil
				}
			}
		}
		if !more {
			return out, nil
		}
		cursor = cands[len(cands)-1].id
	}
}

// Stats counts jobs per queue and state from the state indexes (one ZCARD
// per queue and state), with the oldest run-at of the queued jobs from the
// ready sets (oldestQueuedScript); the other states leave it zero.
func (b *Backend) Stats(ctx context.Context, now time.Time) ([]backend.QueueStat, error) {
	if err := b.check(ctx, "stats"); err != nil {
		return nil, err
	}
	qs, err := b.allQueues(ctx)
	if err != nil {
		return nil, wrap(ctx, "stats", err)
	}
	slices.Sort(qs)
	states := backend.AllStates()
	cards := make([]*goredis.IntCmd, len(qs)*len(states))
	oldest := make([]*goredis.Cmd, len(qs))
	if _, err := b.pipeline(ctx, func(p goredis.Pipeliner) {
		for i, q := range qs {
			for k, st := range states {
				cards[i*len(states)+k] = p.ZCard(ctx, b.qp(q)+"s:"+string(st))
			}
			oldest[i] = evalSha(ctx, p, oldestQueuedScript, b.meta(q), b.qp(q))
		}
	}); err != nil {
		return nil, wrap(ctx, "stats", err)
	}
	out := []backend.QueueStat{}
	for i, q := range qs {
		for k, st := range states {
			n := cards[i*len(states)+k].Val()
			if n == 0 {
				continue
			}
			s := backend.QueueStat{Queue: q, State: st, Count: int(n)}
			if st == backend.StateQueued {
				ra, _ := oldest[i].Val().(string)
				s.OldestRunAt, _ = parseTimeKey(ra)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// Purge deletes jobs matching f that are not running.
func (b *Backend) Purge(ctx context.Context, f backend.PurgeFilter) (int, error) {
	return b.purge(ctx, "purge", f, time.Time{})
}

// PurgeEnded deletes the jobs matching f that ended before before.
func (b *Backend) PurgeEnded(ctx context.Context, before time.Time, f backend.PurgeFilter) (int, error) {
	if before.IsZero() {
		return 0, wrap(ctx, "purge ended", backend.ErrNoCutoff)
	}
	return b.purge(ctx, "purge ended", f, before)
}

// purge deletes the jobs matching f that are not running and, unless before
// is zero, ended before it, queue by queue, up to 1000 a script call. With
// before it keeps a workflow parent that a pending step waits for
// (wfkeep.go), and first sweeps the parked ones.
func (b *Backend) purge(ctx context.Context, op string, f backend.PurgeFilter, before time.Time) (int, error) {
	if err := b.check(ctx, op); err != nil {
		return 0, err
	}
	groups, err := b.purgeGroups(ctx, f)
	if err != nil {
		return 0, wrap(ctx, op, err)
	}
	cutoff := ""
	if !before.IsZero() {
		cutoff = timeKey(backend.ClampTime(before))
		if err := b.sweepParked(ctx, slices.Sorted(maps.Keys(groups))); err != nil {
			return 0, wrap(ctx, op, err)
		}
	}
	states := make([]any, 0, len(f.States))
	for _, s := range f.States {
		states = append(states, string(s))
	}
	n := 0
	for q, ids := range groups {
		k, err := b.purgeQueue(ctx, q, cutoff, states, ids)
		n += k
		if err != nil {
			return n, wrap(ctx, op, err)
		}
	}
	return n, nil
}

// purgeGroups returns the queues f selects, each with the ids of f.IDs on
// it (nil when f names no ids: the whole queue).
func (b *Backend) purgeGroups(ctx context.Context, f backend.PurgeFilter) (map[string][]string, error) {
	groups := map[string][]string{}
	if len(f.IDs) > 0 {
		qs, err := b.queuesOf(ctx, f.IDs)
		if err != nil {
			return nil, err
		}
		for i, q := range qs {
			if q != "" && (f.Queue == "" || q == f.Queue) {
				groups[q] = append(groups[q], f.IDs[i])
			}
		}
		return groups, nil
	}
	qs := []string{f.Queue}
	if f.Queue == "" {
		var err error
		if qs, err = b.allQueues(ctx); err != nil {
			return nil, err
		}
	}
	for _, q := range qs {
		groups[q] = nil
	}
	return groups, nil
}

// purgeQueue runs purgeScript on queue q until it has looked at every job
// (cutoff, states and ids are its arguments), drops the deleted ids from the
// location hash, unparks the parents of the pending workflow steps it
// deleted that no pending step waits for any more (wfkeep.go), drops the
// workflow steps it deleted from their workflows, deleting those with none
// left (wfgc.go), and returns how many it deleted, also when a call fails.
func (b *Backend) purgeQueue(ctx context.Context, q, cutoff string, states []any, ids []string) (int, error) {
	n := 0
	for from := ""; ; {
		a := []any{b.qp(q), cutoff, from, len(states)}
		a = append(a, states...)
		a = append(a, len(ids))
		a = append(a, toAny(ids)...)
		v, err := b.run(ctx, purgeScript, b.meta(q), a...)
		if err != nil {
			return n, err
		}
		out := strs(v)
		ns := 0
		if len(out) >= 3 {
			ns, _ = strconv.Atoi(out[2])
		}
		if len(out) < 3+ns || ns < 0 {
			return n, fmt.Errorf("purge script returned %v", v)
		}
		if gone := out[3 : len(out)-ns]; len(gone) > 0 {
			b.c.HDel(context.WithoutCancel(ctx), b.loc, gone...)
			n += len(gone)
			if k, _ := strconv.Atoi(out[1]); k > 0 {
				if err := b.unparkParentsOf(ctx, gone[:min(k, len(gone))]); err != nil {
					return n, fmt.Errorf("unpark the parents of deleted workflow steps: %w", err)
				}
			}
			if err := b.dropSteps(ctx, out[len(out)-ns:]); err != nil {
				return n, err
			}
		}
		if from = out[0]; from == "" {
			return n, nil
		}
		if from == "-" {
			from = ""
		}
	}
}
