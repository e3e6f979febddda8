-- uses _common.lua: nothing
-- Makes a new API key digest the vendor's current one and hands back the previous one (whose
-- record the caller then expires after the grace period, or deletes). Read and write are one
-- step, so of two concurrent rotations by the same key only one finds it current. Only the
-- current key may rotate (a leaked key in its grace period cannot mint a fresh one); the
-- operator (caller '') may always. A previous key kept for a grace period is remembered in
-- the vendor's previous-keys set, so that revoke_previous.lua can end it early.
-- KEYS[1] vendor hash, KEYS[2] the vendor's previous-keys set
-- ARGV[1] the new key's digest, ARGV[2] the caller's digest ('' = the operator),
-- ARGV[3] grace (s; 0 = the previous key is deleted by the caller at once)
-- returns: the previous digest ('' when none); errors L7:VENDOR_NOT_FOUND, L7:NOT_CURRENT_KEY
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('L7:VENDOR_NOT_FOUND')
end
local old = redis.call('HGET', KEYS[1], 'api_key_hash') or ''
if ARGV[2] ~= '' and ARGV[2] ~= old then
  return redis.error_reply('L7:NOT_CURRENT_KEY')
end
redis.call('HSET', KEYS[1], 'api_key_hash', ARGV[1])
local grace = tonumber(ARGV[3])
if old ~= '' and grace > 0 then
  redis.call('SADD', KEYS[2], old)
  -- The set lives as long as its longest grace period.
  if redis.call('PTTL', KEYS[2]) < grace * 1000 then
    redis.call('PEXPIRE', KEYS[2], grace * 1000)
  end
end
return old
