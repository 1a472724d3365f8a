package redis

import (
	"cmp"
	"context"
	"slices"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuvom/nuvom/runtime/backend"
)

// Listing without an id index. Every job is in exactly one state index
// (P s:<state>), whose members are the job ids, so List and Search read the
// newest ids of a queue by merging the state indexes: a page reads at most
// one chunk of each, whatever the number of jobs. (Until round 3 of issue 14
// the state indexes were ordered by run-at and a separate index, P all, held
// every id: one more sorted-set insert per enqueued job.)

// idSource is a state index and the queue it belongs to.
type idSource struct{ q, key string }

// stateSources returns the state indexes of queues qs for states (every
// state when none).
func (b *Backend) stateSources(qs []string, states []backend.State) []idSource {
	if len(states) == 0 {
		states = backend.AllStates()
	}
	states = slices.Compact(slices.Sorted(slices.Values(states)))
	out := make([]idSource, 0, len(qs)*len(states))
	for _, q := range qs {
		for _, st := range states {
			out = append(out, idSource{q, b.qp(q) + "s:" + string(st)})
		}
	}
	return out
}

// idCand is an id read from a state index and the queue of that index.
type idCand struct{ id, q string }

// idsPage reads, from each source, up to chunk ids below cursor ("": from
// the newest) and at or above minID ("": no bound), in one transaction (per
// queue on a Cluster), and returns the ids known to be the newest of all the sources below
// the cursor, newest first: those at or above the highest last id of a full
// chunk (a source whose chunk was short has given every id down to minID).
// more reports whether some source may have more ids below the last
// returned. Every id of the sources below the cursor is either returned or
// below the last one returned.
func (b *Backend) idsPage(ctx context.Context, srcs []idSource, cursor, minID string, chunk int) (ids []idCand, more bool, err error) {
	max, min := "+", "-"
	if cursor != "" {
		max = "(" + cursor
	}
	if minID != "" {
		min = "[" + minID
	}
	// One transaction (a consistent view: a job moving between states is
	// seen in one of them); on a Cluster one per queue, a slot each.
	cmds := make([]*goredis.StringSliceCmd, len(srcs))
	for from := 0; from < len(srcs); {
		to := len(srcs)
		if b.cluster() {
			for to = from + 1; to < len(srcs) && srcs[to].q == srcs[from].q; to++ {
			}
		}
		if _, err := b.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			for i := from; i < to; i++ {
				cmds[i] = p.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: srcs[i].key, ByLex: true, Rev: true, Start: max, Stop: min, Count: int64(chunk)})
			}
			return nil
		}); err != nil {
			return nil, false, err
		}
		from = to
	}
	boundary := ""
	for _, c := range cmds {
		if got := c.Val(); len(got) == chunk && got[len(got)-1] > boundary {
			boundary = got[len(got)-1]
		}
	}
	for i, c := range cmds {
		for _, id := range c.Val() {
			if id >= boundary {
				ids = append(ids, idCand{id, srcs[i].q})
			}
		}
	}
	slices.SortFunc(ids, func(x, y idCand) int { return cmp.Or(cmp.Compare(y.id, x.id), cmp.Compare(x.q, y.q)) })
	ids = slices.CompactFunc(ids, func(x, y idCand) bool { return x.id == y.id && x.q == y.q })
	return ids, boundary != "", nil
}

// oldestQueuedScript returns the least run-at key of the queued jobs of a
// queue ("" when none), from its ready sets (pk..ra..id): per task, the first
// member of each priority (one ZRANGEBYLEX per priority present), so the
// cost grows with the tasks and priorities in use, not with the jobs.
// ARGV: P.
var oldestQueuedScript = goredis.NewScript(`
local P = ARGV[1]
-- hexlt compares 16-digit hex keys by their numeric value, in two halves
-- (Lua's < on strings follows the locale).
local function hexlt(a, b)
  local x, y = tonumber(string.sub(a, 1, 8), 16), tonumber(string.sub(b, 1, 8), 16)
  if not x or not y then return a < b end
  if x ~= y then return x < y end
  x, y = tonumber(string.sub(a, 9), 16), tonumber(string.sub(b, 9), 16)
  if not x or not y then return a < b end
  return x < y
end
local best = nil
for _, tk in ipairs(redis.call('SMEMBERS', P .. 'tasks')) do
  local k = P .. 'r:' .. tk
  local m = redis.call('ZRANGE', k, 0, 0)[1]
  while m do
    local ra = string.sub(m, 17, 32)
    if not best or hexlt(ra, best) then best = ra end
    m = redis.call('ZRANGEBYLEX', k, '(' .. string.sub(m, 1, 16) .. '~', '+', 'LIMIT', 0, 1)[1]
  end
end
return best or ''
`)
