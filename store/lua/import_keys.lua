-- uses _common.lua: unpack, int, owned, sadd_all, event
-- Writes a batch of imported keys into a project in one step (store/transfer.py): each key
-- that is not in the project yet gets the hash, indexes and TTL a key made here has
-- (generate_keys.lua; redeem.lua for a redeemed key: the active index, the Discord index and
-- the key -> Discord id hash, the TTL expires_at + retention; ban.lua for a permanent ban: the
-- HWID blocked in the project). A key already in the project is left exactly as it is.
-- KEYS[1] project hash, KEYS[2] buyer index, KEYS[3] active index, KEYS[4] key -> Discord id
-- hash, KEYS[5] HWID ban hash (hwid -> number of bans), KEYS[n-3] role stream, KEYS[n-2] role
-- re-check set (unused: an import queues no role change), KEYS[n-1] event stream,
-- KEYS[n] notification stream
-- ARGV[1] vendor_id, ARGV[2] key hash prefix, ARGV[3] Discord index prefix, ARGV[4] retention
-- (s), then per key: key_id, '1' when redeemed ('0' not), its Discord id ('' none), the HWID a
-- permanent ban blocks ('' none), expires_at (epoch s, '' none), n, then n values: the hash's
-- field, value, ...
-- returns: {code, expires_at, ...} per key in order: code '1' imported, '0' already in the
-- project (expires_at: the existing key's, '' for none); error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local retention = tonumber(ARGV[4])
local out, ids = {}, {}
local imported = 0
local i = 5
while i <= #ARGV do
  local id, redeemed, discord, ban_hwid, expires = ARGV[i], ARGV[i + 1], ARGV[i + 2],
    ARGV[i + 3], ARGV[i + 4]
  local n = tonumber(ARGV[i + 5])
  local key = ARGV[2] .. id
  if redis.call('EXISTS', key) == 1 then
    out[#out + 1] = '0'
    out[#out + 1] = redis.call('HGET', key, 'expires_at') or ''
  else
    redis.call('HSET', key, unpack(ARGV, i + 6, i + 5 + n))
    ids[#ids + 1] = id
    if redeemed == '1' then
      redis.call('SADD', KEYS[3], id)
      if discord ~= '' then
        redis.call('SADD', ARGV[3] .. discord, id)
        redis.call('HSET', KEYS[4], id, discord)
        -- No role_sync: an import only says who redeemed, which anyone can claim; the role
        -- follows once the vendor acts on the key or saves the project's role settings.
      end
      if expires ~= '' then
        redis.call('PEXPIREAT', key, int((tonumber(expires) + retention) * 1000))
      end
    end
    if ban_hwid ~= '' then
      redis.call('HINCRBY', KEYS[5], ban_hwid, 1)
    end
    imported = imported + 1
    out[#out + 1] = '1'
    out[#out + 1] = expires
  end
  i = i + 6 + n
end
sadd_all(KEYS[2], ids)
if imported > 0 then
  event('Success', 'KEYS_IMPORTED', imported .. ' keys imported', '', false)
end
return out
