-- uses _common.lua: ROLES_CAP
-- Role sync (store/roles.py): appends Discord users to a project's role stream while the
-- project exists (a deleted project's stream is never created again): the users of an entry
-- '*' one by one (with the role to remove when it changed), or a user to check again after
-- an acknowledgement that raced a newer change.
-- KEYS[1] project hash, KEYS[2] role stream
-- ARGV[1] why, ARGV[2] old guild ('' none), ARGV[3] old role ('' none), ARGV[4..] discord ids
-- returns: entries written
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local n = 0
for i = 4, #ARGV do
  if ARGV[2] ~= '' and ARGV[3] ~= '' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ROLES_CAP, '*', 'discord_id', ARGV[i], 'why',
      ARGV[1], 'old_guild', ARGV[2], 'old_role', ARGV[3])
    n = n + 1
  end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ROLES_CAP, '*', 'discord_id', ARGV[i], 'why', ARGV[1])
  n = n + 1
end
return n
