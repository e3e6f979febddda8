-- uses _common.lua: owned, event
-- Turns a project's watermark on with the plan of its current source (store/watermark.py),
-- in one step with the check that the plan is of the source stored now (an upload since the
-- plan was made wins: the caller makes it again).
-- KEYS[1] project hash, KEYS[2] hosted source, KEYS[3] watermark plan, KEYS[4] event stream,
-- KEYS[5] notification stream
-- ARGV[1] vendor_id, ARGV[2] the source the plan is of, ARGV[3] the plan ('' = none)
-- returns: the project's {field, value, ...}, or {'STALE'} (the source changed: nothing
-- written); error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[2] then
  return {'STALE'}
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[3], ARGV[3])
else
  redis.call('DEL', KEYS[3])
end
if redis.call('HGET', KEYS[1], 'watermark') ~= '1' then
  redis.call('HSET', KEYS[1], 'watermark', '1')
  -- What loaders receive changes: a new revision refreshes every instance's copy.
  redis.call('HINCRBY', KEYS[1], 'rev', 1)
  event('Success', 'PROJECT', 'Watermarks on', '', false)
end
return redis.call('HGETALL', KEYS[1])
