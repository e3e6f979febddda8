-- uses _common.lua: nothing
-- Removes one blacklist entry's mirror from a project, leaving mappings that another entry
-- has taken over, and returns the attempts the entry counted there.
-- KEYS[1] blacklisted HWIDs, KEYS[2] blacklisted IPs, KEYS[3] blacklist attempts
-- ARGV[1] entry id, ARGV[2] its HWID ('' = none), ARGV[3] its IP field (an address, or a
-- network's 'hex/len'; '' = none), ARGV[4] a prefix token ('4/24') to drop from the IP
-- hash's '/' list (no other network of that length is left; '' = keep the list)
-- returns: the entry's attempts in this project
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[1] then
  redis.call('HDEL', KEYS[1], ARGV[2])
end
if ARGV[3] ~= '' and redis.call('HGET', KEYS[2], ARGV[3]) == ARGV[1] then
  redis.call('HDEL', KEYS[2], ARGV[3])
end
if ARGV[4] ~= '' then
  local kept = {}
  for token in string.gmatch(redis.call('HGET', KEYS[2], '/') or '', '%S+') do
    if token ~= ARGV[4] then
      kept[#kept + 1] = token
    end
  end
  if #kept > 0 then
    redis.call('HSET', KEYS[2], '/', table.concat(kept, ' '))
  else
    redis.call('HDEL', KEYS[2], '/')
  end
end
local attempts = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
redis.call('HDEL', KEYS[3], ARGV[1])
return attempts
