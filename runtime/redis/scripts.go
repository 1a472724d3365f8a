package redis

import goredis "github.com/redis/go-redis/v9"

// Every script is called with KEYS[1] = the queue's meta key ("<prefix>:{queue}:m")
// so that Redis Cluster routes it to the queue's slot, and ARGV[1] = the
// queue's key prefix ("<prefix>:{queue}:"): every key it touches carries the
// queue's hash tag, so one script touches one slot.
//
// Keys of a queue (P = the prefix):
//
//	P j:<id>      hash: the job
//	P r:<task>    zset (lex): queued jobs ready by priority, run-at, id  (pk..ra..id)
//	P w:<task>    zset (lex): scheduled and retrying jobs by run-at     (ra..pk..id)
//	P lease       zset (lex): running jobs by lease deadline            (lu..id)
//	P done        zset (lex): finished jobs by finish time              (fa..id;
//	              sixteen 0s for fa when a job ended without a finish time: dm)
//	P donewf      zset (lex): finished workflow parents that a pending step
//	              may still wait for: parked out of done, so that retention
//	              neither deletes nor counts them (wfkeep.go)
//	P s:<state>   zset (lex): the ids of the jobs in a state: Stats counts,
//	              List and Search merge them newest first
//	P tasks       set: the tasks that have had jobs on the queue
//	P u:<n>:<task>:<key>  zset (lex): jobs holding a unique key (uu..id); on a
//	              standalone Redis this index is global (prefix "<prefix>:"), so
//	              that keys match across queues; on a Cluster it is the queue's.
// A job's hash names its unique index key in field ux. A workflow step that
// has children carries field wp until no pending step waits for it any more
// (wfkeep.go): ended, it is indexed in donewf instead of done.

