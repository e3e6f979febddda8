-- uses _common.lua: owned
-- Role sync (store/roles.py): acknowledges entries of a role stream that the role sync route
-- handed out, in one step per stream: each entry still pending in the group ``roles`` is
-- acknowledged and deleted (XACK + XDEL). Nothing else is touched: an entry that is not
-- pending (never handed out, or acknowledged already) stays, and a project stream is
-- acknowledged only for the vendor that owns the project (another vendor's change looks
-- unknown).
-- KEYS[1] project hash (a project's stream) or the vendor's hash (its revoke stream),
-- KEYS[2] the stream
-- ARGV[1] vendor_id, ARGV[2] 'project' or 'revoke', ARGV[3..] entry ids
-- returns: per acknowledged entry {entry id, {field, value, ...}}
if ARGV[2] == 'project' and not owned(KEYS[1], ARGV[1]) then
  return {}
end
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  if redis.call('XACK', KEYS[2], 'roles', id) == 1 then
    local entry = redis.call('XRANGE', KEYS[2], id, id)[1]
    redis.call('XDEL', KEYS[2], id)
    out[#out + 1] = {id, entry and entry[2] or {}}
  end
end
return out
