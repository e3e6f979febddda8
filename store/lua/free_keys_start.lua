-- uses _common.lua: int, hit, session_refusal
-- Free keys: a checkpoint starts (the get-key page's "Start" or "Continue" button).
-- Checkpoint 0 (ARGV[2] = 'new' or 'extend') opens a session for the machine: the project
-- must have free keys on and know the machine (a loader run asked for its key), the machine
-- must not have a live key (for 'new'; 'extend' needs one, extensions allowed and left), nor
-- have had its keys of the day, and the client's IP (or /64) must be under its session limit.
-- A later checkpoint (ARGV[2] = 'next') continues the session: same IP and browser; it is
-- the checkpoint after the last completed one (started again if it was started already). Either way the checkpoint's start time and a fresh click id
-- are stored, and the funnel counts the start (or the refusal).
-- KEYS[1] project hash, KEYS[2] machine hash, KEYS[3] session hash, KEYS[4] the client's
-- session-limit hash, KEYS[5] today's funnel hash
-- ARGV[1] now, ARGV[2] mode ('new', 'extend', 'next'), ARGV[3] machine id, ARGV[4] client IP,
-- ARGV[5] browser digest, ARGV[6] session TTL (s), ARGV[7] sessions per window per client
-- (0: no limit), ARGV[8] that window (s), ARGV[9] keys per day, ARGV[10] today (epoch days),
-- ARGV[11] click id, ARGV[12] key hash prefix, ARGV[13] checkpoints, ARGV[14] allow extend
-- ('1'/'0'), ARGV[15] max extends, ARGV[16] funnel TTL (s)
-- returns: {'OK', step} or {refusal}: NOT_FREE, UNKNOWN_MACHINE, HAS_KEY, NO_KEY,
--   NO_EXTEND, DAILY_LIMIT, IP_LIMIT, NO_SESSION, OTHER_IP, OTHER_BROWSER, DONE
local now, mode = tonumber(ARGV[1]), ARGV[2]
local function refuse(reason)
  redis.call('HINCRBY', KEYS[5], 'refused:' .. reason, 1)
  redis.call('EXPIRE', KEYS[5], ARGV[16])
  return {reason}
end
if redis.call('HGET', KEYS[1], 'free_keys') ~= '1' then
  return {'NOT_FREE'}
end
local step
if mode == 'next' then
  local s = redis.call('HMGET', KEYS[3], 'ip', 'ua', 'step', 'started')
  local why = session_refusal(s[1], s[1], s[2], ARGV[4], ARGV[5])
  if why then
    return refuse(why)
  end
  step = tonumber(s[3])
  if step >= tonumber(ARGV[13]) then
    return refuse('DONE')
  end
  -- (a checkpoint started and not completed starts again: a fresh time and click id)
else
  local m = redis.call('HMGET', KEYS[2], 'hwid', 'key_id', 'day', 'n', 'extends')
  if not m[1] then
    return {'UNKNOWN_MACHINE'}
  end
  local live = false
  if m[2] then
    local e = redis.call('HMGET', ARGV[12] .. m[2], 'expires_at', 'banned')
    live = e[1] and e[1] ~= '' and tonumber(e[1]) > now
  end
  if mode == 'new' and live then
    return {'HAS_KEY'}
  end
  if mode == 'extend' then
    if not live then
      return refuse('NO_KEY')
    end
    if ARGV[14] ~= '1' or (tonumber(m[5]) or 0) >= tonumber(ARGV[15]) then
      return refuse('NO_EXTEND')
    end
  elseif m[3] == ARGV[10] and (tonumber(m[4]) or 0) >= tonumber(ARGV[9]) then
    return refuse('DAILY_LIMIT')
  end
  local limit = tonumber(ARGV[7])
  if limit > 0 and hit(KEYS[4], now, tonumber(ARGV[8]), limit)[1] == 0 then
    return refuse('IP_LIMIT')
  end
  step = 0
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[3], 'mid', ARGV[3], 'ip', ARGV[4], 'ua', ARGV[5], 'mode', mode)
end
redis.call('HSET', KEYS[3], 'step', int(step), 'started', ARGV[1], 'click', ARGV[11])
redis.call('EXPIRE', KEYS[3], ARGV[6])
redis.call('HINCRBY', KEYS[5], 'start:' .. step, 1)
redis.call('EXPIRE', KEYS[5], ARGV[16])
return {'OK', int(step)}
