-- uses _common.lua: nothing
-- Ends every previous API key of a vendor now (their grace periods cut short): hands back
-- their digests, whose records (other slots) the caller deletes. Only the current key (or the
-- operator, caller '') may do this.
-- KEYS[1] vendor hash, KEYS[2] the vendor's previous-keys set
-- ARGV[1] the caller's digest ('' = the operator)
-- returns: the previous digests; errors L7:VENDOR_NOT_FOUND, L7:NOT_CURRENT_KEY
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('L7:VENDOR_NOT_FOUND')
end
if ARGV[1] ~= '' and ARGV[1] ~= (redis.call('HGET', KEYS[1], 'api_key_hash') or '') then
  return redis.error_reply('L7:NOT_CURRENT_KEY')
end
local previous = redis.call('SMEMBERS', KEYS[2])
redis.call('DEL', KEYS[2])
return previous
