-- uses _common.lua: owned, event
-- Deletes the unredeemed keys among one batch of a project's buyer keys (bulk delete walks
-- the index with SSCAN and calls this per batch, so memory stays bounded). Each key is
-- checked and deleted in this step, so a key redeemed meanwhile is never deleted.
-- KEYS[1] project hash, KEYS[2] buyer index, KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] key hash prefix, ARGV[3..] key ids of the batch
-- returns: the deleted key ids; error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local deleted = {}
for i = 3, #ARGV do
  local key = ARGV[2] .. ARGV[i]
  if redis.call('EXISTS', key) == 1 and redis.call('HEXISTS', key, 'redeemed_at') == 0 then
    redis.call('DEL', key)
    redis.call('SREM', KEYS[2], ARGV[i])
    deleted[#deleted + 1] = ARGV[i]
  end
end
if #deleted > 0 then
  event('Warning', 'KEY_DELETE', #deleted .. ' unredeemed keys deleted', '', false)
end
return deleted
