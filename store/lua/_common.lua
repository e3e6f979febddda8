-- Shared helpers: store/scripts.py prepends this file to every script below. Each script's
-- first line lists what it takes from here (tests/test_lua_scripts.py holds it to the truth).
local unpack = unpack or table.unpack
-- Numbers are written with %d so both Lua 5.1 (Redis) and 5.4 (fakeredis) store "123", not "123.0".
local function int(n)
  return string.format('%d', n)
end

-- True when the project exists and belongs to the vendor; a foreign project looks missing.
local function owned(project_key, vendor_id)
  return redis.call('HGET', project_key, 'vendor_id') == vendor_id
end

-- Why a key may not be redeemed or deleted as a buyer key: 'L7:KEY_NOT_FOUND' (not the
-- vendor's, or no such key), `redeemed` (the error it is when it was redeemed), or nil.
local function unredeemed_refusal(project_key, key_hash, vendor_id, redeemed)
  if not owned(project_key, vendor_id) or redis.call('EXISTS', key_hash) == 0 then
    return 'L7:KEY_NOT_FOUND'
  end
  if redis.call('HEXISTS', key_hash, 'redeemed_at') == 1 then
    return redeemed
  end
  return nil
end

-- Drops key `id` from its redeemer's Discord index (`discord_prefix` .. the Discord id) and
-- from the key -> Discord id hash `key_discords`, when it has a redeemer.
local function forget_discord(key_discords, discord_prefix, id)
  local did = redis.call('HGET', key_discords, id)
  if did then
    redis.call('SREM', discord_prefix .. did, id)
    redis.call('HDEL', key_discords, id)
  end
end

-- SADD of every id in `ids` to `set`, 500 at a time (unpack has a stack limit).
local function sadd_all(set, ids)
  for i = 1, #ids, 500 do
    redis.call('SADD', set, unpack(ids, i, math.min(i + 499, #ids)))
  end
end

-- Turns a buyer key into an active key: stamps redeemed_at/expires_at and, for a key that
-- expires, sets the hash's TTL to expires_at + retention so Redis itself removes it later.
-- Returns expires_at ('' for a lifetime key).
local function redeem_key(key_hash, now, retention)
  local d = redis.call('HMGET', key_hash, 'key_days', 'key_hours', 'key_minutes')
  local total = (tonumber(d[1]) or 0) * 86400 + (tonumber(d[2]) or 0) * 3600
    + (tonumber(d[3]) or 0) * 60
  local expires = ''
  if total > 0 then
    expires = int(now + total)
  end
  redis.call('HSET', key_hash, 'redeemed_at', int(now), 'expires_at', expires,
    'hwid_resets', '0', 'total_executions', '0')
  if total > 0 then
    redis.call('PEXPIREAT', key_hash, int((now + total + retention) * 1000))
  end
  return expires
end

-- Appends an event to the project's capped event stream (the dashboard feed), in the step
-- that caused it. Events vendors are notified of also go, when the project has a webhook with
-- notifications on, to its durable notification stream, which the webhook deliverers trim
-- only once an event is delivered. Scripts that emit events pass the two streams as their
-- last two KEYS, and the project hash as KEYS[1]. The time is the caller's ``ts`` when given
-- (the loader check has it already), else the server's.
local EVENTS_CAP = '1000'  -- entries kept (about: MAXLEN ~) in a project's event stream
local function event(etype, kind, message, key_id, notify, extra, ts)
  ts = ts or redis.call('TIME')[1]
  local fields = {'type', etype, 'kind', kind, 'message', message, 'key_id', key_id, 'ts', ts}
  redis.call('XADD', KEYS[#KEYS - 1], 'MAXLEN', '~', EVENTS_CAP, '*', unpack(fields))
  if notify then
    local w = redis.call('HMGET', KEYS[1], 'webhook_url', 'notify_enabled')
    if w[1] and w[1] ~= '' and w[2] ~= '0' then
      for _, v in ipairs(extra or {}) do
        fields[#fields + 1] = v
      end
      redis.call('XADD', KEYS[#KEYS], 'MAXLEN', '~', '100000', '*', unpack(fields))
    end
  end
end


-- Makes sure a key lives at least `seconds` more (never shortens a longer TTL).
local function live_for(key, seconds)
  local ttl = redis.call('TTL', key)
  if ttl < seconds then
    redis.call('EXPIRE', key, int(seconds))
  end
end

-- Free keys: why a session may not go on from this client: 'NO_SESSION' (`found` false: none,
-- or another machine's), 'OTHER_IP' or 'OTHER_BROWSER' (the session's `ip` and browser digest
-- `ua` against the client's), or nil.
local function session_refusal(found, ip, ua, client_ip, browser)
  if not found then
    return 'NO_SESSION'
  end
  if ip ~= client_ip then
    return 'OTHER_IP'
  end
  if ua ~= browser then
    return 'OTHER_BROWSER'
  end
  return nil
end

-- One hit on a fixed-window rate limit kept in hash `key` (w = window number, n = hits):
-- windows are aligned to multiples of `window` epoch seconds, so every instance counts into
-- the same one; a refused hit is not counted; the hash expires with its window.
-- Returns {allowed (1 or 0), remaining, reset (epoch s when the window ends), retry_after}.
local function hit(key, now, window, limit)
  local idx = math.floor(now / window)
  local reset = (idx + 1) * window
  local h = redis.call('HMGET', key, 'w', 'n')
  local n = 0
  if h[1] == int(idx) then
    n = tonumber(h[2]) or 0
  end
  if n >= limit then
    return {0, 0, int(reset), int(reset - now)}
  end
  n = n + 1
  redis.call('HSET', key, 'w', int(idx), 'n', int(n))
  redis.call('EXPIRE', key, int(reset - now + 1))
  return {1, int(limit - n), int(reset), 0}
end

-- Discord role sync (store/roles.py): while the project (KEYS[1]) has a Discord role, a change
-- to a Discord user's keys appends the user to the project's role stream (the bot re-reads
-- the user's keys and grants or removes the role), and `at` (epoch s: a key's expiry, a timed
-- ban's end; nil for none) to the re-check set, so the bot's sweep looks at the user again
-- then (LT: the earliest time wins; the bot sets the exact next one when it applies). Scripts
-- that call it take the stream and the set just before the event streams: KEYS[n-3], KEYS[n-2].
local ROLES_CAP = '100000'  -- entries kept (about: MAXLEN ~) in a project's role stream
local function role_sync(discord_id, why, at)
  if not discord_id or discord_id == '' then
    return
  end
  if (redis.call('HGET', KEYS[1], 'discord_role_id') or '') == '' then
    return
  end
  redis.call('XADD', KEYS[#KEYS - 3], 'MAXLEN', '~', ROLES_CAP, '*', 'discord_id', discord_id,
    'why', why)
  if at and at ~= '' then
    redis.call('ZADD', KEYS[#KEYS - 2], 'LT', at, discord_id)
  end
end
