"""Lua scripts of the Redis backend; each touches ONE key, so Redis Cluster takes them as they are.

Key schema (P = the configured `state.prefix`; the `{P}` hash tag puts all of them on one slot):

    {P}:state     hash   v -> version (starts at server ms, +1 per change)
                             p:<provider> -> JSON of ProviderShared (times: Redis server clock)
                             TTL STATE_TTL_MS, refreshed by every write
    {P}:load      hash   <reporter> -> {"t": server time, "e": {provider: [in_flight, ms]}}
                             TTL LOAD_TTL_MS; fields older than the stale limit are pruned
    {P}:prober    string owner of the health-prober role, PX lease
    {P}:probes    string the prober's latest results (JSON), PX PROBES_TTL_MS
    {P}:rl:<hex>  hash   w, c, p: sliding-window counts of one client key; TTL 120 s
    channel {P}:changed    the new version, published by every state change

Every script takes "now" from `redis.call('TIME')`: one clock for the whole fleet.
"""

from __future__ import annotations

PRELUDE = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function load_state(key, name)
  local raw = redis.call('HGET', key, 'p:' .. name)
  if raw then return cjson.decode(raw) end
  return {cooldown_until = 0, cooldown_reason = '', consecutive_failures = 0,
          circuit_tripped = false, trial_owner = '', trial_until = 0, last_error_at = 0}
end
local function save_state(key, name, state, ttl_ms, channel)
  local encoded = cjson.encode(state)
  redis.call('HSET', key, 'p:' .. name, encoded)
  if redis.call('HEXISTS', key, 'v') == 0 then
    redis.call('HSET', key, 'v', math.floor(now * 1000))  -- a re-created key never reuses a version
  end
  local version = redis.call('HINCRBY', key, 'v', 1)
  redis.call('PEXPIRE', key, ttl_ms)
  redis.call('PUBLISH', channel, version)
  return {version, encoded}
end
"""

# KEYS: state. ARGV: name, reason, retry_after ('' = none), cooldown, max_cooldown, threshold,
# jitter, ttl_ms, channel. Returns {version, state JSON}.
FAILURE = PRELUDE + """
local s = load_state(KEYS[1], ARGV[1])
local failures = s.consecutive_failures + 1
local base = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ math.min(failures - 1, 64))
local cooldown = math.min(tonumber(ARGV[5]), base * tonumber(ARGV[7]))
local retry_after = tonumber(ARGV[3])
if retry_after and retry_after > 0 then cooldown = math.max(cooldown, retry_after) end
s.cooldown_until = math.max(s.cooldown_until, now + cooldown)
s.cooldown_reason = ARGV[2]
s.consecutive_failures = failures
s.circuit_tripped = s.circuit_tripped or failures >= tonumber(ARGV[6])
s.trial_owner = ''
s.trial_until = 0
s.last_error_at = now
return save_state(KEYS[1], ARGV[1], s, ARGV[8], ARGV[9])
"""

# KEYS: state. ARGV: name, ttl_ms, channel. Returns {} when already clean (nothing written).
SUCCESS = PRELUDE + """
local s = load_state(KEYS[1], ARGV[1])
if s.consecutive_failures == 0 and not s.circuit_tripped and s.trial_owner == '' then return {} end
s.consecutive_failures = 0
s.circuit_tripped = false
s.trial_owner = ''
s.trial_until = 0
return save_state(KEYS[1], ARGV[1], s, ARGV[2], ARGV[3])
"""

# KEYS: state. ARGV: name, owner, lease_seconds, ttl_ms, channel.
# Returns {1} closed (send), {0} refused, {1, version, state JSON} trial granted.
CLAIM_TRIAL = PRELUDE + """
local s = load_state(KEYS[1], ARGV[1])
if not s.circuit_tripped then return {1} end
if now < s.cooldown_until then return {0} end
if s.trial_owner ~= '' and s.trial_until > now then return {0} end
s.trial_owner = ARGV[2]
s.trial_until = now + tonumber(ARGV[3])
local saved = save_state(KEYS[1], ARGV[1], s, ARGV[4], ARGV[5])
return {1, saved[1], saved[2]}
"""

# KEYS: state. ARGV: name, owner, ttl_ms, channel. Returns {} when owner did not hold it.
RELEASE_TRIAL = PRELUDE + """
local s = load_state(KEYS[1], ARGV[1])
if s.trial_owner == '' or s.trial_owner ~= ARGV[2] then return {} end
s.trial_owner = ''
s.trial_until = 0
return save_state(KEYS[1], ARGV[1], s, ARGV[3], ARGV[4])
"""

# KEYS: rate key of one client. ARGV: limit. Returns {allowed 0/1, retry_after seconds}.
# The same sliding-window estimate as transitions.decide_rate.
RATE_LIMIT = PRELUDE + """
local limit = tonumber(ARGV[1])
local window = math.floor(now / 60)
local stored = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local w, c, p = tonumber(stored[1]), tonumber(stored[2]) or 0, tonumber(stored[3]) or 0
if not w or w < window - 1 then c, p = 0, 0
elseif w == window - 1 then c, p = 0, c end
local elapsed = now / 60 - window
local estimate = p * (1 - elapsed) + c
if estimate + 1 <= limit + 1e-9 then
  redis.call('HSET', KEYS[1], 'w', window, 'c', c + 1, 'p', p)
  redis.call('PEXPIRE', KEYS[1], 120000)
  return {1, 0}
end
local spare = limit - 1 - c
local wait
if spare > 0 and p > 0 then
  wait = (1 - spare / p - elapsed) * 60
else
  local next_fraction = 0
  if c > 0 then next_fraction = math.max(0, 1 - (limit - 1) / c) end
  wait = (1 - elapsed + next_fraction) * 60
end
return {0, math.max(1, math.ceil(wait - 1e-9))}
"""

# KEYS: prober. ARGV: owner, lease_ms. Returns 1 while owner holds the role.
CLAIM_PROBER = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: load. ARGV: reporter, entries JSON, stale_seconds, ttl_ms. Prunes dead reporters.
PUBLISH_LOAD = PRELUDE + """
redis.call('HSET', KEYS[1], ARGV[1], '{"t":' .. string.format('%.3f', now) .. ',"e":' .. ARGV[2] .. '}')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, report = pcall(cjson.decode, all[i + 1])
  if not ok or report.t < now - 10 * tonumber(ARGV[3]) then redis.call('HDEL', KEYS[1], all[i]) end
end
return 1
"""

# KEYS: prober. ARGV: owner. Deletes the role only when owner holds it.
RELEASE_PROBER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""
