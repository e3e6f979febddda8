-- uses _common.lua: owned
-- Deleting a project, step 1 of 3: the project disappears at once. Its hash is renamed to
-- the tombstone, so every API and loader call (which all check the project hash) finds no
-- project from now on; its keys are then deleted in bounded batches (delete_project_keys)
-- and its fixed keys last (delete_project_rest). Ownership is checked in the same step, so
-- a vendor can never delete someone else's data. A delete that stopped halfway left the
-- tombstone: deleting again resumes it.
-- KEYS[1] project hash, KEYS[2] tombstone
-- ARGV[1] vendor_id
-- returns: 1 (the project was just deleted) or 0 (a halfway delete is resumed);
-- error L7:PROJECT_NOT_FOUND
if owned(KEYS[1], ARGV[1]) then
  redis.call('RENAME', KEYS[1], KEYS[2])
  return 1
end
if owned(KEYS[2], ARGV[1]) then
  return 0
end
return redis.error_reply('L7:PROJECT_NOT_FOUND')
