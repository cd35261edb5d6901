//! The store's steps that must be atomic, as Lua scripts run by Redis. Each touches one
//! route's keys only: `KEYS[1]` is the route's key prefix (`<prefix>{<route>}:`), and every
//! key a script names starts with it, so all of them hash to one slot (Redis Cluster
//! keeps a route on one shard) and one script sees and changes them at once.
//!
//! A route's keys (see docs/queue.md "Replicas" for the operator's view):
//! - `e:<seq>`: one event, a hash (`id`, `sid` shown id, `t` type, `s` state 0/1/2, `z`
//!   size, `ct` content type, `r` received, `a` attempts, `n` next attempt, `ls` last
//!   status, `le` last error, `sa` settled, `h` history lines, `b` body, `k` the lease
//!   of the attempt in flight);
//! - `ids`: id -> the seq of its newest event (dedup, and the API's look-up by id);
//! - `due`: pending events not in flight, by the time they are due;
//! - `fly`: events in flight, by the time their lease ends (then another replica may
//!   take them over);
//! - `st:0`, `st:1`, `st:2`: the events in each state, by seq (lists, counts, bulk
//!   changes); `all`: every event, by seq;
//! - `set`: delivered and dead events, by the time they settled (the retention sweep);
//! - `bytes`: the bodies of pending and dead events; `paused`: present while paused.

/// Lua the scripts share, put in front of those that use it, so that each rule is
/// written once: what counts as a duplicate (the write and its rate-limit check must
/// agree), and how a settled event goes back to pending (one redelivery or many).
macro_rules! shared_lua {
    () => {
        r"
-- Whether id's newest event is pending, or settled within ttl ms of now.
local function held(base, id, now, ttl)
  local old = redis.call('HGET', base .. 'ids', id)
  if not old then return false end
  local f = redis.call('HMGET', base .. 'e:' .. old, 's', 'sa')
  return f[1] == '0' or (f[2] and tonumber(f[2]) >= now - ttl)
end
-- Event seq (its hash e), in state from ('1' delivered, '2' dead), back to pending,
-- attempts reset, due now.
local function back_to_pending(base, seq, e, from, now)
  redis.call('HSET', e, 's', '0', 'a', 0, 'n', now)
  redis.call('HDEL', e, 'sa')
  redis.call('ZREM', base .. 'st:' .. from, seq)
  redis.call('ZREM', base .. 'set', seq)
  redis.call('ZADD', base .. 'st:0', seq, seq)
  redis.call('ZADD', base .. 'due', now, seq)
  if from == '1' then redis.call('INCRBY', base .. 'bytes', redis.call('HGET', e, 'z')) end
end
"
    };
}

