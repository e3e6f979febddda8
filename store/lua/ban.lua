-- Bans an active key and blocks its HWID project-wide in the same step, so no execution can
-- slip between the two. The HWID ban is counted per banned key, so unbanning one of two keys
-- that share a HWID keeps the HWID blocked.
-- KEYS[1] project hash, KEYS[2] key hash, KEYS[3] HWID ban hash (hwid -> number of bans),
-- KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] key_id
-- returns: 1 when newly banned, 0 when it already was; error L7:KEY_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) or redis.call('HEXISTS', KEYS[2], 'redeemed_at') == 0 then
  return redis.error_reply('L7:KEY_NOT_FOUND')
end
if redis.call('HGET', KEYS[2], 'banned') == '1' then
  return 0
end
redis.call('HSET', KEYS[2], 'banned', '1')
local hwid = redis.call('HGET', KEYS[2], 'hwid')
if hwid then
  redis.call('HSET', KEYS[2], 'banned_hwid', hwid)
  redis.call('HINCRBY', KEYS[3], hwid, 1)
end
event('Critical', 'BAN', 'Key banned', ARGV[2], true, {'hwid', hwid or ''})
return 1
