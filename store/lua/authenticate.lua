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
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local idx = math.floor(now / window)
local reset = (idx + 1) * window
local h = redis.call('HMGET', KEYS[2], 'w', 'n')
local n = 0
if h[1] == int(idx) then
  n = tonumber(h[2]) or 0
end
if n >= limit then
  return {vendor_id, 0, 0, int(reset), int(reset - now)}
end
n = n + 1
redis.call('HSET', KEYS[2], 'w', int(idx), 'n', int(n))
redis.call('EXPIRE', KEYS[2], int(reset - now + 1))
return {vendor_id, 1, int(limit - n), int(reset), 0}
