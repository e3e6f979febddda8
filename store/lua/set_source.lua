-- uses _common.lua: int, owned, event
-- Stores a project's hosted script and its version; the version bump reads and writes in one
-- step, so two uploads without a version get two different patch numbers.
-- The source's watermark plan (store/watermark.py) is written with it, so the two never
-- disagree: an upload to a project that marks its copies must bring one.
-- Obfuscation (handlers/obfuscation): with ARGV[7], the source is the output of that
-- obfuscation job, stored only while the job is the project's current one; without, the
-- upload is the source itself, refused while the project obfuscates (the caller starts a job).
-- KEYS[1] project hash, KEYS[2] hosted source, KEYS[3] watermark plan, KEYS[4] the uploaded
-- source of an obfuscating project, KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] source, ARGV[3] version ('' = bump the patch number),
-- ARGV[4] the L7_* macros the source uses (comma separated), ARGV[5] the source's watermark
-- plan ('' = none), ARGV[6] '1' when ARGV[5] was computed, ARGV[7] the obfuscation job id
-- ('' = none), ARGV[8] now (epoch s)
-- returns: the project's {field, value, ...}, or {'MARKS_NEEDED'} (the project marks its
-- copies and ARGV[5] was not computed: nothing written), {'OBFUSCATE'} (no job and the
-- project obfuscates), {'STALE'} (the job is no longer current); error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local job = ARGV[7] or ''
if job == '' then
  local preset = redis.call('HGET', KEYS[1], 'obfuscation')
  if preset and preset ~= '' and preset ~= 'off' then
    return {'OBFUSCATE'}
  end
elseif redis.call('HGET', KEYS[1], 'obf_job') ~= job then
  return {'STALE'}
end
if ARGV[6] ~= '1' and redis.call('HGET', KEYS[1], 'watermark') == '1' then
  return {'MARKS_NEEDED'}
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
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[3], ARGV[5])
else
  redis.call('DEL', KEYS[3])
end
redis.call('HSET', KEYS[1], 'version', version, 'source_macros', ARGV[4])
if job ~= '' then
  redis.call('HSET', KEYS[1], 'obf_status', 'done', 'obf_version', version, 'obf_finished', ARGV[8])
else
  -- A plain upload: no obfuscation state is left to describe it.
  redis.call('DEL', KEYS[4])
  redis.call('HDEL', KEYS[1], 'obf_status', 'obf_job', 'obf_error', 'obf_deadline',
    'obf_version', 'obf_started', 'obf_finished')
end
-- A new revision on every upload: instances' cached copies are refreshed on their next run.
redis.call('HINCRBY', KEYS[1], 'rev', 1)
event('Success', 'SOURCE', 'Script updated to version ' .. version, '', false)
return redis.call('HGETALL', KEYS[1])
