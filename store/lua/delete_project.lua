-- Removes a project and every key of it. Ownership is checked in the same step, so a vendor
-- can never delete someone else's data.
-- KEYS[1] project hash, KEYS[2] source, KEYS[3] buyer index, KEYS[4] active index,
-- KEYS[5] key -> Discord id hash, KEYS[6] HWID ban hash, KEYS[7..] blacklist mirrors, event streams, hourly counters
-- ARGV[1] vendor_id, ARGV[2] key hash prefix, ARGV[3] Discord index prefix
-- returns: the removed key ids (the caller drops their key -> project refs);
-- error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local ids = redis.call('SMEMBERS', KEYS[3])
for _, id in ipairs(ids) do
  redis.call('UNLINK', ARGV[2] .. id)
end
for _, did in ipairs(redis.call('HVALS', KEYS[5])) do
  redis.call('UNLINK', ARGV[3] .. did)
end
redis.call('UNLINK', unpack(KEYS))
return ids
