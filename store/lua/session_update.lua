-- uses _common.lua: unpack
-- Sets fields of a live dashboard session (its API key digest after a rotation from the
-- dashboard, the last generated key batch); a missing session is left missing.
-- KEYS[1] the session hash
-- ARGV field, value, ...
-- returns: 1 when the session exists (and was updated), else 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
