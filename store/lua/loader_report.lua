-- uses _common.lua: event, hit
-- A loader's report that it refused a forged answer (POST /api/loader/report): rate limited
-- per project and client like the loader check, counted per UTC day by reason, and an event
-- ('Critical', kind FORGED) on the project's feed and webhook, for the first ARGV[7] reports
-- of the day (the rest are counted only: reports are anonymous, a flood must not push every
-- other event out of the feed nor spam the vendor's webhook).
-- KEYS[1] project hash, KEYS[2] the client's report window (w, n), KEYS[3] the day's counts
-- (reason -> reports, and 'total'), KEYS[4] event stream, KEYS[5] notification stream
-- ARGV[1] now (epoch s), ARGV[2] reports per window (0: no limit), ARGV[3] window (s),
-- ARGV[4] reason, ARGV[5] client IP, ARGV[6] executor name, ARGV[7] events per day at most,
-- ARGV[8] seconds the day's counts are kept
-- returns: {'PROJECT_NOT_FOUND'}, or {allowed (1/0), remaining (-1: no limit), reset,
--   retry_after}
if redis.call('HEXISTS', KEYS[1], 'vendor_id') == 0 then
  return {'PROJECT_NOT_FOUND'}
end
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {1, -1, 0, 0}
if limit > 0 then
  out = hit(KEYS[2], now, tonumber(ARGV[3]), limit)
  if out[1] == 0 then
    return out
  end
end
local reason = ARGV[4]
redis.call('HINCRBY', KEYS[3], reason, 1)
local total = redis.call('HINCRBY', KEYS[3], 'total', 1)
if total == 1 then
  redis.call('EXPIRE', KEYS[3], ARGV[8])
end
if total <= tonumber(ARGV[7]) then
  event('Critical', 'FORGED', 'Forged answer refused: ' .. reason, '', true,
    {'reason', reason, 'ip', ARGV[5], 'executor', ARGV[6]}, ARGV[1])
end
return out
