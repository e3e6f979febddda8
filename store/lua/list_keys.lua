-- uses _common.lua: owned, forget_discord
-- One page step of a key listing: walks the index with SSCAN (bounded: at most ARGV[5] keys
-- are read) and returns the live keys found. Ownership is checked before the index is read.
-- A member whose hash Redis has expired is forgotten by every index of the project in this
-- same step, so a listing never shows a key whose data is gone.
-- Position (see store/paging.py): ARGV[4] the SSCAN cursor ('0' = from the start, 'end' =
-- the walk is over), ARGV[6] 'after' ('' or a key id: only ids greater than it, set when a
-- step that saw the whole index was cut), ARGV[7..] ids left over from a cut step (read
-- first; each is checked to still be a member of the index).
-- KEYS[1] project hash, KEYS[2] the index set to read (buyer, active or one Discord user's),
-- KEYS[3] buyer index, KEYS[4] active index, KEYS[5] key -> Discord id hash
-- ARGV[1] vendor_id, ARGV[2] key hash prefix, ARGV[3] Discord index prefix,
-- ARGV[4] SSCAN cursor, ARGV[5] how many keys at most (1..1000), ARGV[6] after,
-- ARGV[7..] left-over ids
-- returns: {cursor, after, {left-over ids}, {key_id, {field, value, ...}, key_id, ...}};
-- error L7:PROJECT_NOT_FOUND
if not owned(KEYS[1], ARGV[1]) then
  return redis.error_reply('L7:PROJECT_NOT_FOUND')
end
local limit = tonumber(ARGV[5])
local cur, after = ARGV[4], ARGV[6]
local take, left = {}, {}
for i = 7, #ARGV do
  if #take < limit then
    if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 1 then
      take[#take + 1] = ARGV[i]
    end
  else
    left[#left + 1] = ARGV[i]
  end
end
local steps = 0
while #left == 0 and #take < limit and cur ~= 'end' and steps < 8 do
  steps = steps + 1
  local room = limit - #take
  local r = redis.call('SSCAN', KEYS[2], cur, 'COUNT', room)
  local ids = {}
  for _, id in ipairs(r[2]) do
    if after == '' or id > after then
      ids[#ids + 1] = id
    end
  end
  local nxt = r[1]
  if nxt == '0' then
    nxt = 'end'
  end
  if #ids <= room then
    for _, id in ipairs(ids) do
      take[#take + 1] = id
    end
    cur = nxt
  elseif cur == '0' and nxt == 'end' then
    -- This step saw the whole index: take the smallest ids, and next time walk it again
    -- from the start for the ids greater than the last one taken.
    table.sort(ids)
    for i = 1, room do
      take[#take + 1] = ids[i]
    end
    after = ids[room]
    break
  elseif #take > 0 then
    break -- does not fit: the next call takes this step again (the cursor did not move)
  else
    -- One step larger than the page: the rest of it is carried in the position.
    table.sort(ids)
    for i = 1, #ids do
      if i <= room then
        take[#take + 1] = ids[i]
      else
        left[#left + 1] = ids[i]
      end
    end
    cur = nxt
  end
end
local out = {}
for _, id in ipairs(take) do
  local h = redis.call('HGETALL', ARGV[2] .. id)
  if #h == 0 then
    redis.call('SREM', KEYS[2], id)
    redis.call('SREM', KEYS[3], id)
    redis.call('SREM', KEYS[4], id)
    forget_discord(KEYS[5], ARGV[3], id)
  else
    out[#out + 1] = id
    out[#out + 1] = h
  end
end
return {cur, after, left, out}
