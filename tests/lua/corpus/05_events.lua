-- An event bus with closures and varargs
local Bus = {}
Bus.__index = Bus
function Bus.new() return setmetatable({ handlers = {}, fired = 0 }, Bus) end
function Bus:on(name, fn)
  local list = self.handlers[name]
  if not list then list = {}; self.handlers[name] = list end
  list[#list + 1] = fn
  local bus = self
  return function()
    for i = #list, 1, -1 do
      if list[i] == fn then table.remove(list, i) end
    end
    return bus
  end
end
function Bus:emit(name, ...)
  local list = self.handlers[name]
  if not list then return 0 end
  self.fired = self.fired + 1
  local n = select("#", ...)
  for i = 1, #list do list[i](n, ...) end
  return #list
end

local bus = Bus.new()
local seen = {}
local off1 = bus:on("hit", function(n, a, b) seen[#seen + 1] = "h1:" .. n .. ":" .. tostring(a) .. ":" .. tostring(b) end)
bus:on("hit", function(n, ...) seen[#seen + 1] = "h2:" .. table.concat({ ... }, ",") end)
bus:on("heal", function(n, amt) seen[#seen + 1] = "heal " .. amt * 2 end)
print(bus:emit("hit", 10, 20), bus:emit("heal", 0x0F), bus:emit("none"))
off1()
print(bus:emit("hit", "x", "y", "z"))
for i, s in ipairs(seen) do print(i, s) end
local function sum(...)
  local t = 0
  for i = 1, select("#", ...) do t = t + (select(i, ...) or 0) end
  return t
end
local function pack(...) return { n = select("#", ...), ... } end
local p = pack(1, nil, 3)
print(sum(1, 2, 3, 4, 5), sum(), p.n, p[1], p[2], p[3])
local function counterFactory(start, step)
  local v = start
  return function() v = v + step; return v end
end
local c1, c2 = counterFactory(0, 1), counterFactory(100, -10)
print(c1(), c1(), c2(), c1(), c2(), c2())
local memo = {}
local function fib(n) if n < 2 then return n end; if memo[n] then return memo[n] end; local r = fib(n - 1) + fib(n - 2); memo[n] = r; return r end
print(fib(30), fib(50), bus.fired)
