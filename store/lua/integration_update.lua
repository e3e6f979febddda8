-- uses _common.lua: owned
-- Changes a store integration's secret and/or products, when the vendor owns its project.
-- KEYS[1] project hash, KEYS[2] integrations hash
-- ARGV[1] vendor_id, ARGV[2] integration_id, ARGV[3] new secret ('' keeps it),
-- ARGV[4] new products as JSON ('' keeps them)
-- returns: {provider, products, created_at} after the change; error L7:INTEGRATION_NOT_FOUND
local id = ARGV[2]
if not owned(KEYS[1], ARGV[1]) or redis.call('HEXISTS', KEYS[2], id .. ':provider') == 0 then
  return redis.error_reply('L7:INTEGRATION_NOT_FOUND')
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], id .. ':secret', ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], id .. ':products', ARGV[4])
end
return redis.call('HMGET', KEYS[2], id .. ':provider', id .. ':products', id .. ':created_at')
