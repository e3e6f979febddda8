-- A priority queue (binary heap) and a task scheduler
local Heap = {}
Heap.__index = Heap
function Heap.new(cmp) return setmetatable({ items = {}, size = 0, cmp = cmp or function(a, b) return a < b end }, Heap) end
function Heap:push(v)
  self.size = self.size + 1
  local items, i = self.items, self.size
  items[i] = v
  while i > 1 do
    local parent = math.floor(i / 2)
    if self.cmp(items[i], items[parent]) then
      items[i], items[parent] = items[parent], items[i]
      i = parent
    else
      break
    end
  end
end
function Heap:pop()
  if self.size == 0 then return nil end
  local items = self.items
  local top = items[1]
  items[1] = items[self.size]
  items[self.size] = nil
  self.size = self.size - 1
  local i = 1
  while true do
    local l, r, best = 2 * i, 2 * i + 1, i
    if l <= self.size and self.cmp(items[l], items[best]) then best = l end
    if r <= self.size and self.cmp(items[r], items[best]) then best = r end
    if best == i then break end
    items[i], items[best] = items[best], items[i]
    i = best
  end
  return top
end
local h = Heap.new()
for _, v in ipairs({ 42, 7, 19, 0x3, 88, 1, 56, 23, 11, 0x64, 5, 64 }) do h:push(v) end
local out = {}
while h.size > 0 do out[#out + 1] = h:pop() end
print(table.concat(out, " "))
local tasks = Heap.new(function(a, b) if a.at == b.at then return a.id < b.id end return a.at < b.at end)
local names = { "spawn", "tick", 'save', "load", "render", "input", "net", "gc" }
for i, name in ipairs(names) do tasks:push({ id = i, name = name, at = (i * 37) % 11 }) end
while tasks.size > 0 do
  local t = tasks:pop()
  print(string.format("t=%02d #%d %s", t.at, t.id, t.name))
end
local wait = { 0.5, 1, 2.5, 0x2, 1e0, 3 }
local total = 0
for i = 1, #wait do total = total + wait[i] end
print("total wait", total, total / #wait)
