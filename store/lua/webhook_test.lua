-- uses _common.lua: owned, event
-- Queues a test notification for the project's webhook through the same durable path as real
-- events (_common.lua `event`: the project's event stream, and its notification stream while
-- the project has a webhook with notifications on), so the deliverers send it like any other.
-- KEYS[1] project hash, KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id
-- returns: 1 when queued; error L7:PROJECT_NOT_FOUND, L7:NO_WEBHOOK (no webhook URL, or
-- notifications off: nothing would be sent)
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local w = redis.call('HMGET', KEYS[1], 'webhook_url', 'notify_enabled')
if not w[1] or w[1] == '' or w[2] == '0' then
  return redis.error_reply('L7:NO_WEBHOOK')
end
event('Success', 'TEST', 'Test notification from the dashboard', '', true)
return 1
