-- leaf7's obfuscator, run by worker.py (run.py starts it):
--   obfuscate.lua VENDOR PRESET SEED IN OUT
-- LuaSrcDiet (VENDOR/luasrcdiet, MIT) renames locals and removes comments and layout; the
-- passes below, per PRESET (presets/*.lua), hide string literals behind a decoder and write
-- integer literals as sums. Everything it emits is Lua 5.1 and Luau. A failure is an error
-- whose message is the job's reason (one line, no file locations).
local vendor, preset_file, seed, input, output = arg[1], arg[2], tonumber(arg[3]), arg[4], arg[5]
package.path = vendor .. "/?.lua;" .. vendor .. "/?/init.lua"
package.cpath = ""
local diet = require("luasrcdiet")
local llex = require("luasrcdiet.llex")
local lparser = require("luasrcdiet.lparser")

local byte, char, concat, fmt, random = string.byte, string.char, table.concat, string.format, math.random
local preset = dofile(preset_file)
math.randomseed(seed)

-- LuaSrcDiet's options (vendor/luasrcdiet/init.lua), the same for every preset. Its `numbers`
-- and `strings` options (re-spelt literals) stay off: they are not needed, and only spellings
-- Lua 5.1 and Luau read alike may be emitted.
local DIET = {
  comments = true, emptylines = true, whitespace = true, eols = true, -- no comments, one line
  locals = true, entropy = true, -- locals renamed to short names
  srcequiv = true, -- its own check: the output has the source's tokens but the local names
}

local function fail(message)
  error(message, 0)
end

-- The vendored lexer and parser report "[string]:3: msg" / "(source):3: msg".
local SYNTAX = "\0syntax\0"
local function syntax_error(message)
  error(SYNTAX .. message, 0)
end
llex.error, lparser.error = syntax_error, syntax_error

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- ---- strings: literal -> its value, and the encoded spelling ------------------------------

-- Escapes Lua 5.1 and Luau read alike (a \x, \z or \u{} is a different string in each: such a
-- literal is left as it is).
local COMMON_ESCAPE = { a = 1, b = 1, f = 1, n = 1, r = 1, t = 1, v = 1, ["\\"] = 1,
  ['"'] = 1, ["'"] = 1, ["\n"] = 1, ["\r"] = 1 }

local function value_of(token, literal)
  if token == "TK_STRING" then
    for e in literal:gmatch("\\(.)") do
      if not COMMON_ESCAPE[e] and not e:match("%d") then
        return nil
      end
    end
  end
  local chunk = loadstring("return " .. literal)
  return chunk and chunk() or nil
end

-- No 0 byte: the key is a table of constants of the main chunk (see integer_of on zeros).
local KEY = {}
for i = 1, 16 + random(0, 15) do
  KEY[i] = random(1, 255)
end

-- The first byte is where the string starts in the key; each byte is added to a key byte.
local function encode(value)
  local o = random(0, 255)
  local out = { o }
  for i = 1, #value do
    out[i + 1] = (byte(value, i) + KEY[(o + i + 1) % #KEY + 1]) % 256
  end
  local parts = {}
  for i, b in ipairs(out) do
    -- Always three digits: "\0012" cannot be read as "\12" then "2".
    parts[i] = (b >= 32 and b < 127 and b ~= 34 and b ~= 92) and char(b) or fmt("\\%03d", b)
  end
  return '"' .. concat(parts) .. '"'
end

-- ---- numbers: an integer literal -> an equivalent sum ------------------------------------

-- Not 0: Lua 5.1 keeps one constant for 0 and -0, so which zero "-0" or "1/0" reads depends on
-- the zeros written before it (a sum of 0, or a 0 term, would change what "-0" prints).
local function integer_of(literal)
  if literal:match("^%d+$") or literal:match("^0[xX]%x+$") then
    local v = tonumber(literal)
    if v and v > 0 and v < 2 ^ 31 then
      return v
    end
  end
end

-- Parenthesised (binds like the literal); every term below 2^32, so exact in doubles; no
-- "--" (a "-" is never followed by a negative term).
local function sum(v)
  local r = random(1, 2 ^ 20)
  if random(0, 1) == 0 or v == r then
    return fmt("(%d-%d)", v + r, r)
  end
  local a = v - r
  return a < 0 and fmt("(-%d+%d)", -a, r) or fmt("(%d+%d)", a, r)
end

-- ---- the passes -------------------------------------------------------------------------

local REAL = { TK_KEYWORD = 1, TK_NAME = 1, TK_NUMBER = 1, TK_STRING = 1, TK_LSTRING = 1, TK_OP = 1 }
-- After these, a string literal is a call's argument ("f 'x'", "f{}'x'", "f()'x'", "t[1]'x'").
local CALLEE = { TK_NAME = 1, TK_STRING = 1, TK_LSTRING = 1, [")"] = 1, ["]"] = 1, ["}"] = 1 }

-- A name no token of `text` uses (so no local or global of the script is shadowed).
local function fresh_name(text)
  local used = {}
  for name in text:gmatch("[%a_][%w_]*") do
    used[name] = true
  end
  while true do
    local name = "_"
    for _ = 1, 6 do
      name = name .. char(random(0, 1) == 0 and random(97, 122) or random(65, 90))
    end
    if not used[name] then
      return name
    end
  end
end

-- The decoder: a value per encoded string (or per index of the string table), computed once.
local function decoder(name, strings)
  local key = {}
  for i, b in ipairs(KEY) do
    key[i] = tostring(b)
  end
  local head = "local " .. name .. ";do local k,m,b,c,q={" .. concat(key, ",")
    .. "},{},string.byte,string.char,table.concat "
  local decode = "local o,r,n=b(s,1),{},#k for i=2,#s do r[i-1]=c((b(s,i)-k[(o+i)%n+1])%256) end "
  if not strings then
    return head .. name .. "=function(s) local v=m[s] if v then return v end " .. decode
      .. "v=q(r) m[s]=v return v end end "
  end
  return head .. "local t={" .. concat(strings, ",") .. "} " .. name
    .. "=function(i) local v=m[i] if v then return v end local s=t[i] " .. decode
    .. "v=q(r) m[i]=v return v end end "
end

local function transform(text)
  local toks, infos = llex.lex(text)
  local name = fresh_name(text)
  local table_mode = preset.strings == "table"
  local slots, entries, order = {}, {}, {}
  if table_mode then  -- a shuffled table of the distinct values
    for i, tok in ipairs(toks) do
      local v = (tok == "TK_STRING" or tok == "TK_LSTRING") and value_of(tok, infos[i])
      if v and not slots[v] then
        slots[v] = true
        order[#order + 1] = v
      end
    end
    for i = #order, 2, -1 do
      local j = random(1, i)
      order[i], order[j] = order[j], order[i]
    end
    for i, v in ipairs(order) do
      slots[v], entries[i] = i, encode(v)
    end
  end
  local number = preset.numbers and sum or tostring
  local out, prev = {}, nil
  for i, tok in ipairs(toks) do
    local info = infos[i]
    local v = preset.strings and (tok == "TK_STRING" or tok == "TK_LSTRING") and value_of(tok, info)
    if v then
      local call = name .. "(" .. (table_mode and number(slots[v]) or encode(v)) .. ")"
      if CALLEE[prev] then  -- f"x" -> f(D(...)): the same line too ("f\n(" is ambiguous)
        while out[#out] and out[#out]:match("^%s*$") do
          out[#out] = nil
        end
        call = "(" .. call .. ")"
      elseif (out[#out] or ""):match("[%w_]$") then  -- return"x" -> return D(...)
        call = " " .. call
      end
      out[#out + 1] = call
    elseif tok == "TK_NUMBER" and preset.numbers and integer_of(info) then
      out[#out + 1] = sum(integer_of(info))
    else
      out[#out + 1] = info
    end
    if REAL[tok] then
      prev = tok == "TK_OP" and info or tok
    end
  end
  local body = concat(out)
  if not preset.strings then
    return body
  end
  return decoder(name, table_mode and entries or nil) .. body
end

-- ---- the job ----------------------------------------------------------------------------

local source = read(input)
local ok, text = pcall(diet.optimize, DIET, source)
if not ok then
  local message = tostring(text)
  if message:sub(1, #SYNTAX) == SYNTAX then
    message = message:sub(#SYNTAX + 1):gsub("^%[string%]:(%d+): ", "line %1: ")
      :gsub("^%(source%):(%d+): ", "line %1: ")
    fail("obfuscation needs Lua 5.1 syntax: " .. message)
  end
  fail("the obfuscator stopped: " .. message)
end
local result = transform(text)
-- A last check: what LuaJIT compiles from the source it compiles from the output (the limits
-- of Lua 5.1, e.g. 60 upvalues a function, hold).
if loadstring(source) then
  local compiled, err = loadstring(result)
  if not compiled then
    fail("the obfuscated script does not compile: " .. tostring(err):gsub("^%[string .-%]:", "line "))
  end
end
local f = assert(io.open(output, "wb"))
f:write(result)
f:close()
