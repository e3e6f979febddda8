-- uses _common.lua: owned
-- Adds a store integration to a project the vendor owns (its four fields in the project's
-- integrations hash), unless the project has as many as it may have.
-- KEYS[1] project hash, KEYS[2] integrations hash
-- ARGV[1] vendor_id, ARGV[2] integration_id, ARGV[3] provider, ARGV[4] secret,
-- ARGV[5] products (JSON), ARGV[6] created_at, ARGV[7] the most integrations a project may have
-- returns: 1; error L7:PROJECT_NOT_FOUND, L7:TOO_MANY_INTEGRATIONS
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
if redis.call('HLEN', KEYS[2]) >= 4 * tonumber(ARGV[7]) then
  return redis.error_reply('L7:TOO_MANY_INTEGRATIONS')
end
local id = ARGV[2]
redis.call('HSET', KEYS[2], id .. ':provider', ARGV[3], id .. ':secret', ARGV[4],
  id .. ':products', ARGV[5], id .. ':created_at', ARGV[6])
return 1
