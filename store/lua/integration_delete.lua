-- uses _common.lua: owned
-- Removes a store integration, when the vendor owns its project (its orders are kept).
-- KEYS[1] project hash, KEYS[2] integrations hash
-- ARGV[1] vendor_id, ARGV[2] integration_id
-- returns: 1; error L7:INTEGRATION_NOT_FOUND
local id = ARGV[2]
if not owned(KEYS[1], ARGV[1]) or redis.call('HEXISTS', KEYS[2], id .. ':provider') == 0 then
  return redis.error_reply('L7:INTEGRATION_NOT_FOUND')
end
redis.call('HDEL', KEYS[2], id .. ':provider', id .. ':secret', id .. ':products',
  id .. ':created_at')
return 1