// prelude is shared by the scripts: index maintenance, bytewise comparison.
const prelude = `
local P = ARGV[1]
local function jk(id) return P .. 'j:' .. id end
local PENDING = {queued = true, scheduled = true, retrying = true}
local KNOWN = {queued = true, scheduled = true, retrying = true, running = true, succeeded = true,
  failed = true, cancelled = true, quarantined = true, pending = true}
-- lexlt compares byte strings as Redis orders lex members (Lua's < follows the locale).
local function lexlt(a, b)
  if a == b then return false end
  local n = math.min(#a, #b)
  local i = 1
  while i <= n do
    local j = math.min(i + 15, n)
    if string.sub(a, i, j) ~= string.sub(b, i, j) then
      for k = i, j do
        local x, y = string.byte(a, k), string.byte(b, k)
        if x ~= y then return x < y end
      end
    end
    i = j + 1
  end
  return #a < #b
end
-- Index writes go through zadd and zrem: while DEFER is set (the batch
-- scripts), they are collected per key and written by flush, one variadic
-- command per key instead of one command per job. A batch never adds and
-- removes the same member of the same key, so the order does not matter.
local DEFER = false
local ZA, ZR = {}, {}
local function zadd(key, m)
  if not DEFER then redis.call('ZADD', key, 0, m) return end
  local t = ZA[key]
  if not t then t = {} ; ZA[key] = t end
  t[#t + 1] = 0
  t[#t + 1] = m
end
local function zrem(key, m)
  if not DEFER then redis.call('ZREM', key, m) return end
  local t = ZR[key]
  if not t then t = {} ; ZR[key] = t end
  t[#t + 1] = m
end
-- bulk runs cmd key items... in chunks (Lua's unpack has a limit); chunks are even-sized.
local function bulk(cmd, key, items)
  for i = 1, #items, 4000 do
    redis.call(cmd, key, unpack(items, i, math.min(i + 3999, #items)))
  end
end
local function flush()
  for k, t in pairs(ZR) do bulk('ZREM', k, t) end
  for k, t in pairs(ZA) do bulk('ZADD', k, t) end
  ZA, ZR = {}, {}
end
-- int reads an integer field: a missing one is 0; nil when not an integer.
local function int(s)
  if s == nil or s == false then return 0 end
  if #s < 16 and string.match(s, '^%-?%d+$') then return tonumber(s) end
  return nil
end
-- nextv is the version after v (a damaged version restarts at 1).
local function nextv(v) return string.format('%d', (int(v) or 0) + 1) end
-- parked reports whether field wp (a workflow parent that a pending step
-- may wait for) is set.
local function parked(wp) return wp and wp ~= '' end
-- dm is job id's member of done and donewf: its finish key (field fa),
-- then its id. A job that ended without a finish time (fa empty) has the
-- lowest key, the oldest (backend.NewerEnded), so that every member is 16
-- characters of key and then the id.
local function dm(fa, id)
  if fa == '' then return '0000000000000000' .. id end
  return fa .. id
end
-- idx_remove and idx_add take field wp last: an ended job that carries it is
-- in donewf, not done (removal takes it from both, to be safe).
local function idx_remove(id, st, tk, pk, ra, lu, fa, wp)
  if not st then return end
  zrem(P .. 's:' .. st, id)
  if PENDING[st] then
    zrem(P .. 'r:' .. tk, pk .. ra .. id)
    zrem(P .. 'w:' .. tk, ra .. pk .. id)
  elseif st == 'running' then
    zrem(P .. 'lease', lu .. id)
  elseif st ~= 'pending' then -- a workflow step waiting for its parents: only its state index
    zrem(P .. 'done', dm(fa, id))
    if parked(wp) then zrem(P .. 'donewf', dm(fa, id)) end
    if fa == '' then zrem(P .. 'done', id) end -- as builds before dm wrote it
  end
end
local function idx_add(id, st, tk, pk, ra, lu, fa, wp)
  zadd(P .. 's:' .. st, id)
  if st == 'queued' then
    zadd(P .. 'r:' .. tk, pk .. ra .. id)
  elseif PENDING[st] then
    zadd(P .. 'w:' .. tk, ra .. pk .. id)
  elseif st == 'running' then
    zadd(P .. 'lease', lu .. id)
  elseif st ~= 'pending' then -- a workflow step waiting for its parents: only its state index
    if parked(wp) then zadd(P .. 'donewf', dm(fa, id)) else zadd(P .. 'done', dm(fa, id)) end
  end
end
-- idx_fields reads what the indexes of job id are made of ('' for missing fields).
local function idx_fields(id)
  local f = redis.call('HMGET', jk(id), 'st', 'tk', 'pk', 'ra', 'lu', 'fa', 'wp')
  if not f[1] then return nil end
  for i = 2, 7 do f[i] = f[i] or '' end
  return f
end
-- STEPS collects, as del_job deletes them, the workflow steps among the
-- deleted jobs: id, workflow id, ... (field wf names a step's workflow). A
-- script that deletes jobs returns it when it is not empty, so that the
-- client deletes what the workflows store of them (wfgc.go); a plain job
-- costs one more field read.
local STEPS = {}
local function del_job(id)
  local k = jk(id)
  local f = redis.call('HMGET', k, 'st', 'tk', 'pk', 'ra', 'lu', 'fa', 'ux', 'uu', 'wp', 'wf')
  for i = 2, 9 do f[i] = f[i] or '' end
  if f[1] then idx_remove(id, f[1], f[2], f[3], f[4], f[5], f[6], f[9]) end
  if f[7] ~= '' then redis.call('ZREM', f[7], f[8] .. id) end
  if f[10] then
    STEPS[#STEPS + 1] = id
    STEPS[#STEPS + 1] = f[10]
  end
  redis.call('DEL', k)
end
-- retain deletes the oldest finished jobs beyond keep (0: no limit) and
-- those finished before cutoff ('' : none), at most 1000 a call; it returns
-- their ids. It reads done only: parked jobs (donewf) are neither deleted nor counted.
local function retain(keep, cutoff)
  local gone = {}
  if keep > 0 then
    local c = redis.call('ZCARD', P .. 'done')
    if c > keep then
      for _, m in ipairs(redis.call('ZRANGE', P .. 'done', 0, math.min(c - keep, 1000) - 1)) do
        local id = string.sub(m, 17)
        del_job(id)
        gone[#gone + 1] = id
      end
    end
  end
  if cutoff ~= '' then
    for _, m in ipairs(redis.call('ZRANGEBYLEX', P .. 'done', '-', '(' .. cutoff, 'LIMIT', 0, 1000)) do
      local id = string.sub(m, 17)
      del_job(id)
      gone[#gone + 1] = id
    end
  end
  return gone
end
`

