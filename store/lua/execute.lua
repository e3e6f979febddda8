-- uses _common.lua: unpack, int, redeem_key, EVENTS_CAP, event, live_for, role_sync
-- The loader's execution checks: a batch of checks of one project (those that arrived
-- together), each with every verdict decided in one atomic step, all in one round trip.
-- Each check runs in turn, in batch order, exactly as if it were alone: the batch only
-- shares the reads and counter writes that do not depend on the checks before it.
-- Checks run in this fixed order; the first that fails is the verdict:
--   PROJECT_NOT_FOUND, RATE_LIMITED (internal: the handler answers 429), PROJECT_INACTIVE,
--   HWID_BANNED (the vendor's blacklist: HWID or client IP; the entry's attempts are
--   counted), (free-for-all: HWID_BANNED, else KEY_VALID), KEY_INCORRECT, KEY_BANNED,
--   HWID_BANNED, KEY_EXPIRED, KEY_HWID_LOCKED, KEY_VALID.
-- On a project with free keys on (the hash's free_keys), KEY_INCORRECT and KEY_EXPIRED are
-- KEY_REQUIRED (the handler adds the get-key page's URL); a run with no key at all is not
-- counted as a failed guess there.
-- (HWID_MISSING is decided by the handler before Redis is asked.) KEY_BANNED: a timed ban
-- (the key's ban_until) only until its end; it blocks no HWID.
-- Limits are per project and client (IP, or IPv6 /64), kept in one hash in the project's
-- slot: RATE_LIMITED while the client is blocked for failed checks (a block starts when its
-- ARGV[6]-th KEY_INCORRECT within ARGV[7] seconds of its first one happens, and lasts
-- ARGV[7] seconds), or when its executions in the current fixed window (ARGV[5] s, aligned
-- to epoch multiples) reached ARGV[4]. Refused checks are not counted. An IPv6 client's /48
-- has a failure counter and block of its own (ARGV[8] failures, same window), so rotating
-- through the /64s of a /48 is blocked too; its checks batch apart (one more KEY each).
-- The blacklist's IPs: the client's address is one field of KEYS[6], read with the field '/'
-- (the prefix lengths of the listed networks, longest first, e.g. '4/24 6/64'); only when
-- that lists some of the client's family are its networks computed (a network's field is
-- its address in hex and its length, e.g. '0a000000/8') and read in one more HMGET.
-- A valid check redeems a still-unredeemed buyer key, binds the HWID if none is set, and
-- counts the execution; being one script, two racing first runs can never both bind.
-- What loaders receive from the project (source, name, version, macros) is returned only when
-- a check is valid and the caller's cached revision (ARGV[3]) is not the current one, so a
-- large script does not cross the wire on every run.
-- Every verdict but PROJECT_NOT_FOUND and RATE_LIMITED appends an event; valid ones also
-- count the executions per project and per hour (the counter expires by itself after 13 h),
-- and per executor name and hour (KEYS[9]: at most ARGV[9] names per hour, the rest counted
-- as 'other'; the hash expires by itself after 8 days).
-- KEYS[1] project hash, KEYS[2] HWID ban hash, KEYS[3] hosted source, KEYS[4] active index,
-- KEYS[5] blacklisted HWIDs, KEYS[6] blacklisted IPs, KEYS[7] blacklist attempts,
-- KEYS[8] this hour's execution counter, KEYS[9] this hour's executions by executor, then
-- per check: its key hash and its client's
-- limit hash (fields w, n: execution window number and count; f, fn: first failure time
-- and failure count; b: blocked until), and, when ARGV[8] > 0, its IPv6 /48's limit hash
-- (fields f, fn, b), then the source's watermark plan, the role stream and role re-check set
-- (role_sync: a first run of a key that names a Discord user), the event stream and the
-- notification stream.
-- ARGV[1] now (epoch s), ARGV[2] retention (s), ARGV[3] source revision the caller has
-- cached ('' = none), ARGV[4] executions per window (0 = no limit), ARGV[5] execution window
-- (s), ARGV[6] failures before a block (0 = no brute-force defence), ARGV[7] failure window
-- and block length (s), ARGV[8] failures before an IPv6 /48 is blocked (0: the checks have
-- no /48 KEY), ARGV[9] executor names per hour at most, then per check: hwid, key_id, client
-- IP, executor name (normalised by the service: lower-case, 'unknown' when absent).
-- (KEYS and ARGV are built by execute_call in store/execute_contract.py, whose structs are
-- the reply's layout below, field for field.)
-- returns: {'PROJECT_NOT_FOUND'}, or {rev, hosted or false (no valid check, or the caller's
--   revision is current), one result per check}: hosted is
--   HostedReply {source, name, version, macros, watermark plan or false (the project marks
--   no copies)}; a result is
--   LimitedReply {'RATE_LIMITED', kind ('x' executions, 'f' failures, 'w' failures of the
--   client's /48), reset (epoch s), retry_after (s)}, or another failure
--   FailureReply {code, remaining, reset}, or
--   ValidReply {'KEY_VALID', discord_id, total_executions, expires_at, note or false,
--   redeemed_now, ffa, remaining, reset, sign_kid, prev_kid, premium ('0': a free key or
--   free-for-all, '1': a sold or vendor-made key)}.
--   remaining is the client's executions left in the window (-1 without a limit), reset the
--   window's end (0 without a limit); sign_kid the project's signing key id (false: signed
--   verdicts off), prev_kid its previous one while still accepted (else false).
local p = redis.call('HMGET', KEYS[1], 'vendor_id', 'is_active', 'ffa_active', 'rev',
  'signed_verdicts', 'sign_kid', 'sign_prev_kid', 'sign_prev_until', 'free_keys')
if not p[1] then
  return {'PROJECT_NOT_FOUND'}
end
local now = tonumber(ARGV[1])
local retention = tonumber(ARGV[2])
local xlimit, xwindow = tonumber(ARGV[4]), tonumber(ARGV[5])
local flimit, fwindow = tonumber(ARGV[6]), tonumber(ARGV[7])
local wlimit = tonumber(ARGV[8])
local stride = wlimit > 0 and 3 or 2  -- KEYS per check
local limited = xlimit > 0 or flimit > 0 or wlimit > 0
local idx = math.floor(now / xwindow)
local window_end = (idx + 1) * xwindow
local inactive = p[2] == '0'
local ffa = p[3] == '1'
local rev = p[4] or '0'
local nchecks = (#ARGV - 9) / 4
local executor_cap = tonumber(ARGV[9])
local stamp = ARGV[1]
-- Signed verdicts (handlers/signing.py): the project's key id, and its previous one while in
-- its grace period, returned with each valid result; the service signs after this returns.
local sign_kid = p[5] == '1' and p[6] or false
local prev_kid = sign_kid and p[7] and (tonumber(p[8]) or 0) > now and p[7] or false
-- Free keys (docs/free-keys.md): a run without a valid key is sent to the get-key page.
local free = p[9] == '1'

-- Limit state per client, read once per batch and written back once at its end.
local clients, order = {}, {}
local function limits(client)
  local c = clients[client]
  if not c then
    local h = redis.call('HMGET', client, 'w', 'n', 'b', 'f', 'fn')
    c = {w = tonumber(h[1]), n = tonumber(h[2]) or 0, b = tonumber(h[3]), f = tonumber(h[4]),
      fn = tonumber(h[5]) or 0, ttl = 0, set = {}, clear = false}
    clients[client] = c
    order[#order + 1] = client
  end
  return c
end

-- A failed check counted towards a limit hash's block (at limit failures).
local function count_failure(c, limit)
  local first, n = c.f, c.fn
  if not first or now >= first + fwindow then
    first, n = now, 0
  end
  n = n + 1
  if n >= limit then
    c.b, c.f, c.fn = now + fwindow, nil, 0
    c.set.b, c.clear = true, true
  else
    c.f, c.fn = first, n
    c.set.f, c.clear = true, false
  end
  if fwindow + 1 > c.ttl then
    c.ttl = fwindow + 1
  end
end

-- A client IP as hex digits (8 for IPv4, 32 for IPv6), nil when it is neither.
local function ip_hex(ip)
  local a, b, c, d = string.match(ip, '^(%d+)%.(%d+)%.(%d+)%.(%d+)$')
  if a then
    return string.format('%02x%02x%02x%02x', tonumber(a), tonumber(b), tonumber(c), tonumber(d))
  end
  if not string.find(ip, '^[%x:]+$') then
    return nil
  end
  local groups, tail = {}, nil
  local gap = string.find(ip, '::', 1, true)
  local head = ip
  if gap then
    head, tail = string.sub(ip, 1, gap - 1), string.sub(ip, gap + 2)
  end
  for g in string.gmatch(head, '[^:]+') do
    groups[#groups + 1] = g
  end
  if tail then
    local back = {}
    for g in string.gmatch(tail, '[^:]+') do
      back[#back + 1] = g
    end
    for _ = 1, 8 - #groups - #back do
      groups[#groups + 1] = '0'
    end
    for _, g in ipairs(back) do
      groups[#groups + 1] = g
    end
  end
  if #groups ~= 8 then
    return nil
  end
  for j, g in ipairs(groups) do
    if #g > 4 then
      return nil
    end
    groups[j] = string.rep('0', 4 - #g) .. g
  end
  return string.lower(table.concat(groups))
end

-- The listed prefix lengths by family (hex digits: 8 or 32), parsed once per batch.
local prefixes
local function network_listed(ip, list)
  if not prefixes then
    prefixes = {[8] = {}, [32] = {}}
    for family, len in string.gmatch(list, '(%d)/(%d+)') do
      local t = prefixes[family == '4' and 8 or 32]
      t[#t + 1] = tonumber(len)
    end
  end
  local hex = ip_hex(ip)
  local lens = hex and prefixes[#hex]
  if not lens or #lens == 0 then
    return false
  end
  local fields = {}
  for j, len in ipairs(lens) do
    local q, r = math.floor(len / 4), len % 4
    local net = string.sub(hex, 1, q)
    if r > 0 then
      local digit = tonumber(string.sub(hex, q + 1, q + 1), 16)
      net = net .. string.format('%x', digit - digit % 2 ^ (4 - r))
      q = q + 1
    end
    fields[j] = net .. string.rep('0', #hex - q) .. '/' .. len
  end
  local found = redis.call('HMGET', KEYS[6], unpack(fields))
  for j = 1, #fields do
    if found[j] then
      return found[j]  -- the longest prefix that lists the client
    end
  end
  return false
end

-- Blacklisted IPs and networks, looked up once per IP in the batch.
local listed_ips = {}
local function ip_listed(ip)
  local v = listed_ips[ip]
  if v == nil then
    local h = redis.call('HMGET', KEYS[6], ip, '/')
    v = h[1] or (h[2] and network_listed(ip, h[2])) or false
    listed_ips[ip] = v
  end
  return v
end

local valid_count = 0
-- Valid executions of the batch by executor name, written once at its end.
local executors, executor_names = {}, {}
local executor

-- The check being decided, for fail() and valid(): set as each check starts (functions
-- defined once per batch rather than closures made per check).
local key_id, remaining, reset
local events_key = KEYS[#KEYS - 1]

local function fail(code, etype, message, notify, extra)
  event(etype, 'EXECUTION', message, key_id, notify, extra, stamp)
  return {code, int(remaining), int(reset)}
end

local function valid(discord_id, n, expires, note, redeemed_now, is_ffa, premium)
  valid_count = valid_count + 1
  local seen = executors[executor]
  if not seen then
    executor_names[#executor_names + 1] = executor
  end
  executors[executor] = (seen or 0) + 1
  -- event('Success', 'EXECUTION', 'Script executed', key_id, false, nil, stamp), spelt out:
  -- the hot path's one XADD without building a field table.
  redis.call('XADD', events_key, 'MAXLEN', '~', EVENTS_CAP, '*', 'type', 'Success', 'kind',
    'EXECUTION', 'message', 'Script executed', 'key_id', key_id, 'ts', stamp)
  return {'KEY_VALID', discord_id, n, expires, note, redeemed_now, is_ffa,
    int(remaining), int(reset), sign_kid, prev_kid, premium}
end

local function check(i)
  local base = 9 + stride * (i - 1)
  local key_hash, client = KEYS[base + 1], KEYS[base + 2]
  local a = 6 + 4 * i
  local hwid, ip = ARGV[a], ARGV[a + 2]
  key_id, remaining, reset, executor = ARGV[a + 1], -1, 0, ARGV[a + 3]
  local c, w
  if limited then
    c = limits(client)
    if flimit > 0 and c.b and now < c.b then
      return {'RATE_LIMITED', 'f', int(c.b), int(c.b - now)}
    end
    if stride == 3 then
      w = limits(KEYS[base + 3])
      if w.b and now < w.b then
        return {'RATE_LIMITED', 'w', int(w.b), int(w.b - now)}
      end
    end
    if xlimit > 0 then
      reset = window_end
      local n = 0
      if c.w == idx then
        n = c.n
      end
      if n >= xlimit then
        return {'RATE_LIMITED', 'x', int(reset), int(reset - now)}
      end
      n = n + 1
      c.w, c.n = idx, n
      c.set.w = true
      remaining = xlimit - n
      if n == 1 and reset - now + 1 > c.ttl then  -- a new window: the hash must outlive it
        c.ttl = reset - now + 1
      end
    end
  end

  if inactive then
    return fail('PROJECT_INACTIVE', 'Warning', 'Execution refused: project inactive')
  end
  local listed = redis.call('HGET', KEYS[5], hwid) or ip_listed(ip)
  if listed then
    redis.call('HINCRBY', KEYS[7], listed, 1)
    return fail('HWID_BANNED', 'Critical', 'Blacklisted HWID or IP refused', true,
      {'hwid', hwid, 'ip', ip, 'entry', listed})
  end

  if ffa then
    if redis.call('HEXISTS', KEYS[2], hwid) == 1 then
      return fail('HWID_BANNED', 'Critical', 'Banned HWID refused', false)
    end
    local n = redis.call('HINCRBY', KEYS[1], 'ffa_executions', 1)
    return valid('', n, '', 'FFA', '0', '1', '0')
  end
  local k = redis.call('HMGET', key_hash, 'created_at', 'redeemed_at', 'banned', 'expires_at',
    'hwid', 'discord_id', 'note', 'total_executions', 'ban_until', 'type')
  if not k[1] then
    -- A KEY_INCORRECT counts towards the client's block, and its /48's (a free-keys run
    -- without any key is no guess).
    local guess = not free or key_id ~= ''
    if c and flimit > 0 and guess then
      count_failure(c, flimit)
    end
    if w and guess then
      count_failure(w, wlimit)
    end
    if free then
      return fail('KEY_REQUIRED', 'Warning', 'Run without a key: sent to the get-key page', false)
    end
    return fail('KEY_INCORRECT', 'Warning', 'Invalid key refused', false)
  end
  if k[3] == '1' and (not k[9] or now < tonumber(k[9])) then  -- a timed ban lifts itself
    return fail('KEY_BANNED', 'Critical', 'Banned key refused', false)
  end
  if redis.call('HEXISTS', KEYS[2], hwid) == 1 then
    return fail('HWID_BANNED', 'Critical', 'Banned HWID refused', false)
  end
  local expires = k[4] or ''
  if k[2] and expires ~= '' and now >= tonumber(expires) then
    return fail(free and 'KEY_REQUIRED' or 'KEY_EXPIRED', 'Warning', 'Expired key refused',
      false)
  end
  if k[5] and k[5] ~= hwid then
    return fail('KEY_HWID_LOCKED', 'Warning', 'Key used from another HWID', true,
      {'hwid', hwid, 'bound_hwid', k[5]})
  end
  local redeemed_now = '0'
  if not k[2] then
    expires = redeem_key(key_hash, now, retention)
    redis.call('SADD', KEYS[4], key_id)
    redeemed_now = '1'
    event('Success', 'REDEEM', 'Key redeemed by the loader', key_id, true, {'hwid', hwid},
      stamp)
    role_sync(k[6], 'REDEEM', expires)  -- a key that already names its Discord user
  end
  -- One HSET for the whole update of the key.
  local n = (tonumber(k[8]) or 0) + 1
  if k[5] then
    redis.call('HSET', key_hash, 'total_executions', int(n), 'last_execution', stamp)
  else
    redis.call('HSET', key_hash, 'total_executions', int(n), 'last_execution', stamp,
      'hwid', hwid)
  end
  return valid(k[6] or '', n, expires, k[7] or false, redeemed_now, '0',
    k[10] == 'free' and '0' or '1')
end

local out = {rev, false}
for i = 1, nchecks do
  out[i + 2] = check(i)
end

-- The batch's writes that commute with its checks: limit state, counters.
for _, client in ipairs(order) do
  local c = clients[client]
  local fields = {}
  local function put(name, value)
    fields[#fields + 1] = name
    fields[#fields + 1] = int(value)
  end
  if c.set.w then
    put('w', c.w)
    put('n', c.n)
  end
  if c.set.b then
    put('b', c.b)
  end
  if c.clear then
    redis.call('HDEL', client, 'f', 'fn')
  elseif c.set.f then
    put('f', c.f)
    put('fn', c.fn)
  end
  if #fields > 0 then
    redis.call('HSET', client, unpack(fields))
  end
  if c.ttl > 0 then
    live_for(client, c.ttl)
  end
end
if valid_count > 0 then
  if redis.call('INCRBY', KEYS[8], valid_count) == valid_count then
    redis.call('EXPIRE', KEYS[8], 13 * 3600)
  end
  redis.call('HINCRBY', KEYS[1], 'executions', valid_count)
  -- By executor: a name not yet in this hour's hash once it holds executor_cap names is
  -- counted as 'other' (bounded cardinality whatever loaders send).
  -- One command for a name already counted this hour (the common case); a new field is
  -- checked against the cap after the fact (taken back and counted as 'other').
  for _, name in ipairs(executor_names) do
    local n = executors[name]
    if redis.call('HINCRBY', KEYS[9], name, n) == n then  -- a new field
      if name ~= 'other' and redis.call('HLEN', KEYS[9]) > executor_cap then
        redis.call('HDEL', KEYS[9], name)
        name = 'other'
        n = redis.call('HINCRBY', KEYS[9], name, n) == n and n or 0
      end
      if n > 0 then  -- the hash outlives its newest field
        redis.call('EXPIRE', KEYS[9], 8 * 86400)
      end
    end
  end
end
if valid_count > 0 and rev ~= ARGV[3] then
  local h = redis.call('HMGET', KEYS[1], 'name', 'version', 'source_macros', 'watermark')
  out[2] = {redis.call('GET', KEYS[3]) or '', h[1] or '', h[2] or '0.0.0', h[3] or '',
    h[4] == '1' and (redis.call('GET', KEYS[#KEYS - 4]) or '') or false}
end
return out
