//! The Lua scripts: every write, and every read that spans more than one key, runs as one
//! script, so other clients never see a row half written.
//!
//! Every script takes the same keys: `KEYS[1]` the jobs hash (id -> JSON), `KEYS[2]` the
//! run-time sorted set (id -> integer microseconds since 1970), `KEYS[3]` the revisions hash
//! (id -> decimal revision), `KEYS[4]` the claims hash (id -> `node|token|until µs`),
//! `KEYS[5]` the in-flight runs hash (`run µs|job id` -> node), `KEYS[6]` the nodes hash
//! (node id -> `last seen µs|info`), and `KEYS[7]` the wake-up channel (not a key: passed
//! with them so every script takes one list). Every write of a row clears its claim; every
//! write that gives a row a run time publishes the earliest run time it wrote (integer
//! microseconds) on the channel, so other schedulers look again at once if they would not
//! by then anyway. A row exists when its id is in the jobs hash or in the sorted set
//! (a run time without a record is shown to the adapter as a corrupt record, never hidden). A
//! missing revision reads as `0`. Revisions are compared as the decimal strings the store
//! wrote, so no Lua number rounding can make two revisions equal.

use std::sync::LazyLock;

use redis::Script;

/// The Lua function `read_fields(key, fields)`, as HMGET answers: put at the head of the
/// scripts that read many fields. HMGET looks each field up, and in a hash small enough to be
/// kept as a listpack (up to `hash-max-listpack-entries`, 512 on some servers) each lookup
/// scans the whole hash: a page of 500 reads took 0.6 ms. Reading the whole hash when it is
/// not much larger than the fields wanted is linear.
macro_rules! read_fields {
    () => {
        r"
local function read_fields(key, fields)
  if redis.call('HLEN', key) <= 2 * #fields then
    local all = redis.call('HGETALL', key)
    local found = {}
    for j = 1, #all, 2 do found[all[j]] = all[j + 1] end
    local values = {}
    for k = 1, #fields do values[k] = found[fields[k]] or false end
    return values
  end
  return redis.call('HMGET', key, unpack(fields))
end
"
    };
}

/// Groups of 4 arguments: id, JSON, revision, score (`""`: paused). Answers 1 (added) or 0
/// (the id exists, also when added earlier in the same call) per group.
pub(crate) static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
local earliest, earliest_score = nil, nil
for i = 1, #ARGV, 4 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 1 or redis.call('ZSCORE', KEYS[2], id) then
    out[#out + 1] = 0
  else
    redis.call('HSET', KEYS[1], id, ARGV[i + 1])
    redis.call('HSET', KEYS[3], id, ARGV[i + 2])
    redis.call('HDEL', KEYS[4], id)
    if ARGV[i + 3] ~= '' then
      redis.call('ZADD', KEYS[2], ARGV[i + 3], id)
      local score = tonumber(ARGV[i + 3])
      if earliest == nil or score < earliest_score then
        earliest, earliest_score = ARGV[i + 3], score
      end
    end
    out[#out + 1] = 1
  end
end
if earliest then redis.call('PUBLISH', KEYS[7], earliest) end
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
redis.call('HDEL', KEYS[4], id)
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[4], id)
  redis.call('PUBLISH', KEYS[7], ARGV[4])
else
  redis.call('ZREM', KEYS[2], id)
end
return 1
",
    )
});

/// `ARGV[1]`: `p` to publish a wake-up when a write gives a row a run time (updates), `-`
/// not to (fire commits, which only move run times later). Then groups of 9 arguments: id,
/// expected revision, `w` (write) or `d` (delete), JSON, revision, score (`""`: paused), the
/// node the fired runs are in flight on (`""`: none), their run times (integer microseconds
/// joined by `,`), and the job's instance limit across nodes (`""`: none). Each group applies
/// only if the row's record exists and its revision is the expected one, and then also clears
/// the row's claim and records the runs in flight; answers 1 (applied), 0 (not applied) or 2
/// (applied, but the runs were not recorded: the job already had as many runs in flight on
/// nodes listed in the nodes hash as its limit) per group. Conditional updates and fire
/// commits both run it. The in-flight runs are counted by reading the whole in-flight hash,
/// once per call and only when a group has a limit.
pub(crate) static CONDITIONAL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        read_fields!(),
        r"
-- Reads and writes go over the whole call at once: a few calls in all, not six per row. The
-- groups are still judged in order: `rows` holds each id's state as the groups before it
-- left it, and each id is written once, as the last group applied to it left it.
local out = {}
local earliest, earliest_score = nil, nil
local live = nil
local pending = {}
local function flush_runs()
  if #pending > 0 then
    redis.call('HSET', KEYS[5], unpack(pending))
    pending = {}
  end