// enqueueScript inserts jobs, all or none. On a standalone Redis one call
// takes the whole batch, whatever its queues, and also records the ids in
// the location hash and the queue names (loc and queues set); on a Cluster
// one call takes one queue's jobs (loc and queues are empty, done before).
// ARGV: P, channel, loc, queues, reg, key prefix, n, then per job:
// id tk st pk ra q un [uk uu ux cr] nf, nf field pairs: un is '1' when the job
// has a unique key, followed by the key, its end, its index key and the
// creation time (a job without one sends 8 arguments and its fields).
// The job's key prefix is the key prefix and the queue's hash tag.
// It returns per job "" (inserted) or the id of the job holding its unique key.
// Per job it runs one HSET (and two commands for a unique key); the indexes,
// the location hash and the queues set are written once per batch. reg '0':
// the client knows every queue and task of the batch to be in the queues and
// tasks sets already (it added them a moment ago): they are not added again.
var enqueueScript = goredis.NewScript(prelude + `
local loc, queues, reg, prefix, n = ARGV[3], ARGV[4], ARGV[5] ~= '0', ARGV[6], tonumber(ARGV[7])
local i = 8
local starts, ids = {}, {}
for x = 1, n do
  starts[x] = i
  ids[x] = ARGV[i]
  local k = i + 7
  if ARGV[i + 6] == '1' then k = k + 4 end
  i = k + 1 + 2 * tonumber(ARGV[k])
end
local function qprefix(q) return prefix .. ':{' .. q .. '}:' end
local locSet = false -- one job: its location was recorded by the check
if loc ~= '' and n == 1 then
  if redis.call('HSETNX', loc, ids[1], ARGV[starts[1] + 5]) == 0 then
    return redis.error_reply('EXISTS job ' .. ids[1] .. ' exists')
  end
  locSet = true
elseif loc ~= '' then
  for c = 1, n, 4000 do
    local got = redis.call('HMGET', loc, unpack(ids, c, math.min(c + 3999, n)))
    for x = 1, #got do
      if got[x] then return redis.error_reply('EXISTS job ' .. ids[c + x - 1] .. ' exists') end
    end
  end
else
  for x = 1, n do
    P = qprefix(ARGV[starts[x] + 5])
    if redis.call('EXISTS', jk(ids[x])) == 1 then
      return redis.error_reply('EXISTS job ' .. ids[x] .. ' exists')
    end
  end
end
DEFER = true
local res, added = {}, 0
local seenTask, seenQueue, locArgs, newQueues = {}, {}, {}, {}
for x = 1, n do
  local i = starts[x]
  local id, tk, st, pk, ra, q = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5]
  local uk, uu, ux, cr = '', '', '', ''
  local k = i + 7
  if ARGV[i + 6] == '1' then
    uk, uu, ux, cr = ARGV[k], ARGV[k+1], ARGV[k+2], ARGV[k+3]
    k = k + 4
  end
  local nf = tonumber(ARGV[k])
  P = qprefix(q)
  local dup = nil
  if uk ~= '' then
    local h = redis.call('ZRANGE', ux, -1, -1)
    if h[1] and lexlt(cr, string.sub(h[1], 1, 16)) then dup = string.sub(h[1], 17) end
  end
  if dup then
    res[x] = dup
    if locSet then redis.call('HDEL', loc, id) end
  else
    local args = {'HSET', jk(id), 'tk', tk, 'st', st, 'pk', pk, 'ra', ra}
    if uk ~= '' then
      args[11], args[12], args[13], args[14], args[15], args[16] = 'uk', uk, 'uu', uu, 'ux', ux
    end
    for a = k + 1, k + 2 * nf do args[#args + 1] = ARGV[a] end
    redis.call(unpack(args))
    idx_add(id, st, tk, pk, ra, '', '')
    if reg and not seenTask[P .. tk] then
      seenTask[P .. tk] = true
      redis.call('SADD', P .. 'tasks', tk)
    end
    if uk ~= '' then redis.call('ZADD', ux, 0, uu .. id) end
    if loc ~= '' then
      if not locSet then
        locArgs[#locArgs + 1] = id
        locArgs[#locArgs + 1] = q
      end
      if reg and not seenQueue[q] then
        seenQueue[q] = true
        newQueues[#newQueues + 1] = q
      end
    end
    res[x] = ''
    added = added + 1
  end
end
flush()
bulk('HSET', loc, locArgs)
bulk('SADD', queues, newQueues)
if added > 0 then redis.call('PUBLISH', ARGV[2], '1') end
return res
`)

// enqueueOneScript inserts one job without a unique key on a standalone
// Redis whose queue and task this backend registered a moment ago: the
// common single enqueue. It does what enqueueScript does for such a job, with
// no prelude and no tables: per call, Lua's setup and its table work cost
// Redis more than the commands themselves.
// KEYS: the queue's meta key (routing), the job's key, its state index, its
// claim (r:) or waiting (w:) index, the location hash.
// ARGV: id, queue, channel, claim/waiting member, then the job's field pairs
// (tk, st, pk, ra and the rest).
// It returns "" (inserted).
var enqueueOneScript = goredis.NewScript(`
if redis.call('HSETNX', KEYS[5], ARGV[1], ARGV[2]) == 0 then
  return redis.error_reply('EXISTS job ' .. ARGV[1] .. ' exists')
end
redis.call('HSET', KEYS[2], unpack(ARGV, 5))
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('ZADD', KEYS[4], 0, ARGV[4])
redis.call('PUBLISH', ARGV[3], '1')
return ''
`)

