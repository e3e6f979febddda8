-- uses _common.lua: owned
-- Deleting a project, step 2 of 3: one bounded batch of its keys (see delete_project). Pops
-- up to ARGV[4] ids off the buyer index (then the active index, then the key -> Discord id
-- hash) and deletes their hashes and Discord index entries.
-- KEYS[1] tombstone, KEYS[2] buyer index, KEYS[3] active index, KEYS[4] key -> Discord id hash
-- ARGV[1] vendor_id, ARGV[2] key hash prefix, ARGV[3] Discord index prefix,
-- ARGV[4] batch size (at most 1000)
-- returns: the ids removed (the caller drops their key -> project refs); none once done;
-- error L7:PROJECT_NOT_FOUND when the tombstone is not the vendor's
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local n = tonumber(ARGV[4])
local ids = redis.call('SPOP', KEYS[2], n)
if #ids == 0 then
  ids = redis.call('SPOP', KEYS[3], n)
end
if #ids == 0 then
  -- Entries whose key left both indexes: only their Discord index entries remain.
  local r = redis.call('HSCAN', KEYS[4], '0', 'COUNT', n)
  for i = 1, #r[2], 2 do
    ids[#ids + 1] = r[2][i]
  end
end
for _, id in ipairs(ids) do
  redis.call('UNLINK', ARGV[2] .. id)
  redis.call('SREM', KEYS[3], id)
  local did = redis.call('HGET', KEYS[4], id)
  if did then
    redis.call('SREM', ARGV[3] .. did, id)
    redis.call('HDEL', KEYS[4], id)
  end
end
return ids
