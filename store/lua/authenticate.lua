-- uses _common.lua: hit
-- Finds the vendor of an API key (by its keyed digest) and, for a known key only, counts the
-- request against the key's fixed-window rate limit (windows aligned to epoch multiples, a
-- refused request is not counted, the hash expires with its window). Unknown keys write
-- nothing. Both keys carry the digest as hash tag: one slot.
-- KEYS[1] the API key record (string: vendor_id), KEYS[2] its rate-limit hash (w, n)
-- ARGV[1] now (epoch s), ARGV[2] window (s), ARGV[3] limit per window (0 = no limit)
-- returns: false for an unknown key; else {vendor_id, allowed (1 or 0), remaining, reset
--   (epoch s when the window ends), retry_after (s; 0 when allowed)}
local vendor_id = redis.call('GET', KEYS[1])
if not vendor_id then
  return false
end
local limit = tonumber(ARGV[3])
if limit <= 0 then
  return {vendor_id, 1, -1, 0, 0}
end
local r = hit(KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), limit)
return {vendor_id, r[1], r[2], r[3], r[4]}
