-- uses _common.lua: unpack, owned
-- Deleting a project, step 3 of 3: its fixed keys, once its keys are gone (see
-- delete_project), and the tombstone last: from then on deleting again is a 404.
-- KEYS[1] tombstone, KEYS[2..] the fixed keys of the project (source, indexes, blacklist
-- mirrors, event streams, hourly counters)
-- ARGV[1] vendor_id
-- returns: 1; error L7:PROJECT_NOT_FOUND when the tombstone is not the vendor's
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
redis.call('UNLINK', unpack(KEYS))
return 1
