-- A state machine with string keys, varargs forwarding and pcall/error
local Machine = {}
Machine.__index = Machine
local TRANSITIONS = {
  idle = { start = "running", stop = "idle" },
  running = { pause = "paused", stop = "idle", fail = "error" },
  paused = { resume = "running", stop = "idle" },
  error = { reset = "idle" },
}
function Machine.new() return setmetatable({ state = "idle", history = {}, errors = 0 }, Machine) end
function Machine:fire(event, ...)
  local row = TRANSITIONS[self.state]
  local to = row and row[event]
  if not to then
    error({ code = 400, msg = "bad event " .. event .. " in " .. self.state }, 0)
  end
  self.history[#self.history + 1] = self.state .. "->" .. to .. "(" .. table.concat({ ... }, ",") .. ")"
  self.state = to
  return to
end
local m = Machine.new()
local script = { { "start", 1 }, { "pause" }, { "resume", "x", "y" }, { "fail", 0xE }, { "start" }, { "reset" }, { "stop" } }
for i, step in ipairs(script) do
  local ok, res = pcall(m.fire, m, step[1], select(2, unpack and unpack(step) or table.unpack(step)))
  if ok then
    print(i, "ok", res)
  else
    m.errors = m.errors + 1
    print(i, "err", type(res) == "table" and res.code or "?", type(res) == "table" and res.msg or "?")
  end
end
print(#m.history, m.errors)
for i, h in ipairs(m.history) do print(i, h) end
local ok, msg = pcall(error, "plain message", 0)
print(ok, msg)
local ok2, v = pcall(function() return 1 + 1, "two" end)
print(ok2, v)
local results = {}
for _, n in ipairs({ 4, 9, 16, 25, 0x31, 64, 1e2 }) do results[#results + 1] = math.sqrt(n) end
print(table.concat(results, " "))
local grid = {}
for y = 1, 5 do
  local row = {}
  for x = 1, 5 do row[x] = ((x * y) % 3 == 0) and "#" or '.' end
  grid[y] = table.concat(row)
end
print(table.concat(grid, "\n"))
