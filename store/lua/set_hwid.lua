-- uses _common.lua: owned, event
-- Sets (or, with the empty string, clears) an active key's HWID.
-- KEYS[1] project hash, KEYS[2] key hash, KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] new HWID ('' = none), ARGV[3] key_id
-- returns: the previous HWID ('' when none); error L7:KEY_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) or redis.call('HEXISTS', KEYS[2], 'redeemed_at') == 0 then
  return redis.error_reply('L7:KEY_NOT_FOUND')
end
local old = redis.call('HGET', KEYS[2], 'hwid') or ''
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[2], 'hwid')
else
  redis.call('HSET', KEYS[2], 'hwid', ARGV[2])
end
event('Warning', 'HWID_SET', 'HWID set by the vendor', ARGV[3], true,
  {'old_hwid', old, 'hwid', ARGV[2]})
return old
