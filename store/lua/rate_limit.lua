-- uses _common.lua: hit
-- One hit on a fixed-window rate limit (the `hit` helper of _common.lua): nothing accumulates.
-- KEYS[1] the limit's hash (fields w = window number, n = hits in it)
-- ARGV[1] now (epoch s), ARGV[2] window (s), ARGV[3] limit (hits per window, >= 1)
-- returns: {allowed (1 or 0), remaining, reset (epoch s when the window ends),
--   retry_after (s; 0 when allowed)}
return hit(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
