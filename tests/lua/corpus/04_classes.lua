-- OOP with metatables: inheritance, __index, __tostring, __eq, __lt, __add, __call
local Vector = {}
Vector.__index = Vector
local function new(x, y) return setmetatable({ x = x or 0, y = y or 0 }, Vector) end
Vector.new = new
function Vector.__add(a, b) return new(a.x + b.x, a.y + b.y) end
function Vector.__sub(a, b) return new(a.x - b.x, a.y - b.y) end
function Vector.__mul(a, k) return new(a.x * k, a.y * k) end
function Vector.__eq(a, b) return a.x == b.x and a.y == b.y end
function Vector.__lt(a, b) return a:len2() < b:len2() end
function Vector.__tostring(v) return "(" .. v.x .. ", " .. v.y .. ")" end
function Vector:len2() return self.x * self.x + self.y * self.y end

local Animal = {}
Animal.__index = Animal
function Animal.new(name, sound, legs)
  return setmetatable({ name = name, sound = sound, legs = legs }, Animal)
end
function Animal:speak() return self.name .. " says " .. self.sound end
local Dog = setmetatable({}, { __index = Animal })
Dog.__index = Dog
function Dog.new(name) local d = Animal.new(name, "woof", 4); return setmetatable(d, Dog) end
function Dog:fetch() return self.name .. " fetches" end

local a, b = new(1, 2), new(3, 4)
print(tostring(a + b), tostring(b - a), tostring(a * 3), a == new(1, 2), a < b)
local d = Dog.new("Rex")
print(d:speak(), d:fetch(), d.legs, getmetatable(d) == Dog)
local cat = Animal.new("Tom", "meow", 0x4)
print(cat:speak(), cat.fetch == nil)
local counter = setmetatable({}, { __call = function(self, n) return n * 2 end,
  __index = function(t, k) return k .. "?" end })
print(counter(21), counter.missing, rawget(counter, "missing"))
local log = {}
local proxy = setmetatable({}, { __newindex = function(t, k, v) log[#log + 1] = k .. "=" .. tostring(v); rawset(t, k, v) end })
proxy.a = 1; proxy.b = "two"; proxy.a = 3
print(table.concat(log, ";"), proxy.a, proxy.b)
local ro = setmetatable({}, { __index = { x = 10, y = 20 }, __len = function() return 99 end })
print(ro.x, ro.y, rawlen and "rawlen" or "norawlen")
local shapes = { new(3, 4), new(1, 1), new(0, 5), new(2, 2) }
table.sort(shapes, function(p, q) return p < q end)
for i, v in ipairs(shapes) do print(i, tostring(v), v:len2()) end
