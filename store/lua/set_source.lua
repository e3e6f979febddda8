-- Stores a project's hosted script and its version; the version bump reads and writes in one
-- step, so two uploads without a version get two different patch numbers.
-- KEYS[1] project hash, KEYS[2] hosted source, KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] source, ARGV[3] version ('' = bump the patch number),
-- ARGV[4] the L7_* macros the source uses (comma separated)
-- returns: the project's {field, value, ...}; error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local version = ARGV[3]
if version == '' then
  local current = redis.call('HGET', KEYS[1], 'version') or '0.0.0'
  local major, minor, patch = string.match(current, '^(%d+)%.(%d+)%.(%d+)')
  if major then
    version = major .. '.' .. minor .. '.' .. int(tonumber(patch) + 1)
  else
    version = '0.0.1'
  end
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], 'version', version, 'source_macros', ARGV[4])
-- A new revision on every upload: instances' cached copies are refreshed on their next run.
redis.call('HINCRBY', KEYS[1], 'rev', 1)
event('Success', 'SOURCE', 'Script updated to version ' .. version, '', false)
return redis.call('HGETALL', KEYS[1])
