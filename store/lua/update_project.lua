-- uses _common.lua: unpack, owned, event, ROLES_CAP
-- Applies a partial update to a project the vendor owns.
-- Role sync: an update that sets is_active, discord_guild_id or discord_role_id while the
-- project has (or had) a Discord role appends one entry '*' to the role stream: the bot then
-- re-checks every Discord user of the project (and removes the old role where it changed).
-- KEYS[1] project hash, KEYS[2] role stream, KEYS[3] role re-check set, KEYS[4] event stream,
-- KEYS[5] notification stream
-- ARGV[1] vendor_id, ARGV[2..] field, value pairs (may be none)
-- returns: the project's {field, value, ...}; error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
if #ARGV > 1 then
  local resync = false
  for i = 2, #ARGV, 2 do
    local f = ARGV[i]
    if f == 'is_active' or f == 'discord_guild_id' or f == 'discord_role_id' then
      resync = true
    end
  end
  local old = redis.call('HMGET', KEYS[1], 'discord_guild_id', 'discord_role_id')
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
  -- The script name is part of what loaders receive: a new revision refreshes caches.
  redis.call('HINCRBY', KEYS[1], 'rev', 1)
  event('Success', 'PROJECT', 'Project settings updated', '', false)
  local new = redis.call('HMGET', KEYS[1], 'discord_guild_id', 'discord_role_id')
  if resync and ((old[2] or '') ~= '' or (new[2] or '') ~= '') then
    local fields = {'discord_id', '*', 'why', 'PROJECT'}
    if (old[1] or '') ~= '' and (old[2] or '') ~= '' and (old[1] ~= new[1] or old[2] ~= new[2]) then
      -- The role (or its guild) changed: the old one goes from everyone who had it.
      fields[#fields + 1] = 'old_guild'
      fields[#fields + 1] = old[1]
      fields[#fields + 1] = 'old_role'
      fields[#fields + 1] = old[2]
    end
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ROLES_CAP, '*', unpack(fields))
  end
end
return redis.call('HGETALL', KEYS[1])
