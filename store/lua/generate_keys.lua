-- uses _common.lua: owned, sadd_all, event
-- Creates buyer keys in one step, so a failed ownership check writes nothing.
-- KEYS[1] project hash, KEYS[2] buyer index set, KEYS[3..n-2] the new key hashes,
-- KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] now, ARGV[3] key_days, ARGV[4] key_hours, ARGV[5] key_minutes,
-- ARGV[6] '1' when a note is set, ARGV[7] note, ARGV[8..] key ids (same order as KEYS[3..])
-- returns: number of keys created; error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local ids = {}
for i = 3, #KEYS - 2 do
  local id = ARGV[i + 5]
  if ARGV[6] == '1' then
    redis.call('HSET', KEYS[i], 'created_at', ARGV[2], 'key_days', ARGV[3],
      'key_hours', ARGV[4], 'key_minutes', ARGV[5], 'note', ARGV[7])
  else
    redis.call('HSET', KEYS[i], 'created_at', ARGV[2], 'key_days', ARGV[3],
      'key_hours', ARGV[4], 'key_minutes', ARGV[5])
  end
  ids[#ids + 1] = id
end
sadd_all(KEYS[2], ids)
local n = #KEYS - 4
event('Success', 'KEYS_GENERATED', n .. ' buyer keys generated', '', false)
return n
