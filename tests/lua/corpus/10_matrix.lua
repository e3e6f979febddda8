-- Matrices and string building: nested loops, numeric formatting
local function matrix(n, m, f)
  local t = {}
  for i = 1, n do
    t[i] = {}
    for j = 1, m do t[i][j] = f(i, j) end
  end
  return t
end
local function mul(a, b)
  local n, m, p = #a, #b, #b[1]
  return matrix(n, p, function(i, j)
    local s = 0
    for k = 1, m do s = s + a[i][k] * b[k][j] end
    return s
  end)
end
local function show(t)
  local rows = {}
  for i = 1, #t do
    local cells = {}
    for j = 1, #t[i] do cells[j] = string.format("%6.1f", t[i][j]) end
    rows[i] = table.concat(cells, " ")
  end
  return table.concat(rows, "\n")
end
local A = { { 1, 2, 3 }, { 4, 5, 6 }; { 7, 8, 9 } }
local B = { { 0x1, 0x0, 0x0 }, { 0x0, 0x2, 0x0 }, { 0x0, 0x0, 0x3 } }
local I = matrix(3, 3, function(i, j) return i == j and 1 or 0 end)
print(show(mul(A, B)))
print(show(mul(A, I)))
print(show(mul(B, B)))
local H = matrix(4, 4, function(i, j) return 1 / (i + j - 1) end)
print(show(H))
local trace = 0
for i = 1, 4 do trace = trace + H[i][i] end
print(string.format("trace %.6f", trace))
local lookup = { [1] = "one", [2] = "two", [3] = "three", [10] = "ten", [0x14] = "twenty", [100] = "hundred" }
for _, k in ipairs({ 1, 2, 3, 10, 20, 100, 5 }) do print(k, lookup[k] or "none") end
local words = { "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit" }
local lens = {}
for i, w in ipairs(words) do lens[i] = #w .. ":" .. w:sub(1, 1):upper() .. w:sub(2) end
print(table.concat(lens, ", "))
