-- uses _common.lua: unpack, owned, event
-- A project's verdict-signing key id: made when it has none ('ensure'), or replaced by a new
-- one whose predecessor stays accepted until ARGV[5] ('rotate'). Only key ids and times are
-- stored here: each key pair is derived from the server's signing secret and the key id
-- (handlers/signing.py), so no private key ever reaches Redis.
-- KEYS[1] project hash, KEYS[2] event stream, KEYS[3] notification stream
-- ARGV[1] vendor_id, ARGV[2] 'ensure' or 'rotate', ARGV[3] a new key id, ARGV[4] now (epoch s),
-- ARGV[5] the previous key's grace end (epoch s; 'rotate')
-- returns: the project's signed_verdicts, sign_kid, sign_created, sign_prev_kid,
--   sign_prev_created, sign_prev_until; error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local fields = {'signed_verdicts', 'sign_kid', 'sign_created', 'sign_prev_kid',
  'sign_prev_created', 'sign_prev_until'}
local cur = redis.call('HMGET', KEYS[1], 'sign_kid', 'sign_created')
if ARGV[2] == 'rotate' and cur[1] then
  redis.call('HSET', KEYS[1], 'sign_prev_kid', cur[1], 'sign_prev_created', cur[2] or ARGV[4],
    'sign_prev_until', ARGV[5], 'sign_kid', ARGV[3], 'sign_created', ARGV[4])
  event('Success', 'PROJECT', 'Verdict signing key rotated to ' .. ARGV[3], '', false)
elseif not cur[1] then
  redis.call('HSET', KEYS[1], 'sign_kid', ARGV[3], 'sign_created', ARGV[4])
end
return redis.call('HMGET', KEYS[1], unpack(fields))
