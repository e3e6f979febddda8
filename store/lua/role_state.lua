-- uses _common.lua: int
-- Role sync (store/roles.py): does a Discord user hold a valid key in the project right now?
-- The bot reads this right before it grants or removes the role, so what it applies is the
-- state of the user's keys, whichever entry brought it here (replays and reordering are
-- harmless). A key is valid when redeemed, not expired and not banned (a timed ban counts
-- until its end); an inactive project holds no valid key. In the same step the user's next
-- re-check is set to the earliest time their answer may change (a valid key's expiry, a timed
-- ban's end), or the user leaves the re-check set when there is none.
-- KEYS[1] project hash, KEYS[2] the user's Discord index, KEYS[3] role re-check set
-- ARGV[1] key hash prefix, ARGV[2] now (epoch s), ARGV[3] discord_id
-- returns: {guild, role, '1' or '0'}; guild and role are '' when the project has no Discord
-- role (or is gone)
local p = redis.call('HMGET', KEYS[1], 'discord_guild_id', 'discord_role_id', 'is_active')
local guild, role = p[1] or '', p[2] or ''
if guild == '' or role == '' then
  redis.call('ZREM', KEYS[3], ARGV[3])
  return {'', '', '0'}
end
local now = tonumber(ARGV[2])
local holds, nxt = false, nil
local function soon(at)
  if at > now and (not nxt or at < nxt) then
    nxt = at
  end
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local h = redis.call('HMGET', ARGV[1] .. id, 'redeemed_at', 'banned', 'ban_until', 'expires_at')
  local expires = tonumber(h[4] or '')
  if h[1] and (not expires or now < expires) then
    local ends = tonumber(h[3] or '')
    if h[2] == '1' and (not ends or now < ends) then
      if ends then
        soon(ends)
      end
    else
      holds = true
      if expires then
        soon(expires)
      end
    end
  end
end
if nxt then
  redis.call('ZADD', KEYS[3], int(nxt), ARGV[3])
else
  redis.call('ZREM', KEYS[3], ARGV[3])
end
if holds and p[3] ~= '0' then
  return {guild, role, '1'}
end
return {guild, role, '0'}
