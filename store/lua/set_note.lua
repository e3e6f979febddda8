-- uses _common.lua: owned, event
-- Sets (or removes) a key's note, checking in the same step that the key is the vendor's
-- (and, on the active-key route, that it was redeemed).
-- KEYS[1] project hash, KEYS[2] key hash, KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] key_id, ARGV[3] '1' when the key must be redeemed ('0' any key),
-- ARGV[4] '1' to set the note ('0' removes it), ARGV[5] the note
-- returns: the key's hash after the write {field, value, ...}; error L7:KEY_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) or redis.call('EXISTS', KEYS[2]) == 0
    or (ARGV[3] == '1' and redis.call('HEXISTS', KEYS[2], 'redeemed_at') == 0) then
  return redis.error_reply('L7:KEY_NOT_FOUND')
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[2], 'note', ARGV[5])
  event('Success', 'NOTE', 'Note set by the vendor', ARGV[2], false)
else
  redis.call('HDEL', KEYS[2], 'note')
  event('Success', 'NOTE', 'Note removed by the vendor', ARGV[2], false)
end
return redis.call('HGETALL', KEYS[2])
