-- uses _common.lua: unpack, owned, event
-- Self-service HWID reset for one Discord user (what the bot calls). The project's
-- hwid_reset_cooldown is checked and the reset written in one step, so two simultaneous
-- requests can never both reset. A key without a HWID needs no reset and starts no cooldown;
-- a banned key is never reset (a timed ban that has ended no longer counts); if any key to
-- reset is still cooling down, nothing is reset.
-- KEYS[1] project hash, KEYS[2] the user's Discord index, KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] now, ARGV[3] key hash prefix
-- returns: {'OK', key_id, old_hwid, ...} (no pairs: nothing needed a reset),
--   {'COOLDOWN', seconds_left}, {'BANNED'} (the user has only banned keys), {'NONE'} (no
--   active key in the project); error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local cooldown = tonumber(redis.call('HGET', KEYS[1], 'hwid_reset_cooldown') or '86400')
local now = tonumber(ARGV[2])
local live, usable, wait = 0, 0, 0
local targets = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local h = redis.call('HMGET', ARGV[3] .. id, 'redeemed_at', 'hwid', 'banned', 'last_self_reset',
    'ban_until')
  if h[1] then
    live = live + 1
    if h[3] ~= '1' or (h[5] and now >= tonumber(h[5])) then
      usable = usable + 1
      if h[2] then
        local left = (tonumber(h[4]) or 0) + cooldown - now
        if left > 0 then
          wait = math.max(wait, left)
        else
          targets[#targets + 1] = id
          targets[#targets + 1] = h[2]
        end
      end
    end
  end
end
if live == 0 then
  return {'NONE'}
end
if usable == 0 then
  return {'BANNED'}
end
if wait > 0 then
  return {'COOLDOWN', wait}
end
for i = 1, #targets, 2 do
  local key = ARGV[3] .. targets[i]
  redis.call('HDEL', key, 'hwid')
  redis.call('HINCRBY', key, 'hwid_resets', 1)
  redis.call('HSET', key, 'last_reset', ARGV[2], 'last_self_reset', ARGV[2])
  event('Warning', 'HWID_RESET', 'HWID reset by the user', targets[i], true,
    {'old_hwid', targets[i + 1]})
end
return {'OK', unpack(targets)}
