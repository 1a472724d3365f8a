package redis

import (
	"cmp"
	"slices"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/runtime/backend"
)

// enqueuePlainScript inserts a batch of plain jobs (see plainBatch) on a
// standalone Redis whose queues and tasks this backend registered a moment
// ago: the common batched enqueue, with as few arguments per job as the
// record allows (Redis spends about as much reading an argument and making
// it a Lua string as it spends on a sorted-set insert's share of a
// command). Per job: its id and the seven values the script writes; the
// field names, the record's key, the location and the state-index entry
// are built by the script. It stores what enqueueScript stores for such
// jobs (TestEnqueueFastPathsStoreTheSame).
// KEYS: the first queue's meta key (routing), the location hash.
// ARGV: channel, n, the n ids, then per queue: its key prefix, its name, m,
// then m times (task, state, priority key, run-at, d, max attempts, ready or
// waiting member: pk..ra..id or ra..pk..id), in the order of the ids, jobs
// of one state and task adjacent (the indexes are written per run).
// It returns "" (all inserted) or fails with EXISTS when an id is taken.
var enqueuePlainScript = goredis.NewScript(`
local n = tonumber(ARGV[2])
for c = 3, 2 + n, 4000 do
  local got = redis.call('HMGET', KEYS[2], unpack(ARGV, c, math.min(c + 3999, 2 + n)))
  for x = 1, #got do
    if got[x] then return redis.error_reply('EXISTS job ' .. ARGV[c + x - 1] .. ' exists') end
  end
end
local x, i = 3, 3 + n
local loc = {}
local function flush(cmd, key, t)
  if #t > 0 then redis.call(cmd, key, unpack(t)) end
  return {}
end
while i <= #ARGV do
  local P, q, m = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local sst, s, rk, r = nil, {}, nil, {}
  for _ = 1, m do
    local id, tk, st = ARGV[x], ARGV[i], ARGV[i + 1]
    x = x + 1
    redis.call('HSET', P .. 'j:' .. id, 'tk', tk, 'st', st, 'pk', ARGV[i + 2], 'ra', ARGV[i + 3], 'd', ARGV[i + 4], 'ma', ARGV[i + 5])
    loc[#loc + 1] = id
    loc[#loc + 1] = q
    if #loc >= 4000 then loc = flush('HSET', KEYS[2], loc) end
    if st ~= sst or #s >= 4000 then
      s = flush('ZADD', P .. 's:' .. (sst or st), s)
      sst = st
    end
    s[#s + 1] = '0'
    s[#s + 1] = id
    local k = P .. (st == 'queued' and 'r:' or 'w:') .. tk
    if k ~= rk or #r >= 4000 then
      r = flush('ZADD', rk or k, r)
      rk = k
    end
    r[#r + 1] = '0'
    r[#r + 1] = ARGV[i + 6]
    i = i + 7
  end
  flush('ZADD', P .. 's:' .. (sst or ''), s)
  flush('ZADD', rk or '', r)
end
flush('HSET', KEYS[2], loc)
redis.call('PUBLISH', ARGV[1], '1')
return ''
`)

// plainBatch reports whether every job of jobs (clamped, none with a unique
// key) is plain (plainJob), in its first attempt, with an attempt limit:
// the jobs enqueuePlainScript takes.
func plainBatch(jobs []*backend.Job) bool {
	for _, j := range jobs {
		if !plainJob(j) || j.Attempt != 0 || j.MaxAttempts == 0 {
			return false
		}
	}
	return true
}

// plainArgs lays out the ARGV of enqueuePlainScript for jobs (plainBatch).
func (b *Backend) plainArgs(jobs []*backend.Job) ([]any, error) {
	n := len(jobs)
	// Queue by queue (in the order first met), then state, then task.
	sorted := slices.Clone(jobs)
	first := map[string]int{}
	for i, j := range jobs {
		if _, ok := first[j.Queue]; !ok {
			first[j.Queue] = i
		}
	}
	slices.SortStableFunc(sorted, func(x, y *backend.Job) int {
		return cmp.Or(cmp.Compare(first[x.Queue], first[y.Queue]), cmp.Compare(x.State, y.State), cmp.Compare(x.Task, y.Task))
	})
	a := newArgBuilder(2+n+8*n+3*len(first), 160*n)
	a.str(&b.ch)
	a.int(n)
	for _, j := range sorted {
		a.str(&j.ID)
	}
	lastPrio, lastRunAt := 0, sorted[0].RunAt
	pk0 := len(a.buf)
	a.buf = appendPrioKey(a.buf, lastPrio)
	pk1 := len(a.buf)
	ra0 := len(a.buf)
	a.buf = appendTimeKey(a.buf, lastRunAt)
	ra1 := len(a.buf)
	for k := 0; k < n; {
		q := sorted[k].Queue
		m := 1
		for k+m < n && sorted[k+m].Queue == q {
			m++
		}
		s := len(a.buf)
		a.buf = append(a.buf, b.qp(q)...)
		a.span(s)
		a.str(&sorted[k].Queue)
		a.int(m)
		for _, j := range sorted[k : k+m] {
			if j.Priority != lastPrio {
				pk0 = len(a.buf)
				a.buf = appendPrioKey(a.buf, j.Priority)
				pk1, lastPrio = len(a.buf), j.Priority
			}
			if !j.RunAt.Equal(lastRunAt) {
				ra0 = len(a.buf)
				a.buf = appendTimeKey(a.buf, j.RunAt)
				ra1, lastRunAt = len(a.buf), j.RunAt
			}
			a.str(&j.Task)
			s = len(a.buf)
			a.buf = append(a.buf, j.State...)
			a.span(s)
			a.spanOf(pk0, pk1)
			a.spanOf(ra0, ra1)
			s = len(a.buf)
			var err error
			if a.buf, err = appendStatic(a.buf, j); err != nil {
				return nil, err
			}
			a.span(s)
			s = len(a.buf)
			a.buf = strconv.AppendInt(a.buf, int64(j.MaxAttempts), 10)
			a.span(s)
			s = len(a.buf)
			if j.State == backend.StateQueued {
				a.buf = append(append(append(a.buf, a.buf[pk0:pk1]...), a.buf[ra0:ra1]...), j.ID...)
			} else {
				a.buf = append(append(append(a.buf, a.buf[ra0:ra1]...), a.buf[pk0:pk1]...), j.ID...)
			}
			a.span(s)
		}
		k += m
	}
	return a.done(), nil
}
