-- uses _common.lua: int, owned, event, role_sync
-- Adds time to the unexpired, non-lifetime active keys among one batch of a project's active
-- keys (bulk extend walks the index with SSCAN and calls this per batch). Each key's TTL
-- moves with its expires_at in the same step.
-- KEYS[1] project hash, KEYS[n-3] role stream, KEYS[n-2] role re-check set,
-- KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] key hash prefix, ARGV[3] now, ARGV[4] seconds to add,
-- ARGV[5] retention (s), ARGV[6..] key ids of the batch
-- returns: {key_id, new_expires_at, ...} for the extended keys; error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local now, delta, retention = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {}
for i = 6, #ARGV do
  local key = ARGV[2] .. ARGV[i]
  local h = redis.call('HMGET', key, 'redeemed_at', 'expires_at')
  if h[1] and h[2] and h[2] ~= '' and tonumber(h[2]) > now then
    local expires = tonumber(h[2]) + delta
    redis.call('HSET', key, 'expires_at', int(expires))
    redis.call('PEXPIREAT', key, int((expires + retention) * 1000))
    out[#out + 1] = ARGV[i]
    out[#out + 1] = int(expires)
    role_sync(redis.call('HGET', key, 'discord_id'), 'EXTEND', int(expires))
  end
end
if #out > 0 then
  event('Success', 'EXTEND', int(#out / 2) .. ' keys extended', '', false)
end
return out
