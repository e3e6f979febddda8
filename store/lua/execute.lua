-- The loader's execution check: every verdict in one atomic step and one round trip.
-- Checks run in this fixed order; the first that fails is the verdict:
--   PROJECT_NOT_FOUND, RATE_LIMITED (internal: the handler answers 429), PROJECT_INACTIVE,
--   HWID_BANNED (the vendor's blacklist: HWID or client IP; the entry's attempts are
--   counted), (free-for-all: HWID_BANNED, else KEY_VALID), KEY_INCORRECT, KEY_BANNED,
--   HWID_BANNED, KEY_EXPIRED, KEY_HWID_LOCKED, KEY_VALID.
-- (HWID_MISSING is decided by the handler before Redis is asked.)
-- Limits are per project and client (IP, or IPv6 /64), kept in one hash in the project's
-- slot: RATE_LIMITED while the client is blocked for failed checks (a block starts when its
-- ARGV[8]-th KEY_INCORRECT within ARGV[9] seconds of its first one happens, and lasts
-- ARGV[9] seconds), or when its executions in the current fixed window (ARGV[7] s, aligned
-- to epoch multiples) reached ARGV[6]. Refused checks are not counted.
-- A valid check redeems a still-unredeemed buyer key, binds the HWID if none is set, and
-- counts the execution; being one script, two racing first runs can never both bind.
-- What loaders receive from the project (source, name, version, macros) is returned only when
-- the caller's cached revision (ARGV[5]) is not the current one, so a large script does not
-- cross the wire on every run.
-- Every verdict but PROJECT_NOT_FOUND and RATE_LIMITED appends an event; a valid one also
-- counts the execution per project and per hour (the counter expires by itself after 13 h).
-- KEYS[1] project hash, KEYS[2] key hash, KEYS[3] HWID ban hash, KEYS[4] hosted source,
-- KEYS[5] active index, KEYS[6] the client's limit hash (fields w, n: execution window
-- number and count; f, fn: first failure time and failure count; b: blocked until),
-- KEYS[7] blacklisted HWIDs, KEYS[8] blacklisted IPs, KEYS[9] blacklist attempts,
-- KEYS[10] this hour's execution counter, KEYS[11] event stream, KEYS[12] notification
-- stream
-- ARGV[1] now (epoch s), ARGV[2] hwid, ARGV[3] retention (s), ARGV[4] key_id,
-- ARGV[5] source revision the caller has cached ('' = none), ARGV[6] executions per window
-- (0 = no limit), ARGV[7] execution window (s), ARGV[8] failures before a block (0 = no
-- brute-force defence), ARGV[9] failure window and block length (s), ARGV[10] client IP
-- returns: {'PROJECT_NOT_FOUND'}; {'RATE_LIMITED', 'x' (executions) or 'f' (failures),
--   reset (epoch s), retry_after (s)}; another failure {code, remaining, reset};
--   on success {'KEY_VALID', rev, {source, name, version, macros} or false when the caller's
--   revision is current, discord_id, total_executions, expires_at, note or false,
--   redeemed_now, ffa, remaining, reset}. remaining is the client's executions left in the
--   window (-1 without a limit), reset the window's end (0 without a limit).
local p = redis.call('HMGET', KEYS[1], 'vendor_id', 'is_active', 'ffa_active', 'rev')
if not p[1] then
  return {'PROJECT_NOT_FOUND'}
end
local now = tonumber(ARGV[1])
local client = KEYS[6]
local xlimit, xwindow = tonumber(ARGV[6]), tonumber(ARGV[7])
local flimit, fwindow = tonumber(ARGV[8]), tonumber(ARGV[9])
local remaining, reset = -1, 0
if xlimit > 0 or flimit > 0 then
  local c = redis.call('HMGET', client, 'w', 'n', 'b')
  local blocked = tonumber(c[3])
  if flimit > 0 and blocked and now < blocked then
    return {'RATE_LIMITED', 'f', int(blocked), int(blocked - now)}
  end
  if xlimit > 0 then
    local idx = math.floor(now / xwindow)
    reset = (idx + 1) * xwindow
    local n = 0
    if c[1] == int(idx) then
      n = tonumber(c[2]) or 0
    end
    if n >= xlimit then
      return {'RATE_LIMITED', 'x', int(reset), int(reset - now)}
    end
    n = n + 1
    remaining = xlimit - n
    redis.call('HSET', client, 'w', int(idx), 'n', int(n))
    if n == 1 then  -- a new window: the hash must outlive it (later hits need not look)
      live_for(client, reset - now + 1)
    end
  end
