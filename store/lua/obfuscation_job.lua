-- uses _common.lua: owned, event
-- One step of an obfuscation job (handlers/obfuscation): its state lives in the project hash
-- (obf_status pending/running/done/failed, obf_job, obf_deadline, obf_error, obf_started,
-- obf_finished, obf_version) so every instance shows it. Only the current job (obf_job) moves
-- on: an upload or a setting change since then started another one. The job's output is
-- stored by set_source.lua (ARGV[7]), which marks it done.
-- KEYS[1] project hash, KEYS[2] the uploaded source (the obfuscator's input), KEYS[3] event
-- stream, KEYS[4] notification stream
-- ARGV[1] vendor_id, ARGV[2] op: 'start' | 'run' | 'fail', ARGV[3] job id, ARGV[4] now (epoch s)
-- start: ARGV[5] the uploaded source, ARGV[6] the deadline (epoch s: past it, a job still
--   pending or running is read as failed: the instance running it stopped)
-- run: ARGV[5] the new deadline (the job leaves the queue and starts)
-- fail: ARGV[5] the reason
-- returns: the project's {field, value, ...}; {'OFF'} (start: the project does not obfuscate,
-- nothing written); {'STALE'} (run, fail: not the current job); error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local op, job, now = ARGV[2], ARGV[3], ARGV[4]
if op == 'start' then
  local preset = redis.call('HGET', KEYS[1], 'obfuscation')
  if not preset or preset == '' or preset == 'off' then
    return {'OFF'}
  end
  redis.call('SET', KEYS[2], ARGV[5])
  redis.call('HSET', KEYS[1], 'obf_status', 'pending', 'obf_job', job, 'obf_deadline', ARGV[6],
    'obf_error', '', 'obf_started', now, 'obf_finished', '', 'obf_version', '')
  return redis.call('HGETALL', KEYS[1])
end
if redis.call('HGET', KEYS[1], 'obf_job') ~= job then
  return {'STALE'}
end
if op == 'run' then
  redis.call('HSET', KEYS[1], 'obf_status', 'running', 'obf_deadline', ARGV[5])
else
  redis.call('HSET', KEYS[1], 'obf_status', 'failed', 'obf_error', ARGV[5], 'obf_finished', now)
  event('Warning', 'SOURCE', 'Obfuscation failed: ' .. ARGV[5], '', false)
end
return redis.call('HGETALL', KEYS[1])
