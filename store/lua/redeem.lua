-- uses _common.lua: unredeemed_refusal, redeem_key, event, role_sync
-- Redeems a buyer key for a Discord user; the check and the write are one step, so of two
-- concurrent redemptions exactly one succeeds.
-- KEYS[1] project hash, KEYS[2] key hash, KEYS[3] active index, KEYS[4] the user's Discord
-- index, KEYS[5] key -> Discord id hash, KEYS[n-3] role stream, KEYS[n-2] role re-check set,
-- KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] key_id, ARGV[3] now, ARGV[4] discord_id, ARGV[5] retention (s)
-- returns: the key's {field, value, ...}; errors L7:KEY_NOT_FOUND, L7:ALREADY_REDEEMED
local refused = unredeemed_refusal(KEYS[1], KEYS[2], ARGV[1], 'L7:ALREADY_REDEEMED')
if refused then
  return redis.error_reply(refused)
end
redis.call('HSET', KEYS[2], 'discord_id', ARGV[4])
local expires = redeem_key(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[5]))
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('HSET', KEYS[5], ARGV[2], ARGV[4])
event('Success', 'REDEEM', 'Key redeemed', ARGV[2], true, {'discord_id', ARGV[4]})
role_sync(ARGV[4], 'REDEEM', expires)
return redis.call('HGETALL', KEYS[2])
