-- uses _common.lua: ROLES_CAP
-- Role sync (store/roles.py): moves the Discord users whose re-check time has come from the
-- re-check set to the role stream, in one step (a user is moved once, whoever sweeps; a
-- crash cannot lose one between the two). Key expiry is found this way, not by Redis'
-- keyspace notifications (not delivered reliably).
-- KEYS[1] role re-check set, KEYS[2] role stream
-- ARGV[1] now (epoch s), ARGV[2] users to move at most
-- returns: how many were moved
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ROLES_CAP, '*', 'discord_id', id, 'why', 'EXPIRY')
end
return #due