// enqueueOnePlainScript is enqueueOneScript for a plain job (plainBatch of
// one: first attempt, an attempt limit, no lease, outcome or history): the
// record's field names, its key and its index keys and members are built
// here, so the call carries 10 arguments instead of about 20 (Redis spends
// about as much reading an argument and making it a Lua string as on a
// sorted-set insert's share of a command). It stores what enqueueScript
// stores for such a job (TestEnqueueFastPathsStoreTheSame).
// KEYS: the location hash.
// ARGV: the queue's key prefix, id, queue, channel, task, state, priority
// key, run-at key, field d, max attempts.
// It returns "" (inserted).
var enqueueOnePlainScript = goredis.NewScript(`
local P, id, tk, st, pk, ra = ARGV[1], ARGV[2], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if redis.call('HSETNX', KEYS[1], id, ARGV[3]) == 0 then
  return redis.error_reply('EXISTS job ' .. id .. ' exists')
end
redis.call('HSET', P .. 'j:' .. id, 'tk', tk, 'st', st, 'pk', pk, 'ra', ra, 'd', ARGV[9], 'ma', ARGV[10])
redis.call('ZADD', P .. 's:' .. st, 0, id)
if st == 'queued' then
  redis.call('ZADD', P .. 'r:' .. tk, 0, pk .. ra .. id)
else
  redis.call('ZADD', P .. 'w:' .. tk, 0, ra .. pk .. id)
end
redis.call('PUBLISH', ARGV[4], '1')
return ''
`)

// enqueueManyScript inserts a batch of jobs without unique keys on a
// standalone Redis whose queues and tasks this backend registered a moment
// ago: the common batched enqueue. The client lays out every command's
// arguments, so that the script runs them straight from ARGV (unpack of a
// slice) instead of building a Lua table per job and per index.
// KEYS: the first queue's meta key (routing), the location hash.
// ARGV: channel, n, then n ids, then n (id, queue) pairs, then per job its key,
// 2×(number of fields) and the field pairs, then per index key: the key, 2×m
// and m (0, member) pairs; the section of the indexes ends the arguments.
// It returns "" (all inserted) or fails with EXISTS when an id is taken.
var enqueueManyScript = goredis.NewScript(`
local n = tonumber(ARGV[2])
local i = 3
for c = i, i + n - 1, 4000 do
  local got = redis.call('HMGET', KEYS[2], unpack(ARGV, c, math.min(c + 3999, i + n - 1)))
  for x = 1, #got do
    if got[x] then return redis.error_reply('EXISTS job ' .. ARGV[c + x - 1] .. ' exists') end
  end
end
i = i + n
for c = i, i + 2 * n - 1, 4000 do
  redis.call('HSET', KEYS[2], unpack(ARGV, c, math.min(c + 3999, i + 2 * n - 1)))
end
i = i + 2 * n
for x = 1, n do
  local m = tonumber(ARGV[i + 1])
  redis.call('HSET', ARGV[i], unpack(ARGV, i + 2, i + 1 + m))
  i = i + 2 + m
end
while i <= #ARGV do
  local k, m = ARGV[i], tonumber(ARGV[i + 1])
  for c = i + 2, i + 1 + m, 4000 do
    redis.call('ZADD', k, unpack(ARGV, c, math.min(c + 3999, i + 1 + m)))
  end
  i = i + 2 + m
end
redis.call('PUBLISH', ARGV[1], '1')
return ''
`)

