-- A stand-in for a Roblox executor, for running the real loader.lua under Lua 5.1:
-- `request` and `game:HttpGet` go over curl, HttpService is lua-cjson, `getgenv` is _G.
-- Environment: L7_LOADER_URL, L7_HWID (sent as the executor's Krnl-Hwid header), L7_KEY.
local cjson = require("cjson")

local function shell_quote(s)
  return "'" .. string.gsub(s, "'", "'\\''") .. "'"
end

local function curl(args)
  local pipe = assert(io.popen("curl -s -w '\\n%{http_code}' " .. args))
  local out = pipe:read("*a")
  pipe:close()
  local body, code = string.match(out, "^(.*)\n(%d+)$")
  return body, tonumber(code)
end

function request(opts)
  local file = os.tmpname()
  local f = assert(io.open(file, "wb"))
  f:write(opts.Body or "")
  f:close()
  local args = "-X " .. opts.Method .. " --data-binary @" .. file
  for name, value in pairs(opts.Headers or {}) do
    args = args .. " -H " .. shell_quote(name .. ": " .. value)
  end
  args = args .. " -H " .. shell_quote("Krnl-Hwid: " .. os.getenv("L7_HWID"))
  local body, code = curl(args .. " " .. shell_quote(opts.Url))
  os.remove(file)
  return {Body = body, StatusCode = code, Success = code == 200}
end

local HttpService = {}
function HttpService:JSONEncode(value) return cjson.encode(value) end
function HttpService:JSONDecode(text) return cjson.decode(text) end

game = {}
function game:GetService(name)
  assert(name == "HttpService", name)
  return HttpService
end
function game:HttpGet(url)
  local body, code = curl(shell_quote(url))
  assert(code == 200, "HttpGet " .. url .. " -> " .. tostring(code))
  return body
end

function getgenv() return _G end
function warn(message) print("WARN " .. message) end

script_key = os.getenv("L7_KEY")
loadstring(game:HttpGet(os.getenv("L7_LOADER_URL")))()
