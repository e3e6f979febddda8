-- Reads every key of an index. A member whose hash Redis has expired is forgotten by every
-- index of the project in this same step, so a listing never shows a key whose data is gone.
-- KEYS[1] project hash, KEYS[2] the index set to read (buyer, active or one Discord user's),
-- KEYS[3] buyer index, KEYS[4] active index, KEYS[5] key -> Discord id hash
-- ARGV[1] vendor_id, ARGV[2] key hash prefix, ARGV[3] Discord index prefix
-- returns: {key_id, {field, value, ...}, key_id, {...}, ...}; error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local h = redis.call('HGETALL', ARGV[2] .. id)
  if #h == 0 then
    redis.call('SREM', KEYS[2], id)
    redis.call('SREM', KEYS[3], id)
    redis.call('SREM', KEYS[4], id)
    local did = redis.call('HGET', KEYS[5], id)
    if did then
      redis.call('SREM', ARGV[3] .. did, id)
      redis.call('HDEL', KEYS[5], id)
    end
  else
    out[#out + 1] = id
    out[#out + 1] = h
  end
end
return out
