-- The loader's execution check: every verdict in one atomic step and one round trip.
-- Checks run in this fixed order; the first that fails is the verdict:
--   PROJECT_NOT_FOUND, PROJECT_INACTIVE, HWID_BANNED (the vendor's blacklist: HWID or client
--   IP; the entry's attempts are counted), (free-for-all: HWID_BANNED, else KEY_VALID),
--   KEY_INCORRECT, KEY_BANNED, HWID_BANNED, KEY_EXPIRED, KEY_HWID_LOCKED, KEY_VALID.
-- (HWID_MISSING is decided by the handler before Redis is asked.)
-- A valid check redeems a still-unredeemed buyer key, binds the HWID if none is set, and
-- counts the execution; being one script, two racing first runs can never both bind.
-- What loaders receive from the project (source, name, version, macros) is returned only when
-- the caller's cached revision (ARGV[5]) is not the current one, so a large script does not
-- cross the wire on every run.
-- KEYS[1] project hash, KEYS[2] key hash, KEYS[3] HWID ban hash, KEYS[4] hosted source,
-- KEYS[5] active index, KEYS[6] blacklisted HWIDs, KEYS[7] blacklisted IPs,
-- KEYS[8] blacklist attempts, KEYS[9] this hour's execution counter, KEYS[10] event stream,
-- KEYS[11] notification stream
-- Every verdict but PROJECT_NOT_FOUND appends an event; a valid one also counts the execution
-- per project and per hour (the counter expires by itself after 13 hours).
-- ARGV[1] now (epoch s), ARGV[2] hwid, ARGV[3] retention (s), ARGV[4] key_id,
-- ARGV[5] source revision the caller has cached ('' = none), ARGV[6] client IP
-- returns: {code} on failure; on success {'KEY_VALID', rev, {source, name, version, macros}
--   or false when the caller's revision is current, discord_id, total_executions,
--   expires_at, note or false, redeemed_now, ffa}
local p = redis.call('HMGET', KEYS[1], 'vendor_id', 'is_active', 'ffa_active', 'rev')
if not p[1] then
  return {'PROJECT_NOT_FOUND'}
end
local function fail(code, etype, message, notify, extra)
  event(etype, 'EXECUTION', message, ARGV[4], notify, extra, ARGV[1])
  return {code}
end

if p[2] == '0' then
  return fail('PROJECT_INACTIVE', 'Warning', 'Execution refused: project inactive')
end
local hwid = ARGV[2]
local rev = p[4] or '0'

local listed = redis.call('HGET', KEYS[6], hwid) or redis.call('HGET', KEYS[7], ARGV[6])
if listed then
  redis.call('HINCRBY', KEYS[8], listed, 1)
  return fail('HWID_BANNED', 'Critical', 'Blacklisted HWID or IP refused', true,
    {'hwid', hwid, 'ip', ARGV[6], 'entry', listed})
end

local function valid(discord_id, n, expires, note, redeemed_now, ffa)
  if redis.call('INCR', KEYS[9]) == 1 then
    redis.call('EXPIRE', KEYS[9], 13 * 3600)
  end
  redis.call('HINCRBY', KEYS[1], 'executions', 1)
  event('Success', 'EXECUTION', 'Script executed', ARGV[4], false, nil, ARGV[1])
  local hosted = false
  if rev ~= ARGV[5] then
    local h = redis.call('HMGET', KEYS[1], 'name', 'version', 'source_macros')
    hosted = {redis.call('GET', KEYS[4]) or '', h[1] or '', h[2] or '0.0.0', h[3] or ''}
  end
  return {'KEY_VALID', rev, hosted, discord_id, n, expires, note, redeemed_now, ffa}
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
  return fail('KEY_INCORRECT', 'Warning', 'Invalid key refused', false)
end
if k[3] == '1' then
  return fail('KEY_BANNED', 'Critical', 'Banned key refused', false)
end
if redis.call('HEXISTS', KEYS[3], hwid) == 1 then
  return fail('HWID_BANNED', 'Critical', 'Banned HWID refused', false)
end
local now = tonumber(ARGV[1])
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
