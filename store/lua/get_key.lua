-- uses _common.lua: owned
-- Reads one key of a vendor's project.
-- KEYS[1] project hash, KEYS[2] key hash
-- ARGV[1] vendor_id
-- returns: {field, value, ...}; error L7:KEY_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:KEY_NOT_FOUND')
end
local h = redis.call('HGETALL', KEYS[2])
if #h == 0 then
  return redis.error_reply('L7:KEY_NOT_FOUND')
end
return h