// claimScript leases up to limit ready jobs of the given queues (on a
// Cluster: one queue a call). No queues: every queue of the queues set. No
// tasks: every task of each queue.
// ARGV: P, now, now+1µs, limit, worker, lease-until, quarantine error,
// key prefix, queues set, nt, tasks..., nq, queues...
// It returns {{id1, fields of id1 (as HGETALL, before the claim), its new
// attempt, lease token and version, id2, ...}, quarantined ids}: the other
// claim fields (st running, sa now, lo worker, lu lease-until) are the
// caller's own arguments, so they are not copied into the reply.
// Per job it runs HGETALL and HSET; the ready sets lose the members looked
// at by one ZREMRANGEBYRANK each, the other indexes are written once per batch.
var claimScript = goredis.NewScript(prelude + `
local now, nowNext, limit, worker, lu, qerr = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7]
local prefix, queuesKey = ARGV[8], ARGV[9]
local nt = tonumber(ARGV[10])
local tasks, seen = {}, {}
for k = 1, nt do
  local t = ARGV[10 + k]
  if not seen[t] then seen[t] = true ; tasks[#tasks + 1] = t end
end
local nq = tonumber(ARGV[11 + nt])
local queues = {}
seen = {}
for k = 1, nq do
  local q = ARGV[11 + nt + k]
  if not seen[q] then seen[q] = true ; queues[#queues + 1] = q end
end
if nq == 0 then queues = redis.call('SMEMBERS', queuesKey) end
-- one candidate list per queue and task
local lp, lt, lists, pos = {}, {}, {}, {}
local page = limit + 16
for _, q in ipairs(queues) do
  P = prefix .. ':{' .. q .. '}:'
  local ts = tasks
  if redis.call('EXISTS', P .. 'paused') == 1 then ts = {} -- a paused queue (admin.go)
  elseif nt == 0 then ts = redis.call('SMEMBERS', P .. 'tasks') end
  for _, tk in ipairs(ts) do
    local wk, rk = P .. 'w:' .. tk, P .. 'r:' .. tk
    local due = redis.call('ZRANGEBYLEX', wk, '-', '(' .. nowNext, 'LIMIT', 0, 1000)
    if #due > 0 then
      local add = {}
      for _, m in ipairs(due) do
        add[#add + 1] = 0
        add[#add + 1] = string.sub(m, 17, 32) .. string.sub(m, 1, 16) .. string.sub(m, 33)
      end
      bulk('ZREM', wk, due)
      bulk('ZADD', rk, add)
    end
    local l = redis.call('ZRANGE', rk, 0, page - 1)
    if #l > 0 then
      local n = #lists + 1
      lp[n], lt[n], lists[n], pos[n] = P, tk, l, 1
    end
  end
end
-- consume removes from list li's ready set the members looked at so far
-- (taken, stale, or moved back to waiting): they are its first pos-1.
local function consume(li)
  if pos[li] > 1 then
    redis.call('ZREMRANGEBYRANK', lp[li] .. 'r:' .. lt[li], 0, pos[li] - 2)
    pos[li] = 1
  end
end
local function quarantine(k, v, id, st, tk, pk, ra, msg)
  redis.call('HSET', k, 'st', 'quarantined', 'fa', now, 'lo', '', 'lu', '', 'o', cmsgpack.pack({e = qerr .. msg}), 'v', nextv(v))
  local wp = nil -- a damaged record is rare: only then is wp looked up
  if redis.call('HEXISTS', k, 'wp') == 1 then wp = '1' end
  idx_add(id, 'quarantined', tk, pk, ra, '', now, wp)
end
-- hexlt compares two 16-digit lowercase hex keys as lexlt does, with two
-- number comparisons (lexlt when one is not such a key).
local function hexlt(a, b)
  if a == b then return false end
  local x, y = tonumber(string.sub(a, 1, 8), 16), tonumber(string.sub(b, 1, 8), 16)
  if #a ~= 16 or #b ~= 16 or not x or not y then return lexlt(a, b) end
  if x ~= y then return x < y end
  x, y = tonumber(string.sub(a, 9), 16), tonumber(string.sub(b, 9), 16)
  if not x or not y then return lexlt(a, b) end
  return x < y
end
DEFER = true
local out, bad, taken = {}, {}, 0
while taken < limit do
  local best, bm = nil, nil
  for li = 1, #lists do
    local m = lists[li][pos[li]]
    if not m and #lists[li] == page then
      -- every member looked at so far left the set: read on from its head
      consume(li)
      lists[li] = redis.call('ZRANGE', lp[li] .. 'r:' .. lt[li], 0, page - 1)
      m = lists[li][1]
    end
    if m and (bm == nil or lexlt(m, bm)) then best, bm = li, m end
  end
  if not best then break end
  pos[best] = pos[best] + 1
  P = lp[best]
  local tk = lt[best]
  local pk, ra, id = string.sub(bm, 1, 16), string.sub(bm, 17, 32), string.sub(bm, 33)
  local k = jk(id)
  if hexlt(now, ra) then
    -- not ready at this claimer's clock (clocks of hosts disagree): back to waiting
    zadd(P .. 'w:' .. tk, ra .. pk .. id)
  else
    local h = redis.call('HGETALL', k)
    local st, at, lt, v
    for x = 1, #h, 2 do
      local name = h[x]
      if name == 'st' then st = h[x + 1]
      elseif name == 'at' then at = h[x + 1]
      elseif name == 'lt' then lt = h[x + 1]
      elseif name == 'v' then v = h[x + 1] end
    end
    if not st or not PENDING[st] then
      -- a stale index entry (already consumed)
      if st and not KNOWN[st] then
        zrem(P .. 's:' .. st, id)
        quarantine(k, v, id, st, tk, pk, ra, 'unknown state ' .. st)
        bad[#bad + 1] = id
      end
    else
      zrem(P .. 's:' .. st, id)
      if st ~= 'queued' then zrem(P .. 'w:' .. tk, ra .. pk .. id) end
      local a, t = int(at), int(lt)
      if not a or not t then
        quarantine(k, v, id, st, tk, pk, ra, 'attempt or lease token is not an integer')
        bad[#bad + 1] = id
      else
        a, t, v = string.format('%d', a + 1), string.format('%d', t + 1), nextv(v)
        redis.call('HSET', k, 'st', 'running', 'sa', now, 'lo', worker, 'lu', lu, 'at', a, 'lt', t, 'v', v)
        zadd(P .. 's:running', id)
        zadd(P .. 'lease', lu .. id)
        out[#out + 1] = id
        out[#out + 1] = h
        out[#out + 1] = a
        out[#out + 1] = t
        out[#out + 1] = v
        taken = taken + 1
      end
    end
  end
end
for li = 1, #lists do consume(li) end
flush()
return {out, bad}
`)

