-- uses _common.lua: nothing
-- Records which vendor a Discord account signs in to ("Sign in with Discord"): the record is
-- written unless it names another vendor that still holds the account (a conflict: refused).
-- KEYS[1] the account's record (keyspace.discord_vendor)
-- ARGV[1] the vendor id
-- ARGV[2] a vendor the record may name and lose: one that no longer holds the account (the
--         caller checked), or '' (only a free record, or one naming ARGV[1], is taken)
-- returns: the vendor the record names afterwards (ARGV[1] when it was written)
local current = redis.call('GET', KEYS[1])
if not current or current == ARGV[1] or (ARGV[2] ~= '' and current == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return current
