-- uses _common.lua: nothing
-- Mirrors one blacklist entry into a project: its HWID, and its address or network; a
-- network's prefix length joins the IP hash's '/' list (tokens such as '4/24' or '6/64',
-- longest prefix first), the lengths the loader check computes a client's network for.
-- KEYS[1] blacklisted HWIDs, KEYS[2] blacklisted IPs
-- ARGV[1] entry id, ARGV[2] its HWID ('' = none), ARGV[3] its IP field (an address, or a
-- network's 'hex/len'; '' = none), ARGV[4] its prefix token ('' = an address)
-- returns: 1
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
end
if ARGV[4] ~= '' then
  local tokens, found = {}, false
  for token in string.gmatch(redis.call('HGET', KEYS[2], '/') or '', '%S+') do
    tokens[#tokens + 1] = token
    found = found or token == ARGV[4]
  end
  if not found then
    tokens[#tokens + 1] = ARGV[4]
    table.sort(tokens, function(a, b)
      local la, lb = tonumber(string.match(a, '/(%d+)$')), tonumber(string.match(b, '/(%d+)$'))
      if la ~= lb then
        return la > lb
      end
      return a < b
    end)
    redis.call('HSET', KEYS[2], '/', table.concat(tokens, ' '))
  end
end
return 1
