-- uses _common.lua: int, event, live_for, session_refusal
-- Free keys: the player came back from checkpoint k, and its provider confirmed it (the
-- service asked the provider before this runs; a LootLabs checkpoint is confirmed by the
-- postback this reads). Every defence is decided here, in one step, in this order:
--   the session exists (NO_SESSION), belongs to this machine and comes from its IP
--   (OTHER_IP) and browser (OTHER_BROWSER); k is the checkpoint it started last and has not
--   completed (ORDER); at least min_seconds passed since it started (TOO_FAST); the
--   provider's token was never used before (REUSED: it is then marked used); a LootLabs
--   postback arrived for this start (NO_POSTBACK) from the session's IP (POSTBACK_IP).
-- Then the checkpoint counts as completed. After the last one the machine gets its key:
--   a new session ('new'): its live key if it has one (HAS_KEY), else, within keys_per_day
--   (DAILY_LIMIT), a new free key, already redeemed and bound to the machine's HWID;
--   an 'extend' session: its live key extended by key_hours, up to max_extends (NO_EXTEND).
-- The funnel counts each completion, key and refusal; the session ends with its key.
-- KEYS[1] project hash, KEYS[2] session, KEYS[3] machine, KEYS[4] the token's used-marker,
-- KEYS[5] the postback record, KEYS[6] today's funnel, KEYS[7] buyer index, KEYS[8] active
-- index, KEYS[9] event stream, KEYS[10] notification stream
-- ARGV[1] now, ARGV[2] k, ARGV[3] client IP, ARGV[4] browser digest, ARGV[5] machine id,
-- ARGV[6] min_seconds, ARGV[7] checkpoints, ARGV[8] key_hours, ARGV[9] keys_per_day,
-- ARGV[10] today (epoch days), ARGV[11] a new key id, ARGV[12] retention (s), ARGV[13]
-- max_extends, ARGV[14] key hash prefix, ARGV[15] used-token TTL (s), ARGV[16] '1': needs a
-- postback, ARGV[17] funnel TTL (s), ARGV[18] machine TTL (s), ARGV[19] allow_extend ('1'),
-- ARGV[20] '1': a token to mark used, ARGV[21] the click id the postback record is of
-- returns: {'NEXT', k + 1}, {'ISSUED' | 'EXTENDED' | 'HAS_KEY', key_id, expires_at}, or
--   {refusal}
local now, k = tonumber(ARGV[1]), tonumber(ARGV[2])
local function count(field)
  redis.call('HINCRBY', KEYS[6], field, 1)
  redis.call('EXPIRE', KEYS[6], ARGV[17])
end
local function refuse(reason)
  count('refused:' .. reason)
  return {reason}
end
if redis.call('HGET', KEYS[1], 'free_keys') ~= '1' then
  return {'NOT_FREE'}
end
local s = redis.call('HMGET', KEYS[2], 'mid', 'ip', 'ua', 'step', 'started', 'mode', 'click')
local why = session_refusal(s[1] == ARGV[5], s[2], s[3], ARGV[3], ARGV[4])
if why then
  return refuse(why)
end
local started = tonumber(s[5]) or 0
if tonumber(s[4]) ~= k or started == 0 then
  return refuse('ORDER')
end
if now - started < tonumber(ARGV[6]) then
  return refuse('TOO_FAST')
end
if ARGV[20] == '1' then
  if not redis.call('SET', KEYS[4], ARGV[1], 'NX', 'EX', ARGV[15]) then
    return refuse('REUSED')
  end
end
if ARGV[16] == '1' then
  if s[7] ~= ARGV[21] then
    return refuse('ORDER')
  end
  local ip = redis.call('GET', KEYS[5])
  if not ip then
    return refuse('NO_POSTBACK')
  end
  if ip ~= ARGV[3] then
    return refuse('POSTBACK_IP')
  end
  redis.call('DEL', KEYS[5])
end
count('done:' .. k)
if k + 1 < tonumber(ARGV[7]) then
  redis.call('HSET', KEYS[2], 'step', int(k + 1), 'started', '0')
  return {'NEXT', int(k + 1)}
end

local m = redis.call('HMGET', KEYS[3], 'hwid', 'key_id', 'day', 'n', 'extends')
if not m[1] then
  return refuse('UNKNOWN_MACHINE')
end
local live
if m[2] then
  local e = redis.call('HGET', ARGV[14] .. m[2], 'expires_at')
  if e and e ~= '' and tonumber(e) > now then
    live = tonumber(e)
  end
end
local seconds = tonumber(ARGV[8]) * 3600
if s[6] == 'extend' then
  if not live then
    return refuse('NO_KEY')
  end
  local n = tonumber(m[5]) or 0
  if ARGV[19] ~= '1' or n >= tonumber(ARGV[13]) then
    return refuse('NO_EXTEND')
  end
  local expires = live + seconds
  redis.call('HSET', ARGV[14] .. m[2], 'expires_at', int(expires))
  redis.call('PEXPIREAT', ARGV[14] .. m[2], int((expires + tonumber(ARGV[12])) * 1000))
  redis.call('HSET', KEYS[3], 'extends', int(n + 1))
  live_for(KEYS[3], expires - now + tonumber(ARGV[18]))
  redis.call('DEL', KEYS[2])
  count('extended')
  event('Success', 'FREE_KEY', 'Free key extended', m[2], false, nil, ARGV[1])
  return {'EXTENDED', m[2], int(expires)}
end
if live then
  redis.call('DEL', KEYS[2])
  return {'HAS_KEY', m[2], int(live)}
end
local today = 0
if m[3] == ARGV[10] then
  today = tonumber(m[4]) or 0
end
if today >= tonumber(ARGV[9]) then
  return refuse('DAILY_LIMIT')
end
local key_id = ARGV[11]
local key_hash = ARGV[14] .. key_id
local expires = now + seconds
redis.call('HSET', key_hash, 'created_at', ARGV[1], 'redeemed_at', ARGV[1],
  'expires_at', int(expires), 'key_days', '0', 'key_hours', ARGV[8], 'key_minutes', '0',
  'hwid', m[1], 'hwid_resets', '0', 'total_executions', '0', 'type', 'free')
redis.call('PEXPIREAT', key_hash, int((expires + tonumber(ARGV[12])) * 1000))
redis.call('SADD', KEYS[7], key_id)
redis.call('SADD', KEYS[8], key_id)
redis.call('HSET', KEYS[3], 'key_id', key_id, 'day', ARGV[10], 'n', int(today + 1),
  'extends', '0')
live_for(KEYS[3], seconds + tonumber(ARGV[18]))
redis.call('DEL', KEYS[2])
count('issued')
event('Success', 'FREE_KEY', 'Free key issued', key_id, false, nil, ARGV[1])
return {'ISSUED', key_id, int(expires)}