/// Stores a request's new events. ARGV: now, dedup ttl in ms (-1: none), the first seq,
/// the count, then per event: id, shown id, type, content type ('' for none), body.
/// Returns, per event, its seq, or 0 for a duplicate (pending, or settled within the
/// ttl; copies within the write count too).
pub(super) const ENQUEUE: &str = concat!(
    shared_lua!(),
    r"
local base = KEYS[1]
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local first, n = tonumber(ARGV[3]), tonumber(ARGV[4])
local out, here = {}, {}
for i = 0, n - 1 do
  local o = 5 + i * 5
  local id, body = ARGV[o], ARGV[o + 4]
  if ttl >= 0 and (here[id] or held(base, id, now, ttl)) then
    out[#out + 1] = 0
  else
    local seq = first + i
    local e = base .. 'e:' .. seq
    redis.call('HSET', e, 'id', id, 'sid', ARGV[o + 1], 't', ARGV[o + 2], 's', '0',
      'z', #body, 'r', now, 'a', 0, 'n', now, 'h', '', 'b', body)
    if ARGV[o + 3] ~= '' then redis.call('HSET', e, 'ct', ARGV[o + 3]) end
    redis.call('HSET', base .. 'ids', id, seq)
    redis.call('ZADD', base .. 'due', now, seq)
    redis.call('ZADD', base .. 'st:0', seq, seq)
    redis.call('ZADD', base .. 'all', seq, seq)
    redis.call('INCRBY', base .. 'bytes', #body)
    here[id] = true
    out[#out + 1] = seq
  end
end
return out
"
);

/// Which of the ids (ARGV from 3) would be stored now: 1 new, 0 duplicate. ARGV: now,
/// ttl in ms. Read only: the rate limit is asked only when something is new.
pub(super) const NEW_IDS: &str = concat!(
    shared_lua!(),
    r"
local base = KEYS[1]
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local out, here = {}, {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local new = 1
  if ttl >= 0 and (here[id] or held(base, id, now, ttl)) then new = 0 end
  here[id] = true
  out[#out + 1] = new
end
return out
"
);

/// Takes events in flight: first gives back those whose lease ended (their replica
/// stopped), then, unless the route is paused, takes up to `free` due events (with
/// `in_order`, only the oldest pending one, when none is in flight). ARGV: now, free,
/// lease ms, the lease token, in_order (1 or 0). Returns {next due or -1, then per event
/// taken: seq, id, shown id, type, content type (false: none), attempts, next, body}.
pub(super) const CLAIM: &str = r"
local base = KEYS[1]
local now, free, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local token, in_order = ARGV[4], ARGV[5] == '1'
for _, s in ipairs(redis.call('ZRANGEBYSCORE', base .. 'fly', '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', base .. 'fly', s)
  redis.call('HDEL', base .. 'e:' .. s, 'k')
  redis.call('ZADD', base .. 'due', now, s)
end
local out = {-1}
if redis.call('EXISTS', base .. 'paused') == 1 then return out end
local take = {}
if in_order then
  if redis.call('ZCARD', base .. 'fly') == 0 then
    local head = redis.call('ZRANGE', base .. 'st:0', 0, 0)[1]
    if head then
      local at = redis.call('ZSCORE', base .. 'due', head)
      if at and tonumber(at) <= now then
        take[1] = head
      elseif at then
        out[1] = tonumber(at)
      end
    end
  end
else
  take = redis.call('ZRANGEBYSCORE', base .. 'due', '-inf', now, 'LIMIT', 0, free)
  if #take == 0 then
    local soonest = redis.call('ZRANGE', base .. 'due', 0, 0, 'WITHSCORES')
    if soonest[2] then out[1] = tonumber(soonest[2]) end
  end
end
for _, s in ipairs(take) do
  local e = base .. 'e:' .. s
  redis.call('ZREM', base .. 'due', s)
  redis.call('ZADD', base .. 'fly', now + lease, s)
  redis.call('HSET', e, 'k', token)
  local f = redis.call('HMGET', e, 'id', 'sid', 't', 'ct', 'a', 'n', 'b')
  out[#out + 1] = tonumber(s)
  for j = 1, 7 do out[#out + 1] = f[j] end
end
return out
";

/// Stores an attempt's outcome, if its lease still holds (else another replica took the
/// event over, and its own attempt decides). ARGV: seq, token, the history line, what
/// follows ('d' delivered, 'r' retry, 'x' dead), at, status ('' none), error ('' none),
/// next attempt. Returns 1 when stored, 0 when the lease had passed.
pub(super) const SETTLE: &str = r"
local base = KEYS[1]
local seq, token, line, follows = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local at, status, err, nxt = tonumber(ARGV[5]), ARGV[6], ARGV[7], tonumber(ARGV[8])
local e = base .. 'e:' .. seq
if redis.call('HGET', e, 'k') ~= token then return 0 end
redis.call('ZREM', base .. 'fly', seq)
redis.call('HDEL', e, 'k')
redis.call('HINCRBY', e, 'a', 1)
redis.call('HSET', e, 'h', redis.call('HGET', e, 'h') .. line)
if status ~= '' then redis.call('HSET', e, 'ls', status) else redis.call('HDEL', e, 'ls') end
if err ~= '' then redis.call('HSET', e, 'le', err) else redis.call('HDEL', e, 'le') end
if follows == 'r' then
  redis.call('HSET', e, 'n', nxt)
  redis.call('ZADD', base .. 'due', nxt, seq)
  return 1
end
local state = follows == 'd' and '1' or '2'
redis.call('HSET', e, 's', state, 'n', at, 'sa', at)
redis.call('ZREM', base .. 'st:0', seq)
redis.call('ZADD', base .. 'st:' .. state, seq, seq)
redis.call('ZADD', base .. 'set', at, seq)
if state == '1' then
  redis.call('DECRBY', base .. 'bytes', redis.call('HGET', e, 'z'))
end
return 1
";

/// The newest event of an id: a dead or delivered one back to pending (attempts reset),
/// a pending one waiting for a later time due now. ARGV: id, now. Returns 0 not found,
/// 1 requeued, 2 hurried, 3 in flight.
pub(super) const REDELIVER: &str = concat!(
    shared_lua!(),
    r"
local base = KEYS[1]
local id, now = ARGV[1], tonumber(ARGV[2])
local seq = redis.call('HGET', base .. 'ids', id)
if not seq then return 0 end
local e = base .. 'e:' .. seq
local state = redis.call('HGET', e, 's')
if not state then return 0 end
if state == '0' then
  if redis.call('ZSCORE', base .. 'fly', seq) then return 3 end
  local at = redis.call('ZSCORE', base .. 'due', seq)
  if at and tonumber(at) > now then
    redis.call('ZADD', base .. 'due', now, seq)
    redis.call('HSET', e, 'n', now)
  end
  return 2
end
back_to_pending(base, seq, e, state, now)
return 1
"
);

/// The events of ARGV from 3 back to pending, attempts reset, those still in state
/// ARGV[2] ('1' delivered or '2' dead). ARGV[1]: now. Returns how many.
pub(super) const REQUEUE: &str = concat!(
    shared_lua!(),
    r"
local base = KEYS[1]
local now, from = tonumber(ARGV[1]), ARGV[2]
local n = 0
for i = 3, #ARGV do
  local seq = ARGV[i]
  local e = base .. 'e:' .. seq
  if redis.call('HGET', e, 's') == from then
    back_to_pending(base, seq, e, from, now)
    n = n + 1
  end
end
return n
"
);

/// Up to ARGV[2] pending events due later than ARGV[1] (now), due now. Returns how many.
pub(super) const RETRY_NOW: &str = r"
local base = KEYS[1]
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local later = redis.call('ZRANGEBYSCORE', base .. 'due', '(' .. now, '+inf', 'LIMIT', 0, limit)
for _, s in ipairs(later) do
  redis.call('ZADD', base .. 'due', now, s)
  redis.call('HSET', base .. 'e:' .. s, 'n', now)
end
return #later
";

/// Deletes up to ARGV[2] settled events that settled before ARGV[1]. Returns how many.
pub(super) const SWEEP: &str = r"
local base = KEYS[1]
local cutoff, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local old = redis.call('ZRANGEBYSCORE', base .. 'set', '-inf', '(' .. cutoff, 'LIMIT', 0, limit)
for _, s in ipairs(old) do
  local e = base .. 'e:' .. s
  local f = redis.call('HMGET', e, 'id', 's', 'z')
  if f[1] and redis.call('HGET', base .. 'ids', f[1]) == s then
    redis.call('HDEL', base .. 'ids', f[1])
  end
  if f[2] == '2' and f[3] then redis.call('DECRBY', base .. 'bytes', f[3]) end
  if f[2] then redis.call('ZREM', base .. 'st:' .. f[2], s) end
  redis.call('ZREM', base .. 'set', s)
  redis.call('ZREM', base .. 'all', s)
  redis.call('DEL', e)
end
return #old
";
