-- wrk script for GET /healthz (no Redis): built like execute.lua (a request() function that
-- picks a preformatted request) so wrk's own cost is the same for both routes.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local requests = {}

function init(args)
  for i = 1, 64 do
    requests[i] = wrk.format("GET", "/healthz")
  end
end

function request()
  return requests[math.random(#requests)]
end