end

local function fail(code, etype, message, notify, extra)
  event(etype, 'EXECUTION', message, ARGV[4], notify, extra, ARGV[1])
  return {code, int(remaining), int(reset)}
end

-- A KEY_INCORRECT counts towards the client's block.
local function failed()
  if flimit > 0 then
    local c = redis.call('HMGET', client, 'f', 'fn')
    local first, n = tonumber(c[1]), tonumber(c[2]) or 0
    if not first or now >= first + fwindow then
      first, n = now, 0
    end
    n = n + 1
    if n >= flimit then
      redis.call('HSET', client, 'b', int(now + fwindow))
      redis.call('HDEL', client, 'f', 'fn')
    else
      redis.call('HSET', client, 'f', int(first), 'fn', int(n))
    end
    live_for(client, fwindow + 1)
  end
  return fail('KEY_INCORRECT', 'Warning', 'Invalid key refused', false)
end

if p[2] == '0' then
  return fail('PROJECT_INACTIVE', 'Warning', 'Execution refused: project inactive')
end
local hwid = ARGV[2]
local rev = p[4] or '0'

local listed = redis.call('HGET', KEYS[7], hwid) or redis.call('HGET', KEYS[8], ARGV[10])
if listed then
  redis.call('HINCRBY', KEYS[9], listed, 1)
  return fail('HWID_BANNED', 'Critical', 'Blacklisted HWID or IP refused', true,
    {'hwid', hwid, 'ip', ARGV[10], 'entry', listed})
end

local function valid(discord_id, n, expires, note, redeemed_now, ffa)
  if redis.call('INCR', KEYS[10]) == 1 then
    redis.call('EXPIRE', KEYS[10], 13 * 3600)
  end
  redis.call('HINCRBY', KEYS[1], 'executions', 1)
  event('Success', 'EXECUTION', 'Script executed', ARGV[4], false, nil, ARGV[1])
  local hosted = false
  if rev ~= ARGV[5] then
    local h = redis.call('HMGET', KEYS[1], 'name', 'version', 'source_macros')
    hosted = {redis.call('GET', KEYS[4]) or '', h[1] or '', h[2] or '0.0.0', h[3] or ''}
  end
  return {'KEY_VALID', rev, hosted, discord_id, n, expires, note, redeemed_now, ffa,
    int(remaining), int(reset)}
end

if p[3] == '1' then
  if redis.call('HEXISTS', KEYS[3], hwid) == 1 then
    return fail('HWID_BANNED', 'Critical', 'Banned HWID refused', false)
  end
  local n = redis.call('HINCRBY', KEYS[1], 'ffa_executions', 1)
  return valid('', n, '', 'FFA', '0', '1')
end
local k = redis.call('HMGET', KEYS[2], 'created_at', 'redeemed_at', 'banned', 'expires_at',
  'hwid', 'discord_id', 'note', 'total_executions')
if not k[1] then
  return failed()
end
if k[3] == '1' then
  return fail('KEY_BANNED', 'Critical', 'Banned key refused', false)
end
if redis.call('HEXISTS', KEYS[3], hwid) == 1 then
  return fail('HWID_BANNED', 'Critical', 'Banned HWID refused', false)
end
local expires = k[4] or ''
if k[2] and expires ~= '' and now >= tonumber(expires) then
  return fail('KEY_EXPIRED', 'Warning', 'Expired key refused', false)
end
if k[5] and k[5] ~= hwid then
  return fail('KEY_HWID_LOCKED', 'Warning', 'Key used from another HWID', true,
    {'hwid', hwid, 'bound_hwid', k[5]})
end
local redeemed_now = '0'
if not k[2] then
  expires = redeem_key(KEYS[2], now, tonumber(ARGV[3]))
  redis.call('SADD', KEYS[5], ARGV[4])
  redeemed_now = '1'
  event('Success', 'REDEEM', 'Key redeemed by the loader', ARGV[4], true, {'hwid', hwid},
    ARGV[1])
end
-- One HSET for the whole update of the key.
local n = (tonumber(k[8]) or 0) + 1
if k[5] then
  redis.call('HSET', KEYS[2], 'total_executions', int(n), 'last_execution', ARGV[1])
else
  redis.call('HSET', KEYS[2], 'total_executions', int(n), 'last_execution', ARGV[1],
    'hwid', hwid)
end
return valid(k[6] or '', n, expires, k[7] or false, redeemed_now, '0')
