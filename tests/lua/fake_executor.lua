-- A fake Roblox executor for running the real loader.lua under Lua 5.1 and under Luau (which
-- has no io or sockets): HttpService (JSON in pure Lua, GenerateGUID), game, workspace's
-- clock, request, identifyexecutor, with every source of the loader's nonce made
-- deterministic by a seed. RUN{...} runs one loader: with no `answer` it prints the request
-- body ("REQUEST <json>") and answers a failure; with one, it answers that text. A request to
-- the report route is printed ("REPORT <url> <json>") and answered 204. The test
-- (tests/test_lua_signed.py) forwards captured requests to a real server and runs the same
-- seed again with the server's answer: the same nonce, so a genuine answer verifies.
if bit32 == nil then
  bit32 = require("bit32") -- Lua 5.1: Debian's lua-bit32 (Luau has bit32 built in)
end

local json = {}

local escapes = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t"}

function json.encode(v)
  local t = type(v)
  if t == "string" then
    return '"' .. string.gsub(v, '[%c"\\]', function(c)
      return escapes[c] or string.format("\\u%04x", string.byte(c))
    end) .. '"'
  elseif t == "number" then
    return string.format("%.17g", v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    local out = {}
    for _, k in ipairs(keys) do out[#out + 1] = json.encode(k) .. ":" .. json.encode(v[k]) end
    return "{" .. table.concat(out, ",") .. "}"
  end
  return "null"
end

local function utf8_char(c)
  if c < 0x80 then return string.char(c) end
  if c < 0x800 then
    return string.char(0xC0 + math.floor(c / 64), 0x80 + c % 64)
  end
  if c < 0x10000 then
    return string.char(0xE0 + math.floor(c / 4096), 0x80 + math.floor(c / 64) % 64, 0x80 + c % 64)
  end
  return string.char(0xF0 + math.floor(c / 262144), 0x80 + math.floor(c / 4096) % 64,
    0x80 + math.floor(c / 64) % 64, 0x80 + c % 64)
end

function json.decode(s)
  local pos = 1
  local value
  local function ws()
    pos = string.find(s, "[^ \t\r\n]", pos) or #s + 1
  end
  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local c = string.sub(s, pos, pos)
      if c == '"' then
        pos = pos + 1
        return table.concat(out)
      elseif c == "\\" then
        local e = string.sub(s, pos + 1, pos + 1)
        if e == "u" then
          local code = tonumber(string.sub(s, pos + 2, pos + 5), 16)
          pos = pos + 6
          if code >= 0xD800 and code < 0xDC00 and string.sub(s, pos, pos + 1) == "\\u" then
            local low = tonumber(string.sub(s, pos + 2, pos + 5), 16)
            code = 0x10000 + (code - 0xD800) * 1024 + (low - 0xDC00)
            pos = pos + 6
          end
          out[#out + 1] = utf8_char(code)
        else
          local map = {b = "\b", f = "\f", n = "\n", r = "\r", t = "\t"}
          out[#out + 1] = map[e] or e
          pos = pos + 2
        end
      elseif c == "" then
        error("unterminated string")
      else
        local stop = string.find(s, '["\\]', pos) or #s + 1
        out[#out + 1] = string.sub(s, pos, stop - 1)
        pos = stop
      end
    end
  end
  -- The comma-separated items of an object or array (at its "{" or "["), each read by item(),
  -- up to and past the closing bracket.
  local function items(close, item)
    pos = pos + 1
    ws()
    if string.sub(s, pos, pos) == close then pos = pos + 1 return end
    while true do
      item()
      ws()
      local d = string.sub(s, pos, pos)
      pos = pos + 1
      if d == close then return end
      assert(d == ",", "expected , or " .. close)
    end
  end
  function value()
    ws()
    local c = string.sub(s, pos, pos)
    if c == "{" then
      local obj = {}
      items("}", function()
        ws()
        local k = str()
        ws()
        assert(string.sub(s, pos, pos) == ":", "expected :")
        pos = pos + 1
        obj[k] = value()
      end)
      return obj
    elseif c == "[" then
      local arr = {}
      items("]", function() arr[#arr + 1] = value() end)
      return arr
    elseif c == '"' then
      return str()
    elseif string.sub(s, pos, pos + 3) == "true" then
      pos = pos + 4
      return true
    elseif string.sub(s, pos, pos + 4) == "false" then
      pos = pos + 5
      return false
    elseif string.sub(s, pos, pos + 3) == "null" then
      pos = pos + 4
      return nil
    end
    local num = string.match(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    assert(num and num ~= "", "bad JSON at " .. pos)
    pos = pos + #num
    return tonumber(num)
  end
  local v = value()
  return v
end

-- Runs one loader in a fresh fake executor. case: loader (text), seed, now (the game's clock),
-- key (script_key), answer (nil: capture the request).
function RUN(case)
  print("CASE " .. case.name)
  local state = case.seed
  local function rand()
    state = (state * 1103515245 + 12345) % 2147483648
    return state
  end
  local HttpService = {}
  function HttpService:JSONEncode(v) return json.encode(v) end
  function HttpService:JSONDecode(s) return json.decode(s) end
  function HttpService:GenerateGUID()
    return string.format("%08x-%04x-%04x-%04x-%08x%04x", rand(), rand() % 65536,
      rand() % 65536, rand() % 65536, rand(), rand() % 65536)
  end
  local env = setmetatable({}, {__index = _G})
  env.game = {GetService = function(_, name)
    assert(name == "HttpService", name)
    return HttpService
  end}
  -- The game's clock is `now`; the other clocks feed only the nonce: fixed by the seed.
  env.workspace = {GetServerTimeNow = function() return case.now end}
  env.os = setmetatable({
    clock = function() return case.seed / 1000 end,
    time = function() return 1700000000 + case.seed end,
  }, {__index = os})
  env.math = setmetatable({random = function(a, b) return a + rand() % (b - a + 1) end},
    {__index = math})
  env.tick = function() return 1700000000.5 + case.seed end
  env.tostring = function(v)
    if type(v) == "table" then return "table: " .. case.seed end
    return tostring(v)
  end
  env.warn = function(message) print("WARN " .. message) end
  env.getgenv = function() return env end
  env.identifyexecutor = function() return "FakeExec", "1.0" end
  env.script_key = case.key
  env.request = function(options)
    -- The loader's report of a refused answer: recorded (the test forwards it), 204.
    if string.find(options.Url, "/api/loader/report", 1, true) then
      print("REPORT " .. options.Url .. " " .. options.Body)
      return {StatusCode = 204, Body = ""}
    end
    if case.answer == nil then
      print("REQUEST " .. options.Body)
      return {StatusCode = 200, Body = '{"valid":false,"code":"CAPTURED","message":"captured"}'}
    end
    return {StatusCode = 200, Body = case.answer}
  end
  local fn, err = loadstring(case.loader)
  if not fn then
    print("ERROR " .. tostring(err))
    return
  end
  setfenv(fn, env)
  local ok, failure = pcall(fn)
  if not ok then print("ERROR " .. tostring(failure)) end
end