// completeScript applies outcomes whose fence holds, counts them in the
// queue's hourly aggregates (admin.go), then applies retention.
// ARGV: P, channel, keep, cutoff, n, aggregate TTL (seconds), aggregate
// hours kept, then per outcome: id token st ra fa outcome attempt refund
// minute hour np, then np (field, increment) pairs: the outcome's counts,
// added to field "<minute>|<task>|<field>" of hash P agg:<hour>.
// It returns {per outcome 1 applied, 0 lease lost, -1 not found; ids deleted
// by retention}, and, when retention deleted workflow steps, STEPS third.
// Per outcome it runs HMGET and HSET; the indexes are written once per
// batch, the aggregates once per distinct field.
var completeScript = goredis.NewScript(prelude + `
local n, ttl, keepHours = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local res, retried = {}, false
local agg, hours = {}, {}
DEFER = true
local i = 8
for x = 1, n do
  local id, token, st, ra, fa = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4]
  local minute, hour, np = ARGV[i+8], ARGV[i+9], tonumber(ARGV[i+10])
  local k = jk(id)
  local f = redis.call('HMGET', k, 'st', 'lt', 'tk', 'pk', 'ra', 'lu', 'h', 'v', 'ma', 'wp')
  if not f[1] then
    res[x] = -1
  elseif f[1] ~= 'running' or f[2] ~= token then
    res[x] = 0
  else
    idx_remove(id, 'running', f[3] or '', f[4] or '', f[5] or '', f[6] or '', '')
    local nra, nfa = f[5] or '', fa
    if st == 'retrying' then nra, nfa = ra, '' ; retried = true end
    if ARGV[i+7] == '1' then
      redis.call('HSET', k, 'st', st, 'ra', nra, 'fa', nfa, 'lo', '', 'lu', '', 'o', ARGV[i+5],
        'h', (f[7] or '') .. ARGV[i+6], 'v', nextv(f[8]), 'ma', string.format('%d', (int(f[9]) or 0) + 1))
    else
      redis.call('HSET', k, 'st', st, 'ra', nra, 'fa', nfa, 'lo', '', 'lu', '', 'o', ARGV[i+5],
        'h', (f[7] or '') .. ARGV[i+6], 'v', nextv(f[8]))
    end
    idx_add(id, st, f[3] or '', f[4] or '', nra, '', nfa, f[10])
    res[x] = 1
    if np > 0 then
      local t = agg[hour]
      if not t then t = {} ; agg[hour] = t ; hours[#hours + 1] = hour end
      local pre = minute .. '|' .. (f[3] or '') .. '|'
      for p = i + 11, i + 9 + 2 * np, 2 do
        local name = pre .. ARGV[p]
        t[name] = (t[name] or 0) + tonumber(ARGV[p + 1])
      end
    end
  end
  i = i + 11 + 2 * np
end
flush()
DEFER = false
for _, hour in ipairs(hours) do
  local ak = P .. 'agg:' .. hour
  for name, v in pairs(agg[hour]) do redis.call('HINCRBY', ak, name, string.format('%d', v)) end
  redis.call('EXPIRE', ak, ttl)
  redis.call('ZADD', P .. 'aggh', hour, hour)
  redis.call('ZREMRANGEBYSCORE', P .. 'aggh', '-inf', '(' .. string.format('%d', tonumber(hour) - keepHours))
end
if retried then redis.call('PUBLISH', ARGV[2], '1') end
local gone = retain(tonumber(ARGV[3]), ARGV[4])
if #STEPS > 0 then return {res, gone, STEPS} end
return {res, gone}
`)

// extendScript moves the deadline of held leases. ARGV: P, until, n, (id token)...
// It returns the ids whose lease is not held.
var extendScript = goredis.NewScript(prelude + `
local lu, n, lost = ARGV[2], tonumber(ARGV[3]), {}
for x = 0, n - 1 do
  local id, token = ARGV[4 + 2 * x], ARGV[5 + 2 * x]
  local k = jk(id)
  local f = redis.call('HMGET', k, 'st', 'lt', 'lu')
  if f[1] ~= 'running' or f[2] ~= token then
    lost[#lost + 1] = id
  else
    redis.call('ZREM', P .. 'lease', (f[3] or '') .. id)
    redis.call('HSET', k, 'lu', lu)
    redis.call('HINCRBY', k, 'v', 1)
    redis.call('ZADD', P .. 'lease', 0, lu .. id)
  end
end
return lost
`)