end
local function live_runs(id)
  if live == nil then
    -- The runs recorded by earlier groups count, as if written one by one.
    flush_runs()
    live = {}
    local listed = {}
    local entries = redis.call('HGETALL', KEYS[5])
    for j = 1, #entries, 2 do
      local job = string.match(entries[j], '^%-?%d+|(.*)$')
      local node = entries[j + 1]
      if listed[node] == nil then
        listed[node] = redis.call('HEXISTS', KEYS[6], node) == 1
      end
      if job and listed[node] then live[job] = (live[job] or 0) + 1 end
    end
  end
  return live[id] or 0
end
local ids = {}
for i = 2, #ARGV, 9 do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then return out end
local revisions = read_fields(KEYS[3], ids)
local records = read_fields(KEYS[1], ids)
local rows = {}
local touched = {}
for k = 1, #ids do
  if rows[ids[k]] == nil then
    rows[ids[k]] = { exists = records[k] ~= false, revision = revisions[k] or '0' }
  end
end
for i = 2, #ARGV, 9 do
  local id = ARGV[i]
  local row = rows[id]
  if row.exists and row.revision == ARGV[i + 1] then
    local admitted = ARGV[i + 8] == '' or live_runs(id) < tonumber(ARGV[i + 8])
    if row.final == nil then touched[#touched + 1] = id end
    if ARGV[i + 2] == 'd' then
      row.exists = false
      row.revision = '0'
      row.final = false
    else
      row.revision = ARGV[i + 4]
      row.final = i
      if ARGV[i + 5] ~= '' then
        local score = tonumber(ARGV[i + 5])
        if earliest == nil or score < earliest_score then
          earliest, earliest_score = ARGV[i + 5], score
        end
      end
    end
    if not admitted then
      out[#out + 1] = 2
    else
      if ARGV[i + 6] ~= '' then
        for run in string.gmatch(ARGV[i + 7], '[^,]+') do
          pending[#pending + 1] = run .. '|' .. id
          pending[#pending + 1] = ARGV[i + 6]
          -- unpack takes at most a few thousand values.
          if #pending >= 1000 then flush_runs() end
        end
      end
      out[#out + 1] = 1
    end
  else
    out[#out + 1] = 0
  end
end
flush_runs()
if #touched > 0 then
  local jobs, revs, scores, unscheduled, gone = {}, {}, {}, {}, {}
  for _, id in ipairs(touched) do
    local i = rows[id].final
    if i then
      jobs[#jobs + 1] = id
      jobs[#jobs + 1] = ARGV[i + 3]
      revs[#revs + 1] = id
      revs[#revs + 1] = ARGV[i + 4]
      if ARGV[i + 5] ~= '' then
        scores[#scores + 1] = ARGV[i + 5]
        scores[#scores + 1] = id
      else
        unscheduled[#unscheduled + 1] = id
      end
    else
      gone[#gone + 1] = id
      unscheduled[#unscheduled + 1] = id
    end
  end
  -- Deleting fields of a listpack hash one by one is quadratic too: when these rows hold
  -- every claim there is (one node committing what it claimed), drop the hash whole.
  local cleared = false
  if redis.call('HLEN', KEYS[4]) <= #touched then
    local mine = {}
    for _, id in ipairs(touched) do mine[id] = true end
    cleared = true
    for _, held in ipairs(redis.call('HKEYS', KEYS[4])) do
      if not mine[held] then
        cleared = false
        break
      end
    end
  end
  if cleared then
    redis.call('DEL', KEYS[4])
  else
    redis.call('HDEL', KEYS[4], unpack(touched))
  end
  if #gone > 0 then
    redis.call('HDEL', KEYS[1], unpack(gone))
    redis.call('HDEL', KEYS[3], unpack(gone))
  end
  if #jobs > 0 then
    redis.call('HSET', KEYS[1], unpack(jobs))
    redis.call('HSET', KEYS[3], unpack(revs))
  end
  if #scores > 0 then redis.call('ZADD', KEYS[2], unpack(scores)) end
  if #unscheduled > 0 then redis.call('ZREM', KEYS[2], unpack(unscheduled)) end
end
if earliest and ARGV[1] == 'p' then redis.call('PUBLISH', KEYS[7], earliest) end
return out
",
    ))
});

/// id: removes the row whatever it holds; answers 1 if there was one.
pub(crate) static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local id = ARGV[1]
local record = redis.call('HDEL', KEYS[1], id)
local scheduled = redis.call('ZREM', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
redis.call('HDEL', KEYS[4], id)
if record + scheduled > 0 then return 1 else return 0 end
",
    )
});

/// The highest score, the limit: the first `limit` rows due at or before the score, in score
/// order (ties by id: a sorted set orders equal scores by member). Answers groups of 4: id,
/// score, revision (`""` if none), JSON (`""` if none).
pub(crate) static DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        read_fields!(),
        r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local out = {}
local members = {}
for i = 1, #ids, 2 do members[#members + 1] = ids[i] end
-- unpack takes at most a few thousand values: read the rows in slices.
for first = 1, #members, 1000 do
  local slice = { unpack(members, first, math.min(first + 999, #members)) }
  local revisions = read_fields(KEYS[3], slice)
  local records = read_fields(KEYS[1], slice)
  for k = 1, #slice do
    out[#out + 1] = slice[k]
    out[#out + 1] = ids[2 * (first + k - 1)]
    out[#out + 1] = revisions[k] or ''
    out[#out + 1] = records[k] or ''
  end
end
return out
",
    ))
});

/// The last rank to answer (the limit less one, computed by the caller: a Lua number would
/// lose precision on a huge one): the first scheduled rows in score order, as groups of 3:
/// id, score, revision (`""` if none).
pub(crate) static NEXT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ids = redis.call('ZRANGE', KEYS[2], 0, ARGV[1], 'WITHSCORES')
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

/// now (µs), limit, page size, node, token, until (µs): claims the first `limit` rows due at
/// or before now, in score order (ties by id), skipping rows whose claim another node holds
/// until after now, and sets each claimed row's claim to `node|token|until`. Answers the
/// claimed rows as [`DUE`] does. Looks through the due rows a page at a time, so rows claimed
/// by other nodes never fill the batch.
pub(crate) static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        read_fields!(),
        r"
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local page = tonumber(ARGV[3])
local node = ARGV[4]
local claim = node .. '|' .. ARGV[5] .. '|' .. ARGV[6]
local out = {}
local taken = 0
local offset = 0
while taken < limit do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', offset, page)
  if #ids == 0 then break end
  local members = {}
  for i = 1, #ids, 2 do members[#members + 1] = ids[i] end
  -- One call per page for each hash, not several per row.
  local claims = read_fields(KEYS[4], members)
  local free, scores, writes = {}, {}, {}
  for k = 1, #members do
    local held = claims[k]
    local ok = true
    if held then
      local holder, _, until_ = string.match(held, '^(.*)|([^|]*)|([^|]*)$')
      local lapses = tonumber(until_ or '')
      ok = holder == nil or holder == node or lapses == nil or lapses <= now
    end
    if ok then
      free[#free + 1] = members[k]
      scores[#scores + 1] = ids[2 * k]
      writes[#writes + 1] = members[k]
      writes[#writes + 1] = claim
      taken = taken + 1
      if taken >= limit then break end
    end
  end
  if #free > 0 then
    redis.call('HSET', KEYS[4], unpack(writes))
    local revisions = read_fields(KEYS[3], free)
    local records = read_fields(KEYS[1], free)
    for k = 1, #free do
      out[#out + 1] = free[k]
      out[#out + 1] = scores[k]
      out[#out + 1] = revisions[k] or ''
      out[#out + 1] = records[k] or ''
    end
  end
  if #ids < 2 * page then break end
  offset = offset + page
end
return out
",
    ))
});

/// node, then ids: clears the claims of those rows that `node` holds.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local released = 0
for i = 2, #ARGV do
  local held = redis.call('HGET', KEYS[4], ARGV[i])
  if held and string.match(held, '^(.*)|[^|]*|[^|]*$') == ARGV[1] then
    redis.call('HDEL', KEYS[4], ARGV[i])
    released = released + 1
  end
end
return released
",
    )
});

/// node id, last seen (µs, as written): removes the node's heartbeat if it still says that
/// time; answers 1 if it did.
pub(crate) static REMOVE_NODE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local seen = redis.call('HGET', KEYS[6], ARGV[1])
if seen and string.match(seen, '^(-?%d+)|') == ARGV[2] then
  redis.call('HDEL', KEYS[6], ARGV[1])
  return 1
end
return 0
",
    )
});

/// from, to: gives every in-flight run of node `from` to node `to`; answers the entries
/// moved (`run µs|job id`). Scans the in-flight hash, which holds only the runs in flight of
/// jobs with recovery on.
pub(crate) static ADOPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local all = redis.call('HGETALL', KEYS[5])
local out = {}
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then
    redis.call('HSET', KEYS[5], all[i], ARGV[2])
    out[#out + 1] = all[i]
  end
end
return out
",
    )
});
