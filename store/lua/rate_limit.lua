-- One hit on a fixed-window rate limit: windows are aligned to multiples of the window length
-- (epoch seconds), so every instance counts into the same window. A refused hit is not
-- counted. The hash expires with its window, so nothing accumulates.
-- KEYS[1] the limit's hash (fields w = window number, n = hits in it)
-- ARGV[1] now (epoch s), ARGV[2] window (s), ARGV[3] limit (hits per window, >= 1)
-- returns: {allowed (1 or 0), remaining, reset (epoch s when the window ends),
--   retry_after (s; 0 when allowed)}
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local idx = math.floor(now / window)
local reset = (idx + 1) * window
local h = redis.call('HMGET', KEYS[1], 'w', 'n')
local n = 0
if h[1] == int(idx) then
  n = tonumber(h[2]) or 0
end
if n >= limit then
  return {0, 0, int(reset), int(reset - now)}
end
n = n + 1
redis.call('HSET', KEYS[1], 'w', int(idx), 'n', int(n))
redis.call('EXPIRE', KEYS[1], int(reset - now + 1))
return {1, int(limit - n), int(reset), 0}
