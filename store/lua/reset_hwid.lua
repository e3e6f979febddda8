-- uses _common.lua: owned, event
-- Clears an active key's HWID and counts the reset (vendor reset: no cooldown).
-- KEYS[1] project hash, KEYS[2] key hash, KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] now, ARGV[3] key_id
-- returns: the previous HWID ('' when none); error L7:KEY_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) or redis.call('HEXISTS', KEYS[2], 'redeemed_at') == 0 then
  return redis.error_reply('L7:KEY_NOT_FOUND')
end
local old = redis.call('HGET', KEYS[2], 'hwid') or ''
redis.call('HDEL', KEYS[2], 'hwid')
redis.call('HINCRBY', KEYS[2], 'hwid_resets', 1)
redis.call('HSET', KEYS[2], 'last_reset', ARGV[2])
event('Warning', 'HWID_RESET', 'HWID reset by the vendor', ARGV[3], true, {'old_hwid', old})
return old
