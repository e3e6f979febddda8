-- uses _common.lua: owned, event, role_sync
-- Lifts a key's ban (its reason and end too) and the HWID block that ban made, in one step.
-- KEYS[1] project hash, KEYS[2] key hash, KEYS[3] HWID ban hash, KEYS[n-3] role stream,
-- KEYS[n-2] role re-check set (role_sync), KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] key_id
-- returns: 1 when newly unbanned, 0 when it was not banned; error L7:KEY_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) or redis.call('HEXISTS', KEYS[2], 'redeemed_at') == 0 then
  return redis.error_reply('L7:KEY_NOT_FOUND')
end
if redis.call('HGET', KEYS[2], 'banned') ~= '1' then
  return 0
end
local hwid = redis.call('HGET', KEYS[2], 'banned_hwid')
redis.call('HDEL', KEYS[2], 'banned', 'banned_hwid', 'ban_until', 'ban_reason')
if hwid then
  if redis.call('HINCRBY', KEYS[3], hwid, -1) <= 0 then
    redis.call('HDEL', KEYS[3], hwid)
  end
end
event('Success', 'UNBAN', 'Key unbanned', ARGV[2], true)
role_sync(redis.call('HGET', KEYS[2], 'discord_id'), 'UNBAN')
return 1
