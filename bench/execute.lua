-- wrk script for POST /api/loader/execute: each request is a random seeded key sent with the
-- HWID it is bound to, so every request is a full KEY_VALID check. Requests are formatted
-- once in init(); request() only picks one, so wrk spends its CPU on sending, not on Lua.
-- Environment: L7_BENCH_KEYS (file of "project_id key_id hwid" lines), L7_BENCH_NONCE (set:
-- each request carries a nonce, so a signing project's answers are signed).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local requests = {}

function init(args)
  local headers = {["Content-Type"] = "application/json"}
  for line in io.lines(os.getenv("L7_BENCH_KEYS")) do
    local project, key, hwid = line:match("^(%S+) (%S+) (%S+)$")
    local body = string.format(
      '{"project_id":"%s","script_key":"%s","hwid":"%s"', project, key, hwid)
    if os.getenv("L7_BENCH_NONCE") then  -- signed answers (bench/run.py --signed)
      body = body .. string.format(',"nonce":"%08x%08x%08x%08x"', math.random(0, 2^31),
        math.random(0, 2^31), math.random(0, 2^31), math.random(0, 2^31))
    end
    body = body .. "}"
    requests[#requests + 1] = wrk.format("POST", os.getenv("L7_BENCH_PATH") or "/api/loader/execute", headers, body)
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

function request()
  return requests[math.random(#requests)]
end
