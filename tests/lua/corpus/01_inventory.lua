-- Inventory manager: tables, closures, sorting, string.format
local Inventory = {}
Inventory.__index = Inventory

local ITEMS = {
  { id = 1, name = "Sword", price = 150, weight = 12 },
  { id = 2, name = 'Shield', price = 0x78, weight = 20 },
  { id = 3, name = "Potion", price = 25, weight = 1 };
  { id = 4, name = "Bow", price = 200, weight = 8 },
  { id = 5, name = "Arrow", price = 2, weight = 0 },
  { id = 6, name = "Helmet", price = 95, weight = 7 },
  { id = 7, name = "Boots", price = 60, weight = 4 },
  { id = 8, name = "Ring", price = 1000, weight = 0 },
}

function Inventory.new(owner, capacity)
  local self = setmetatable({}, Inventory)
  self.owner = owner
  self.capacity = capacity or 100
  self.slots = {}
  self.count = 0
  return self
end

function Inventory:add(item, qty)
  qty = qty or 1
  local w = item.weight * qty
  if self:weight() + w > self.capacity then
    return false, "too heavy"
  end
  local slot = self.slots[item.id]
  if slot then
    slot.qty = slot.qty + qty
  else
    self.slots[item.id] = { item = item, qty = qty }
    self.count = self.count + 1
  end
  return true
end

function Inventory:weight()
  local total = 0
  for _, slot in pairs(self.slots) do
    total = total + slot.item.weight * slot.qty
  end
  return total
end

function Inventory:value()
  local total = 0
  for _, slot in pairs(self.slots) do
    total = total + slot.item.price * slot.qty
  end
  return total
end

function Inventory:list()
  local out = {}
  for id, slot in pairs(self.slots) do
    out[#out + 1] = { id = id, name = slot.item.name, qty = slot.qty }
  end
  table.sort(out, function(a, b) return a.id < b.id end)
  return out
end

local inv = Inventory.new("Player1", 0x40)
for i = 1, #ITEMS do
  local ok, why = inv:add(ITEMS[i], (i % 3) + 1)
  print(string.format("%-8s %s %s", ITEMS[i].name, tostring(ok), why or "-"))
end
for _, row in ipairs(inv:list()) do
  print(string.format("%2d %-8s x%d", row.id, row.name, row.qty))
end
print("weight", inv:weight(), "value", inv:value(), "count", inv.count)
print(string.format("%.2f", inv:value() / 3), 1e2, 2.5e-1, 0x10 .. "", 7 .. 8)
