-- wrk script for POST /api/loader/execute: each request picks a random seeded key and sends
-- it with the HWID it is bound to (so every verdict is a full KEY_VALID check).
-- Environment: L7_BENCH_KEYS (file of "project_id key_id hwid" lines).
local rows = {}

function init(args)
  for line in io.lines(os.getenv("L7_BENCH_KEYS")) do
    local project, key, hwid = line:match("^(%S+) (%S+) (%S+)$")
    rows[#rows + 1] = string.format(
      '{"project_id":"%s","script_key":"%s","hwid":"%s"}', project, key, hwid)
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

function request()
  return wrk.format("POST", "/api/loader/execute",
    {["Content-Type"] = "application/json"}, rows[math.random(#rows)])
end

local non_valid = 0
function response(status, headers, body)
  if status ~= 200 or not body:find('"code":"KEY_VALID"', 1, true) then
    non_valid = non_valid + 1
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'L7JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non2xx":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
