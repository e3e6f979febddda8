-- uses _common.lua: int
-- Resumes a dashboard session: a live one gets its idle timeout again, never past its absolute
-- end (then it is deleted). The vendor's current API key is checked by the caller.
-- KEYS[1] the session hash (vendor_id, digest, csrf, ends, batch)
-- ARGV[1] now (epoch s), ARGV[2] idle timeout (s)
-- returns: false when the session is missing or past its end; else {vendor_id, digest, csrf}
local h = redis.call('HMGET', KEYS[1], 'vendor_id', 'digest', 'csrf', 'ends')
if not h[1] then
  return false
end
local now = tonumber(ARGV[1])
local left = (tonumber(h[4]) or 0) - now
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('EXPIRE', KEYS[1], int(math.min(tonumber(ARGV[2]), left)))
return {h[1], h[2], h[3]}
