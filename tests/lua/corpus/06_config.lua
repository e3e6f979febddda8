--[[
  A Roblox-style config script: nested tables, defaults merge, serialisation.
  local fake = "this is inside a comment" print("never")
]]
local DEFAULTS = {
  WalkSpeed = 16, JumpPower = 50, Gravity = 196.2, MaxHealth = 100,
  Colors = { Primary = "#FF0000", Secondary = '#00FF00', Accent = "#0000FF" },
  Keybinds = { "W", "A", "S", "D", "Space", "LeftShift"; "E", "Q", "R", "F" },
  Flags = { Fly = false, Noclip = false, Esp = true, AutoFarm = true },
  Limits = { 0x10, 0x20, 0x40, 0x80, 256, 512, 1024 },
}
local USER = {
  WalkSpeed = 32, Colors = { Accent = "#ABCDEF" },
  Flags = { Fly = true }, Keybinds = { "Up", "Left", "Down", "Right" },
}
local function merge(base, over)
  local out = {}
  for k, v in pairs(base) do out[k] = v end
  for k, v in pairs(over) do
    if type(v) == "table" and type(base[k]) == "table" and #v == 0 then
      out[k] = merge(base[k], v)
    else
      out[k] = v
    end
  end
  return out
end
local function sortedKeys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end
local function serialize(v, indent)
  indent = indent or ""
  if type(v) ~= "table" then
    if type(v) == "string" then return string.format("%q", v) end
    return tostring(v)
  end
  local lines = { "{" }
  for _, k in ipairs(sortedKeys(v)) do
    lines[#lines + 1] = indent .. "  [" .. serialize(k) .. "] = " .. serialize(v[k], indent .. "  ") .. ","
  end
  lines[#lines + 1] = indent .. "}"
  return table.concat(lines, "\n")
end
local cfg = merge(DEFAULTS, USER)
print(serialize(cfg))
print(cfg.WalkSpeed * 2, cfg.Gravity / 2, #cfg.Keybinds, cfg.Limits[7] - cfg.Limits[1])
-- print("commented out") ; local x = 1 --[[ inline ]] print("still a comment")
print("done" --[[ a comment inside a call ]], 1 --[==[ another ]==] + 1)
