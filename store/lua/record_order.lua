-- uses _common.lua: sadd_all, event
-- A paid store order, exactly once: the order (and the store's idempotency key, when it sent
-- one) is looked up first, and a delivery seen before gets the record written then, keys and
-- all, with nothing written now; otherwise the order's buyer keys (the same fields and index
-- as generate_keys), its record, its place in the order index and the key_sold event are
-- written in this one step. Concurrent deliveries of one order run one after the other here,
-- so exactly one of them writes.
-- KEYS[1] project hash, KEYS[2] buyer index, KEYS[3] integrations hash, KEYS[4] orders hash,
-- KEYS[5] order index, KEYS[6] idempotency hash, KEYS[7..n-2] the new key hashes,
-- KEYS[n-1] event stream, KEYS[n] notification stream
-- ARGV[1] integration_id, ARGV[2] order field (<provider>:<order id>), ARGV[3] idempotency
-- field ('' when none), ARGV[4] now, ARGV[5] note of the keys, ARGV[6] the order record
-- (JSON), ARGV[7] its order index member, ARGV[8] event message, ARGV[9] order id,
-- ARGV[10] provider, ARGV[11] buyer email, ARGV[12..] four per key (same order as
-- KEYS[7..]): key_id, key_days, key_hours, key_minutes
-- returns: {1, record} when written, {0, the earlier record} for a delivery seen before;
-- error L7:INTEGRATION_NOT_FOUND (the integration or its project is gone)
if not redis.call('HGET', KEYS[1], 'vendor_id')
    or redis.call('HEXISTS', KEYS[3], ARGV[1] .. ':provider') == 0 then
  return redis.error_reply('L7:INTEGRATION_NOT_FOUND')
end
local seen = redis.call('HGET', KEYS[4], ARGV[2])
if not seen and ARGV[3] ~= '' then
  local field = redis.call('HGET', KEYS[6], ARGV[3])
  if field then
    seen = redis.call('HGET', KEYS[4], field)
  end
end
if seen then
  return {0, seen}
end
local ids = {}
for i = 7, #KEYS - 2 do
  local a = 12 + (i - 7) * 4
  redis.call('HSET', KEYS[i], 'created_at', ARGV[4], 'key_days', ARGV[a + 1],
    'key_hours', ARGV[a + 2], 'key_minutes', ARGV[a + 3], 'note', ARGV[5])
  ids[#ids + 1] = ARGV[a]
end
sadd_all(KEYS[2], ids)
redis.call('HSET', KEYS[4], ARGV[2], ARGV[6])
redis.call('ZADD', KEYS[5], 0, ARGV[7])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[6], ARGV[3], ARGV[2])
end
event('Success', 'KEY_SOLD', ARGV[8], ARGV[12] or '', true,
  {'order_id', ARGV[9], 'provider', ARGV[10], 'email', ARGV[11]})
return {1, ARGV[6]}
