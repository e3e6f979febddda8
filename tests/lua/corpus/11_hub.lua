-- A Roblox-hub-shaped script (no Roblox APIs): UI definitions, callbacks, tabs
local Hub = { Name = "Leaf Hub", Version = "2.4.1", Tabs = {}, Toggles = {}, Log = {} }
local function log(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
  Hub.Log[#Hub.Log + 1] = table.concat(parts, " ")
end
local function Tab(name, icon)
  local tab = { Name = name, Icon = icon or "rbxassetid://0", Elements = {} }
  Hub.Tabs[#Hub.Tabs + 1] = tab
  function tab:Toggle(id, default, cb)
    Hub.Toggles[id] = default
    self.Elements[#self.Elements + 1] = { kind = "toggle", id = id }
    if cb then cb(default) end
    return function(v) Hub.Toggles[id] = v; if cb then cb(v) end end
  end
  function tab:Slider(id, min, max, default)
    self.Elements[#self.Elements + 1] = { kind = "slider", id = id, min = min, max = max, value = default }
    return default
  end
  function tab:Button(id, cb)
    self.Elements[#self.Elements + 1] = { kind = "button", id = id, cb = cb }
  end
  return tab
end
local main = Tab("Main", "rbxassetid://7733960981")
local setFly = main:Toggle("Fly", false, function(v) log("fly", v) end)
local setEsp = main:Toggle('ESP', true, function(v) log("esp", v) end)
main:Slider("WalkSpeed", 16, 0x64, 32)
main:Slider("JumpPower", 50, 500, 1e2)
main:Button("Rejoin", function() log("rejoin") end)
local misc = Tab("Misc")
misc:Toggle("AntiAFK", true, function(v) log("afk", v) end)
misc:Slider("FOV", 70, 120, 90)
misc:Button("Copy Discord", function() log("copied", "discord.gg/leaf") end)
setFly(true); setEsp(false); setFly(false)
for _, tab in ipairs(Hub.Tabs) do
  for _, el in ipairs(tab.Elements) do
    if el.kind == "button" then el.cb() end
  end
end
print(Hub.Name .. " v" .. Hub.Version)
for i, tab in ipairs(Hub.Tabs) do
  print(i, tab.Name, tab.Icon, #tab.Elements)
  for j, el in ipairs(tab.Elements) do
    print("", j, el.kind, el.id, el.min or "-", el.max or "-", el.value or "-")
  end
end
local ids = {}
for id in pairs(Hub.Toggles) do ids[#ids + 1] = id end
table.sort(ids)
for _, id in ipairs(ids) do print(id, Hub.Toggles[id]) end
for i, line in ipairs(Hub.Log) do print(i, line) end
local palette = { { 255, 0, 0 }, { 0, 255, 0 }, { 0, 0, 255 }, { 0xFF, 0xAA, 0x00 }, { 18, 52, 86 } }
for _, c in ipairs(palette) do print(string.format("#%02X%02X%02X", c[1], c[2], c[3])) end
