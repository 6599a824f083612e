//! The Lua scripts: every write, and every read that spans more than one key, runs as one
//! script, so other clients never see a row half written.
//!
//! Every script takes the same three keys: `KEYS[1]` the jobs hash (id -> JSON), `KEYS[2]` the
//! run-time sorted set (id -> integer microseconds since 1970), `KEYS[3]` the revisions hash
//! (id -> decimal revision). A row exists when its id is in the jobs hash or in the sorted set
//! (a run time without a record is shown to the adapter as a corrupt record, never hidden). A
//! missing revision reads as `0`. Revisions are compared as the decimal strings the store
//! wrote, so no Lua number rounding can make two revisions equal.

use std::sync::LazyLock;

use redis::Script;

/// Groups of 4 arguments: id, JSON, revision, score (`""`: paused). Answers 1 (added) or 0
/// (the id exists, also when added earlier in the same call) per group.
pub(crate) static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for i = 1, #ARGV, 4 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 1 or redis.call('ZSCORE', KEYS[2], id) then
    out[#out + 1] = 0
  else
    redis.call('HSET', KEYS[1], id, ARGV[i + 1])
    redis.call('HSET', KEYS[3], id, ARGV[i + 2])
    if ARGV[i + 3] ~= '' then redis.call('ZADD', KEYS[2], ARGV[i + 3], id) end
    out[#out + 1] = 1
  end
end
return out
",
    )
});

/// id, JSON, revision, score (`""`: paused): adds or replaces the row.
pub(crate) static UPSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local id = ARGV[1]
redis.call('HSET', KEYS[1], id, ARGV[2])
redis.call('HSET', KEYS[3], id, ARGV[3])
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[4], id)
else
  redis.call('ZREM', KEYS[2], id)
end
return 1
",
    )
});

/// Groups of 6 arguments: id, expected revision, `w` (write) or `d` (delete), JSON, revision,
/// score (`""`: paused). Each group applies only if the row's record exists and its revision
/// is the expected one; answers 1 (applied) or 0 per group. Conditional updates and fire
/// commits both run it.
pub(crate) static CONDITIONAL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for i = 1, #ARGV, 6 do
  local id = ARGV[i]
  local current = redis.call('HGET', KEYS[3], id) or '0'
  if redis.call('HEXISTS', KEYS[1], id) == 1 and current == ARGV[i + 1] then
    if ARGV[i + 2] == 'd' then
      redis.call('HDEL', KEYS[1], id)
      redis.call('HDEL', KEYS[3], id)
      redis.call('ZREM', KEYS[2], id)
    else
      redis.call('HSET', KEYS[1], id, ARGV[i + 3])
      redis.call('HSET', KEYS[3], id, ARGV[i + 4])
      if ARGV[i + 5] ~= '' then
        redis.call('ZADD', KEYS[2], ARGV[i + 5], id)
      else
        redis.call('ZREM', KEYS[2], id)
      end
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
",
    )
});

/// id: removes the row whatever it holds; answers 1 if there was one.
pub(crate) static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local id = ARGV[1]
local record = redis.call('HDEL', KEYS[1], id)
local scheduled = redis.call('ZREM', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
if record + scheduled > 0 then return 1 else return 0 end
",
    )
});

/// The highest score, the limit: the first `limit` rows due at or before the score, in score
/// order (ties by id: a sorted set orders equal scores by member). Answers groups of 4: id,
/// score, revision (`""` if none), JSON (`""` if none).
pub(crate) static DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local out = {}
for i = 1, #ids, 2 do
  local id = ids[i]
  out[#out + 1] = id
  out[#out + 1] = ids[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[3], id) or ''
  out[#out + 1] = redis.call('HGET', KEYS[1], id) or ''
end
return out
",
    )
});

/// The limit: the first `limit` scheduled rows in score order, as groups of 3: id, score,
/// revision (`""` if none).
pub(crate) static NEXT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ids = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #ids, 2 do
  local id = ids[i]
  out[#out + 1] = id
  out[#out + 1] = ids[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[3], id) or ''
end
return out
",
    )
});
