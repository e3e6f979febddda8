-- Makes a new API key digest the vendor's current one and hands back the previous one (whose
-- record the caller then expires after the grace period). Read and write are one step, so of
-- two concurrent rotations each gets a different previous digest and none is left without
-- an expiry.
-- KEYS[1] vendor hash
-- ARGV[1] the new key's digest
-- returns: the previous digest ('' when none); error L7:VENDOR_NOT_FOUND
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('L7:VENDOR_NOT_FOUND')
end
local old = redis.call('HGET', KEYS[1], 'api_key_hash') or ''
redis.call('HSET', KEYS[1], 'api_key_hash', ARGV[1])
return old