// releaseScript hands held leases back. ARGV: P, channel, n, (id token)...
var releaseScript = goredis.NewScript(prelude + `
local n, done = tonumber(ARGV[3]), 0
for x = 0, n - 1 do
  local id, token = ARGV[4 + 2 * x], ARGV[5 + 2 * x]
  local k = jk(id)
  local f = redis.call('HMGET', k, 'st', 'lt', 'tk', 'pk', 'ra', 'lu')
  if f[1] == 'running' and f[2] == token then
    idx_remove(id, 'running', f[3] or '', f[4] or '', f[5] or '', f[6] or '', '')
    redis.call('HSET', k, 'st', 'queued', 'lo', '', 'lu', '')
    redis.call('HINCRBY', k, 'at', -1)
    redis.call('HINCRBY', k, 'v', 1)
    idx_add(id, 'queued', f[3] or '', f[4] or '', f[5] or '', '', '')
    done = done + 1
  end
end
if done > 0 then redis.call('PUBLISH', ARGV[2], '1') end
return done
`)

// casScript rewrites fields of a job if its version is still the one read.
// ARGV: P, channel, id, version, publish (0/1), field pairs...
// It returns 1 applied, 0 version changed, -1 not found.
var casScript = goredis.NewScript(prelude + `
local id = ARGV[3]
local k = jk(id)
if redis.call('EXISTS', k) == 0 then return -1 end
if (redis.call('HGET', k, 'v') or '') ~= ARGV[4] then return 0 end
local f = idx_fields(id)
if f then idx_remove(id, f[1], f[2], f[3], f[4], f[5], f[6], f[7]) end
local args = {'HSET', k}
for i = 6, #ARGV do args[#args + 1] = ARGV[i] end
redis.call(unpack(args))
redis.call('HINCRBY', k, 'v', 1)
local g = idx_fields(id)
idx_add(id, g[1], g[2], g[3], g[4], g[5], g[6], g[7])
if ARGV[5] == '1' then redis.call('PUBLISH', ARGV[2], '1') end
return 1
`)

// purgeScript deletes jobs of one queue that are not running, at most 1000 a call.
// ARGV: P, cutoff, from, nstates, states..., nids, ids...  (no ids: every job
// of the states; no states: every state but running). cutoff, when not empty,
// keeps the purge to ended jobs (succeeded, failed, cancelled, quarantined)
// below it in the done index's order: finished before it when it is a time
// key (PurgeEnded), before the job of a whole done member (finish key and
// id: TrimEnded's cut), or any ended job when it is "+". A job without a
// finish key is below every cutoff. Without ids they are read from the
// queue's done index in finish order, after member from (empty: from the
// start), at most 1000 looked at a call. With a cutoff (retention) a job
// carrying wp, parked out of done for a workflow step that may wait for it,
// is kept; without one (Purge) it goes like any other.
// It returns where the next call starts (empty when nothing is left to look
// at; else the last member looked at, or "-" to start over), then how many
// of the deleted ids were pending workflow steps (only ids can select
// those), then the length of STEPS, then the deleted ids, those first, then
// STEPS (the workflow steps among them with their workflows).
var purgeScript = goredis.NewScript(prelude + `
local FINAL = {succeeded = true, failed = true, cancelled = true, quarantined = true}
local cutoff, from, ns = ARGV[2], ARGV[3], tonumber(ARGV[4])
local states = {}
for k = 1, ns do states[ARGV[4 + k]] = true end
local ni = tonumber(ARGV[5 + ns])
local out = {'', '0', '0'}
local function take(id)
  del_job(id)
  out[#out + 1] = id
end
local function reply()
  out[3] = tostring(#STEPS)
  for _, x in ipairs(STEPS) do out[#out + 1] = x end
  return out
end
local function wanted(st)
  return st and st ~= 'running' and (ns == 0 or states[st]) and (cutoff == '' or FINAL[st])
end
if ni > 0 then
  local rest = {}
  for k = 1, ni do
    local id = ARGV[5 + ns + k]
    local f = redis.call('HMGET', jk(id), 'st', 'fa', 'wp')
    local fa = f[2] or ''
    if wanted(f[1]) and (cutoff == '' or not parked(f[3])) and
      (cutoff == '' or cutoff == '+' or fa == '' or lexlt(fa .. id, cutoff)) then
      if f[1] == 'pending' then take(id) else rest[#rest + 1] = id end
    end
  end
  out[2] = tostring(#out - 3)
  for _, id in ipairs(rest) do take(id) end
  return reply()
end
if cutoff ~= '' then
  local lo = '-'
  if from ~= '' then lo = '(' .. from end
  local hi = '+'
  if cutoff ~= '+' then hi = '(' .. cutoff end
  local ms = redis.call('ZRANGEBYLEX', P .. 'done', lo, hi, 'LIMIT', 0, 1000)
  for _, m in ipairs(ms) do
    local id = string.sub(m, 17)
    if wanted(redis.call('HGET', jk(id), 'st')) then take(id) end
  end
  if #ms == 1000 then out[1] = ms[#ms] end
  return reply()
end
local list = {'scheduled', 'queued', 'retrying', 'succeeded', 'failed', 'cancelled', 'quarantined'}
for _, st in ipairs(list) do
  if ns == 0 or states[st] then
    for _, id in ipairs(redis.call('ZRANGE', P .. 's:' .. st, 0, 1001 - #out)) do
      take(id)
    end
    if #out > 1001 then
      out[1] = '-'
      return reply()
    end
  end
end
return reply()
`)

