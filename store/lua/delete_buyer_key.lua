-- uses _common.lua: unredeemed_refusal, event
-- Deletes a buyer key unless it was redeemed; check and delete are one step so a redemption
-- racing the delete either wins (400) or never happens.
-- KEYS[1] project hash, KEYS[2] key hash, KEYS[3] buyer index set,
-- KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] key_id
-- returns: 1; errors L7:KEY_NOT_FOUND, L7:REDEEMED
local refused = unredeemed_refusal(KEYS[1], KEYS[2], ARGV[1], 'L7:REDEEMED')
if refused then
  return redis.error_reply(refused)
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
event('Warning', 'KEY_DELETE', 'Buyer key deleted', ARGV[2], false)
return 1
