-- Numeric edge cases: hex, exponents, floats, concatenation after numbers
local values = { 0, 1, -1, 10, 0xA, 0XFF, 0x7fffffff, 1e1, 1E2, 2.5, .5, 5., 3e-2, 1.5e+3,
  255, 65535, 123456789, 2147483647, 4294967296, 1e15, 0.1, 1/3, -0 }
for i, v in ipairs(values) do
  print(i, v, type(v), v == math.floor(v), string.format("%.3f", v))
end
print(10 == 0xA, 0x10 + 16, 1e1 == 10, 2^10, 2^0.5 > 1.41)
print(1 .. 2, 1.5 .. "", 10 .. 20, 0xF .. 0xF)
print(7 % 3, -7 % 3, 7 % -3, 7.5 % 2)
print(math.max(3, 9, 1), math.min(3, 9, 1), math.abs(-12), math.floor(-3.5), math.ceil(-3.5))
print(tostring(1e100), tostring(-1e-5), tostring(123.456))
print(math.huge, -math.huge, math.huge > 1e308)
print(string.format("%d %5d %-5d| %05d %x %X %o", 42, 42, 42, 42, 255, 255, 8))
print(string.format("%e %g %g %g", 12345.678, 0.0001, 100000, 1e20))
print(tonumber("0x1F"), tonumber("  12  "), tonumber("1e3"), tonumber("z", 36), tonumber("11", 2))
print(tonumber("abc"), tonumber(""), tonumber("5") + 1)
local sum = 0
for i = 1, 100 do sum = sum + i end
print(sum, sum / 100, sum % 7)
for i = 10, 1, -3 do print("down", i) end
local t = {}
for i = 0x01, 0x08 do t[i] = i * i end
print(#t, t[8], table.concat(t, ","))
local big = 0
for _, v in ipairs({ 100, 200, 300, 400, 500 }) do big = big + v end
print(big, big * 1e3, big / 7)
