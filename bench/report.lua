-- Shared by both wrk scripts: one machine-readable summary line. "quantiles" is the latency
-- (us) at a grid of percentiles ("grid"), so bench/run.py can pool the rounds' latencies.
local grid = {}
for p = 1, 89 do grid[#grid + 1] = p end
for i = 0, 99 do grid[#grid + 1] = 90 + i / 10 end
for i = 1, 9 do grid[#grid + 1] = 99.9 + i / 100 end

function done(summary, latency, requests)
  local e = summary.errors
  local q = {}
  for i, p in ipairs(grid) do q[i] = string.format("%d", latency:percentile(p)) end
  io.write(string.format(
    'L7JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"min_us":%d,"max_us":%d,"non2xx":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"grid":[%s],"quantiles":[%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.min, latency.max,
    e.status, e.connect, e.read, e.write, e.timeout,
    table.concat(grid, ","), table.concat(q, ",")))
end
