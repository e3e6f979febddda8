-- Applies a partial update to a project the vendor owns.
-- KEYS[1] project hash, KEYS[2] event stream, KEYS[3] notification stream
-- ARGV[1] vendor_id, ARGV[2..] field, value pairs (may be none)
-- returns: the project's {field, value, ...}; error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
if #ARGV > 1 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
  -- The script name is part of what loaders receive: a new revision refreshes caches.
  redis.call('HINCRBY', KEYS[1], 'rev', 1)
  event('Success', 'PROJECT', 'Project settings updated', '', false)
end
return redis.call('HGETALL', KEYS[1])
