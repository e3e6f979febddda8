-- uses _common.lua: owned, event
-- Records that a leaked copy of the project's script was traced to one of its keys.
-- KEYS[1] project hash, KEYS[2] event stream, KEYS[3] notification stream
-- ARGV[1] vendor_id, ARGV[2] key_id, ARGV[3] message
-- returns: 1; error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
event('Critical', 'LEAK', ARGV[3], ARGV[2], true)
return 1
