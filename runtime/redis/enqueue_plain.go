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
// command). Jobs come in runs that share task, state, priority, run-at and
// attempt limit (a batch made at one moment is one run): per job only its
// id and field d; the field names, the record's key, the location and the
// index entries are built by the script. It stores what enqueueScript
// stores for such jobs (TestEnqueueFastPathsStoreTheSame).
// KEYS: the first queue's meta key (routing), the location hash.
// ARGV: channel, n, the n ids, then per queue: its key prefix, its name and
// its number of runs, then per run: task, state, priority key, run-at key,
// max attempts, m, and the m jobs' d fields, in the order of the ids; runs
// of one state and task are adjacent (an index is written once per
// sequence of runs that add to it).
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
  local P, q, runs = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local sk, s, rk, r = '', {}, '', {}
  for _ = 1, runs do
    local tk, st, pk, ra, ma, m = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5])
    i = i + 6
    local k = P .. 's:' .. st
    if k ~= sk then s = flush('ZADD', sk, s) ; sk = k end
    local pre = ra .. pk
    k = P .. 'w:' .. tk
    if st == 'queued' then pre, k = pk .. ra, P .. 'r:' .. tk end
    if k ~= rk then r = flush('ZADD', rk, r) ; rk = k end
    for _ = 1, m do
      local id = ARGV[x]
      x = x + 1
      redis.call('HSET', P .. 'j:' .. id, 'tk', tk, 'st', st, 'pk', pk, 'ra', ra, 'd', ARGV[i], 'ma', ma)
      i = i + 1
      loc[#loc + 1] = id
      loc[#loc + 1] = q
      s[#s + 1] = '0'
      s[#s + 1] = id
      r[#r + 1] = '0'
      r[#r + 1] = pre .. id
      if #loc >= 4000 then
        loc = flush('HSET', KEYS[2], loc)
        s = flush('ZADD', sk, s)
        r = flush('ZADD', rk, r)
      end
    end
  end
  flush('ZADD', sk, s)
  flush('ZADD', rk, r)
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
	// Queue by queue (in the order first met), then by state, task and the
	// other values a run shares.
	sorted := slices.Clone(jobs)
	first := map[string]int{}
	for i, j := range jobs {
		if _, ok := first[j.Queue]; !ok {
			first[j.Queue] = i
		}
	}
	slices.SortStableFunc(sorted, func(x, y *backend.Job) int {
		return cmp.Or(cmp.Compare(first[x.Queue], first[y.Queue]), cmp.Compare(x.State, y.State), cmp.Compare(x.Task, y.Task),
			cmp.Compare(x.Priority, y.Priority), x.RunAt.Compare(y.RunAt), cmp.Compare(x.MaxAttempts, y.MaxAttempts))
	})
	a := newArgBuilder(2+3*n, 100*n)
	a.str(&b.ch)
	a.int(n)
	for _, j := range sorted {
		a.str(&j.ID)
	}
	sameRun := func(x, y *backend.Job) bool {
		return x.Queue == y.Queue && x.State == y.State && x.Task == y.Task && x.Priority == y.Priority &&
			x.RunAt.Equal(y.RunAt) && x.MaxAttempts == y.MaxAttempts
	}
	for k := 0; k < n; {
		q := sorted[k].Queue
		end := k + 1
		for end < n && sorted[end].Queue == q {
			end++
		}
		s := len(a.buf)
		a.buf = append(a.buf, b.qp(q)...)
		a.span(s)
		a.str(&sorted[k].Queue)
		runs := a.placeholder()
		nr := 0
		for r := k; r < end; nr++ {
			j := sorted[r]
			m := 1
			for r+m < end && sameRun(j, sorted[r+m]) {
				m++
			}
			a.str(&j.Task)
			s = len(a.buf)
			a.buf = append(a.buf, j.State...)
			a.span(s)
			s = len(a.buf)
			a.buf = appendPrioKey(a.buf, j.Priority)
			a.span(s)
			s = len(a.buf)
			a.buf = appendTimeKey(a.buf, j.RunAt)
			a.span(s)
			a.int(j.MaxAttempts)
			a.int(m)
			for _, j := range sorted[r : r+m] {
				s = len(a.buf)
				var err error
				if a.buf, err = appendStatic(a.buf, j); err != nil {
					return nil, err
				}
				a.span(s)
			}
			r += m
		}
		s = len(a.buf)
		a.buf = strconv.AppendInt(a.buf, int64(nr), 10)
		a.fix = append(a.fix, argSpan{runs, s, len(a.buf)})
		k = end
	}
	return a.done(), nil
}
