-- String utilities: gsub, find, rep, byte/char, escapes, long strings
local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end
local function split(s, sep)
  local out = {}
  for piece in string.gmatch(s, "([^" .. sep .. "]+)") do
    out[#out + 1] = piece
  end
  return out
end
local function titleCase(s)
  return (s:gsub("(%a)([%w_']*)", function(a, b) return a:upper() .. b:lower() end))
end

print(trim("   hello world  "))
local parts = split("alpha,beta,,gamma,delta", ",")
print(#parts, table.concat(parts, "|"))
print(titleCase("the QUICK brown fox's tail"))
print(("abc"):rep(3, "-"), ("x"):rep(0), string.rep("ab", 4))
print(string.byte("A"), string.char(72, 105, 0x21), ("\072\105"):len())
print("tab\there", 'quote"inside', "single'inside", "back\\slash", "\065BC")
print("newline\nsecond", "bell\a" == "bell\7", "\98\099d")
local long = [==[
This is a [[nested]] long string with ]] inside
and --[[ a comment-like ]] piece, and "quotes" and 'quotes'
]==]
print(long, #long)
local lvl0 = [[first line
second line]]
print(lvl0:upper(), lvl0:find("second"), lvl0:sub(3, 7))
local s = "--[[ not a comment ]] -- nor this"
print(s, #s)
print(("%d items at %5.1f%%"):format(12, 99.5))
print(string.format("%q", 'he said "hi"\n'))
print(("hello"):reverse(), ("Hello"):lower(), ("MiXeD"):upper())
local count = select(2, ("a.b.c.d"):gsub("%.", "/"))
print(count, ("a.b.c.d"):gsub("%.", "/"))
print(tostring(nil) .. "", tostring(true), tostring(12) .. tostring(0x0C))
local csv = {}
for i = 1, 10 do csv[#csv + 1] = string.format("%d;%s;%x", i, ("v" .. i), i * 17) end
print(table.concat(csv, " "))
