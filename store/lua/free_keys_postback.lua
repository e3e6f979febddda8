-- uses _common.lua: nothing
-- Free keys: a LootLabs postback (the provider's server calls the checkpoint's secret
-- postback URL when a player completed the link). Each `unique_id` counts once; the IP it
-- reports is kept for the checkpoint start its `click_id` names, for the player's return
-- (free_keys_complete.lua) to find.
-- KEYS[1] the unique_id's used-marker, KEYS[2] the postback record of click_id
-- ARGV[1] now, ARGV[2] the reported IP, ARGV[3] TTL of both (s)
-- returns: 1, or 0 for a unique_id seen before (nothing written)
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1
