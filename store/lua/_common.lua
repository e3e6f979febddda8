-- Shared helpers: store/scripts.py prepends this file to every script below.
local unpack = unpack or table.unpack
-- Numbers are written with %d so both Lua 5.1 (Redis) and 5.4 (fakeredis) store "123", not "123.0".
local function int(n)
  return string.format('%d', n)
end

-- True when the project exists and belongs to the vendor; a foreign project looks missing.
local function owned(project_key, vendor_id)
  return redis.call('HGET', project_key, 'vendor_id') == vendor_id
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


-- Makes sure a key lives at least `seconds` more (never shortens a longer TTL).
local function live_for(key, seconds)
  local ttl = redis.call('TTL', key)
  if ttl < seconds then
    redis.call('EXPIRE', key, int(seconds))
  end
end
