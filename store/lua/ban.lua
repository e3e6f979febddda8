-- uses _common.lua: owned, event, role_sync
-- Bans an active key: for good, or until a time (a timed ban). A permanent ban also blocks
-- the key's HWID project-wide in the same step, so no execution can slip between the two; the
-- HWID ban is counted per banned key, so unbanning one of two keys that share a HWID keeps the
-- HWID blocked. A timed ban blocks the key only: the loader check compares its end
-- (`ban_until`) with now, so it lifts itself with no write. A ban replaces the key's current
-- one (reason and end; from permanent to timed lifts the HWID block, from timed to permanent
-- makes it); a timed ban that has ended counts as none. The same ban again changes nothing.
-- KEYS[1] project hash, KEYS[2] key hash, KEYS[3] HWID ban hash (hwid -> number of bans),
-- KEYS[n-3] role stream, KEYS[n-2] role re-check set (role_sync: the user's Discord role goes,
-- and comes back when a timed ban ends), KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] key_id, ARGV[3] now (epoch s), ARGV[4] the ban's end (epoch s;
-- '' = permanent), ARGV[5] '1' when a reason is given ('0' none), ARGV[6] the reason
-- returns: 1 when newly banned, 0 when it already was; error L7:KEY_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) or redis.call('HEXISTS', KEYS[2], 'redeemed_at') == 0 then
  return redis.error_reply('L7:KEY_NOT_FOUND')
end
local b = redis.call('HMGET', KEYS[2], 'banned', 'ban_until', 'ban_reason', 'banned_hwid')
local was = b[1] == '1' and (not b[2] or tonumber(ARGV[3]) < tonumber(b[2]))
local reason = ARGV[5] == '1' and ARGV[6] or false
if was and (b[2] or '') == ARGV[4] and (b[3] or false) == reason then
  return 0
end
local permanent = ARGV[4] == ''
local hwid = redis.call('HGET', KEYS[2], 'hwid')
if permanent and not b[4] and hwid then
  redis.call('HSET', KEYS[2], 'banned_hwid', hwid)
  redis.call('HINCRBY', KEYS[3], hwid, 1)
elseif not permanent and b[4] then
  redis.call('HDEL', KEYS[2], 'banned_hwid')
  if redis.call('HINCRBY', KEYS[3], b[4], -1) <= 0 then
    redis.call('HDEL', KEYS[3], b[4])
  end
end
redis.call('HSET', KEYS[2], 'banned', '1')
if permanent then
  redis.call('HDEL', KEYS[2], 'ban_until')
else
  redis.call('HSET', KEYS[2], 'ban_until', ARGV[4])
end
if reason then
  redis.call('HSET', KEYS[2], 'ban_reason', reason)
else
  redis.call('HDEL', KEYS[2], 'ban_reason')
end
role_sync(redis.call('HGET', KEYS[2], 'discord_id'), 'BAN', ARGV[4])
if was then
  event('Critical', 'BAN', 'Key ban changed', ARGV[2], false)
  return 0
end
event('Critical', 'BAN', 'Key banned', ARGV[2], true, {'hwid', hwid or ''})
return 1
