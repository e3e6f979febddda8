-- Deletes a buyer key unless it was redeemed; check and delete are one step so a redemption
-- racing the delete either wins (400) or never happens.
-- KEYS[1] project hash, KEYS[2] key hash, KEYS[3] buyer index set,
-- KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] key_id
-- returns: 1; errors L7:KEY_NOT_FOUND, L7:REDEEMED
if not owned(KEYS[1], ARGV[1]) or redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.error_reply('L7:KEY_NOT_FOUND')
end
if redis.call('HEXISTS', KEYS[2], 'redeemed_at') == 1 then
  return redis.error_reply('L7:REDEEMED')
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
event('Warning', 'KEY_DELETE', 'Buyer key deleted', ARGV[2], false)
return 1