// trimCutScript finds where TrimEnded cuts one queue's done index: the
// member of its keep-th newest ended job (keep > 0) in one of the states
// (none: in any), walking the index newest first, below member from (empty:
// from the newest), at most 1000 members a call, seen matching ones already
// counted by the calls before. Without states, or when the index holds at
// most keep members, it answers in one call without walking. Parked jobs
// (donewf) are not in the index: neither counted nor cut.
// ARGV: P, keep, from, seen, nstates, states...
// It returns the cut (empty when not found), then where the next call starts
// (empty when there is nothing left to walk: fewer than keep match), then
// seen.
var trimCutScript = goredis.NewScript(prelude + `
local keep, from, seen, ns = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local D = P .. 'done'
if redis.call('ZCARD', D) <= keep then return {'', '', seen} end
if ns == 0 then return {redis.call('ZREVRANGE', D, keep - 1, keep - 1)[1] or '', '', seen} end
local states = {}
for k = 1, ns do states[ARGV[5 + k]] = true end
local hi = '+'
if from ~= '' then hi = '(' .. from end
local ms = redis.call('ZREVRANGEBYLEX', D, hi, '-', 'LIMIT', 0, 1000)
for _, m in ipairs(ms) do
  local st = redis.call('HGET', jk(string.sub(m, 17)), 'st')
  if st and states[st] then
    seen = seen + 1
    if seen == keep then return {m, '', seen} end
  end
end
if #ms == 1000 then return {'', ms[#ms], seen} end
return {'', '', seen}
`)

// retainScript applies retention to one queue. ARGV: P, keep, cutoff.
// It returns {the deleted ids, STEPS}.
var retainScript = goredis.NewScript(prelude + `
return {retain(tonumber(ARGV[2]), ARGV[3]), STEPS}
`)

// unparkScript ends the parking of workflow parents of one queue that no
// pending step waits for any more (wfkeep.go): per id it drops field wp and,
// when the job is parked in donewf, moves it to done; then it applies
// retention (keep, cutoff: retain's arguments; 0 and empty for none).
// ARGV: P, keep, cutoff, ids...
// It returns {the ids deleted by retention, STEPS}.
var unparkScript = goredis.NewScript(prelude + `
for k = 4, #ARGV do
  local id = ARGV[k]
  local f = redis.call('HMGET', jk(id), 'wp', 'fa')
  if parked(f[1]) then
    redis.call('HDEL', jk(id), 'wp')
    local m = dm(f[2] or '', id)
    if redis.call('ZREM', P .. 'donewf', m) == 1 then redis.call('ZADD', P .. 'done', 0, m) end
  end
end
return {retain(tonumber(ARGV[2]), ARGV[3]), STEPS}
`)

// reserveScript records the queue of every id of a batch in the location hash
// KEYS[1], or none when one of the ids is there already (it returns that id).
// ARGV: id queue pairs.
var reserveScript = goredis.NewScript(`
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then return ARGV[i] end
end
for i = 1, #ARGV, 4000 do
  local args = {'HSET', KEYS[1]}
  for k = i, math.min(i + 3999, #ARGV) do args[#args + 1] = ARGV[k] end
  redis.call(unpack(args))
end
return ''
`)

var allScripts = []*goredis.Script{enqueueScript, enqueueOneScript, enqueueOnePlainScript, enqueueManyScript, claimScript, completeScript, extendScript,
	releaseScript, casScript, purgeScript, retainScript, reserveScript, oldestQueuedScript,
	enqueuePlainScript, trimCutScript, unparkScript}
