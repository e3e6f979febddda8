-- uses _common.lua: nothing
-- Changes a key ref (store/keyrefs.py) only while it still names the caller's project: the
-- same id may name another project by now (an old-layout ref: another vendor's key; a ref
-- re-claimed by an import while its first project was being deleted).
-- KEYS[1] the ref
-- ARGV[1] project_id, ARGV[2] 'del', 'persist', or the epoch ms to expire at (PEXPIREAT)
-- returns: 1 when changed, 0 when the ref names another project or none
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'del' then
  return redis.call('DEL', KEYS[1])
end
if ARGV[2] == 'persist' then
  redis.call('PERSIST', KEYS[1])
  return 1
end
return redis.call('PEXPIREAT', KEYS[1], ARGV[2])
