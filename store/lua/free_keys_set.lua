-- uses _common.lua: owned
-- Free keys: the vendor's settings of a project (PUT /api/vendor/projects/{id}/free_keys).
-- Checks the owner and that every checkpoint that needs a secret has one, then writes the
-- settings (public JSON and the secrets) and the project hash's `free_keys` flag, which the
-- loader check (execute.lua) reads: KEY_REQUIRED instead of KEY_INCORRECT/KEY_EXPIRED when on.
-- A secret given as '' keeps the one stored for that checkpoint; a LootLabs checkpoint keeps
-- its postback secret (the candidate is used only when it has none), so the URLs the vendor
-- pasted keep working. Secrets of checkpoints beyond the new count are removed.
-- KEYS[1] project hash, KEYS[2] free-key settings hash
-- ARGV[1] vendor_id, ARGV[2] enabled ('1'/'0'), ARGV[3] settings JSON (no secrets),
-- ARGV[4] turnstile secret ('?' keep the stored one, which must exist; '-' none), ARGV[5] checkpoints n, then per checkpoint k
-- (0-based) three: its provider secret ('' keep, '-' none), '1' when it needs one, and a
-- postback secret candidate ('' none)
-- returns: the postback secrets per checkpoint ('' for none); errors L7:PROJECT_NOT_FOUND,
--   L7:FREE_SECRET_MISSING:<k> (a checkpoint that needs a secret has none, k = -1: Turnstile;
--   nothing written)
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local n = tonumber(ARGV[5])
for k = 0, n - 1 do
  local secret, needs = ARGV[6 + 3 * k], ARGV[7 + 3 * k]
  if needs == '1' and (secret == '-' or (secret == ''
      and redis.call('HEXISTS', KEYS[2], 'secret:' .. k) == 0)) then
    return redis.error_reply('L7:FREE_SECRET_MISSING:' .. k)
  end
end
if ARGV[4] == '?' and redis.call('HEXISTS', KEYS[2], 'turnstile') == 0 then
  return redis.error_reply('L7:FREE_SECRET_MISSING:-1')
end
local out = {}
for k = 0, n - 1 do
  local secret, needs, candidate = ARGV[6 + 3 * k], ARGV[7 + 3 * k], ARGV[8 + 3 * k]
  if needs ~= '1' or secret == '-' then
    redis.call('HDEL', KEYS[2], 'secret:' .. k)
  elseif secret ~= '' then
    redis.call('HSET', KEYS[2], 'secret:' .. k, secret)
  end
  if candidate == '' then
    redis.call('HDEL', KEYS[2], 'postback:' .. k)
    out[k + 1] = ''
  else
    redis.call('HSETNX', KEYS[2], 'postback:' .. k, candidate)
    out[k + 1] = redis.call('HGET', KEYS[2], 'postback:' .. k)
  end
end
for k = n, 9 do
  redis.call('HDEL', KEYS[2], 'secret:' .. k, 'postback:' .. k)
end
if ARGV[4] == '-' then
  redis.call('HDEL', KEYS[2], 'turnstile')
elseif ARGV[4] ~= '?' then
  redis.call('HSET', KEYS[2], 'turnstile', ARGV[4])
end
redis.call('HSET', KEYS[2], 'config', ARGV[3])
redis.call('HSET', KEYS[1], 'free_keys', ARGV[2])
return out
