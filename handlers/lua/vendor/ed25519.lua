-- leaf7: Ed25519 signature verification (RFC 8032), SHA-512 and SHA-256 in pure Lua.
--
-- One chunk that evaluates to a module table; it runs unchanged in Lua 5.1 (with `bit32`
-- from Debian's lua-bit32) and in Luau (Roblox executors; `bit32` is built in). It uses
-- only the common subset of both: no goto, no `//`, no bitwise operators, no string.pack,
-- no load/loadstring.
--
--   local ed25519 = <this chunk>
--   ed25519.verify(public_key, message, signature) --> true | false (never errors)
--   ed25519.sha512(s), ed25519.sha256(s)             --> raw digest bytes
--   ed25519.tohex(s), ed25519.fromhex(h)             --> hex helpers (fromhex: nil if bad)
--
-- Origin: the field arithmetic (12 float limbs of 2^255 - 19), the Edwards point formulas
-- and SHA-512/SHA-256 are from ccryptolib by Miguel Oliveira (migeyel), MIT licence, see
-- LICENSE-ccryptolib.txt: https://github.com/migeyel/ccryptolib at commit
-- 58cff5be789e3244bdcd23e7e7d2a17679fdc931 (ccryptolib/internal/fp.lua,
-- internal/edwards25519.lua, internal/sha512.lua, sha256.lua).
-- Changes made here: merged into one file; `packing` (which generates code with `load`)
-- replaced by plain string.byte/string.char; SHA-256's round constants written out instead
-- of computed with floating-point cube roots, and its words reduced mod 2^32 before every
-- bit32 call; Ch and Maj with 3 bit32 calls instead of 4/5; fp.decode reads bytes directly;
-- point doubling skips T when no addition follows; no signing, no base-point precomputation
-- table (a verifier needs [S]B once: a 32-entry table of odd multiples of B is built at
-- load, ~1 ms); point decoding made strict (below); the scalar reduction mod L is
-- TweetNaCl's modL and the double-scalar multiplication is ref10's sliding-window
-- ge_double_scalarmult_vartime (both public domain), rewritten in Lua.
--
-- Verification rule (strict, RFC 8032 section 5.1.7 plus the usual hardening):
--   * the key is 32 bytes and the signature 64 bytes, both strings; otherwise false;
--   * S (signature bytes 33..64, little-endian) must be < L, the group order;
--   * the key A must decode: y < p (canonical), x recoverable (on the curve), and not the
--     sign bit set with x = 0; A must not be the identity, and [L]A must be the identity:
--     A has order exactly L, which rejects the 8 small-order points and every key with a
--     small-order component (a key that passes is remembered, so this costs once per key);
--   * R (signature bytes 1..32) must not be the identity encoding, and must equal,
--     byte for byte, the canonical encoding of [S]B - [k]A with k = SHA-512(R || A || M)
--     mod L. So an R that does not decode, is non-canonical or has a small-order component
--     is rejected, and the cofactorless and cofactored equations agree for every key
--     accepted here.
local M = {}

local bit32 = bit32
if bit32 == nil then
    bit32 = require("bit32")
end

local byte, char, rep = string.byte, string.char, string.rep
local floor = math.floor
local unpack = unpack or table.unpack
local concat = table.concat

-- Big-endian bytes of a 32-bit word.
local function be32(w)
    return char(floor(w / 16777216) % 256, floor(w / 65536) % 256, floor(w / 256) % 256, w % 256)
end

-- Big-endian bytes of a length in bits (< 2^53), on `n` bytes.
local function belen(bits, n)
    local out = {}
    for i = n, 1, -1 do
        out[i] = bits % 256
        bits = floor(bits / 256)
    end
    return char(unpack(out))
end

-- Reads the 32-bit big-endian words of `data` from `i` into w[1..count].
local function words(w, data, i, count)
    for j = 1, count do
        local a, b, c, d = byte(data, i, i + 3)
        w[j] = ((a * 256 + b) * 256 + c) * 256 + d
        i = i + 4
    end
end

-------------------------------------------------------------------------------
-- SHA-512 (ccryptolib internal/sha512.lua): 64-bit words as pairs (high, low).
-------------------------------------------------------------------------------
do
    local shl = bit32.lshift
    local shr = bit32.rshift
    local bxor = bit32.bxor
    local band = bit32.band

    local function carry64(a1, a0)
        local r0 = a0 % 2 ^ 32
        a1 = a1 + (a0 - r0) / 2 ^ 32
        return a1 % 2 ^ 32, r0
    end

    local K = {
        0x428a2f98, 0xd728ae22, 0x71374491, 0x23ef65cd, 0xb5c0fbcf, 0xec4d3b2f,
        0xe9b5dba5, 0x8189dbbc, 0x3956c25b, 0xf348b538, 0x59f111f1, 0xb605d019,
        0x923f82a4, 0xaf194f9b, 0xab1c5ed5, 0xda6d8118, 0xd807aa98, 0xa3030242,
        0x12835b01, 0x45706fbe, 0x243185be, 0x4ee4b28c, 0x550c7dc3, 0xd5ffb4e2,
        0x72be5d74, 0xf27b896f, 0x80deb1fe, 0x3b1696b1, 0x9bdc06a7, 0x25c71235,
        0xc19bf174, 0xcf692694, 0xe49b69c1, 0x9ef14ad2, 0xefbe4786, 0x384f25e3,
        0x0fc19dc6, 0x8b8cd5b5, 0x240ca1cc, 0x77ac9c65, 0x2de92c6f, 0x592b0275,
        0x4a7484aa, 0x6ea6e483, 0x5cb0a9dc, 0xbd41fbd4, 0x76f988da, 0x831153b5,
        0x983e5152, 0xee66dfab, 0xa831c66d, 0x2db43210, 0xb00327c8, 0x98fb213f,
        0xbf597fc7, 0xbeef0ee4, 0xc6e00bf3, 0x3da88fc2, 0xd5a79147, 0x930aa725,
        0x06ca6351, 0xe003826f, 0x14292967, 0x0a0e6e70, 0x27b70a85, 0x46d22ffc,
        0x2e1b2138, 0x5c26c926, 0x4d2c6dfc, 0x5ac42aed, 0x53380d13, 0x9d95b3df,
        0x650a7354, 0x8baf63de, 0x766a0abb, 0x3c77b2a8, 0x81c2c92e, 0x47edaee6,
        0x92722c85, 0x1482353b, 0xa2bfe8a1, 0x4cf10364, 0xa81a664b, 0xbc423001,
        0xc24b8b70, 0xd0f89791, 0xc76c51a3, 0x0654be30, 0xd192e819, 0xd6ef5218,
        0xd6990624, 0x5565a910, 0xf40e3585, 0x5771202a, 0x106aa070, 0x32bbd1b8,
        0x19a4c116, 0xb8d2d0c8, 0x1e376c08, 0x5141ab53, 0x2748774c, 0xdf8eeb99,
        0x34b0bcb5, 0xe19b48a8, 0x391c0cb3, 0xc5c95a63, 0x4ed8aa4a, 0xe3418acb,
        0x5b9cca4f, 0x7763e373, 0x682e6ff3, 0xd6b2b8a3, 0x748f82ee, 0x5defb2fc,
        0x78a5636f, 0x43172f60, 0x84c87814, 0xa1f0ab72, 0x8cc70208, 0x1a6439ec,
        0x90befffa, 0x23631e28, 0xa4506ceb, 0xde82bde9, 0xbef9a3f7, 0xb2c67915,
        0xc67178f2, 0xe372532b, 0xca273ece, 0xea26619c, 0xd186b8c7, 0x21c0c207,
        0xeada7dd6, 0xcde0eb1e, 0xf57d4f7f, 0xee6ed178, 0x06f067aa, 0x72176fba,
        0x0a637dc5, 0xa2c898a6, 0x113f9804, 0xbef90dae, 0x1b710b35, 0x131c471b,
        0x28db77f5, 0x23047d84, 0x32caab7b, 0x40c72493, 0x3c9ebe0a, 0x15c9bebc,
        0x431d67c4, 0x9c100d4c, 0x4cc5d4be, 0xcb3e42b6, 0x597f299c, 0xfc657e2a,
        0x5fcb6fab, 0x3ad6faec, 0x6c44198c, 0x4a475817,
    }

    --- Hashes data bytes using SHA512.
    --- @param data string The input data.
    --- @return string hash The 64-byte hash value.
    local function digest(data)
        -- Pad input.
        local bitlen = #data * 8
        local padlen = -(#data + 17) % 128
        data = data .. "\128" .. rep("\0", padlen) .. belen(bitlen, 16)

        -- Initialize state.
        local h01, h00 = 0x6a09e667, 0xf3bcc908
        local h11, h10 = 0xbb67ae85, 0x84caa73b
        local h21, h20 = 0x3c6ef372, 0xfe94f82b
        local h31, h30 = 0xa54ff53a, 0x5f1d36f1
        local h41, h40 = 0x510e527f, 0xade682d1
        local h51, h50 = 0x9b05688c, 0x2b3e6c1f
        local h61, h60 = 0x1f83d9ab, 0xfb41bd6b
        local h71, h70 = 0x5be0cd19, 0x137e2179

        -- Digest.
        local w = {}
        for i = 1, #data, 128 do
            words(w, data, i, 32)

            -- Message schedule.
            for j = 33, 160, 2 do
                local wf1, wf0 = w[j - 30], w[j - 29]
                local t1 = shr(wf1, 1) + shl(wf0, 31)
                local t0 = shr(wf0, 1) + shl(wf1, 31)
                local u1 = shr(wf1, 8) + shl(wf0, 24)
                local u0 = shr(wf0, 8) + shl(wf1, 24)
                local v1 = shr(wf1, 7)
                local v0 = shr(wf0, 7) + shl(wf1, 25)

                local w21, w20 = w[j - 4], w[j - 3]
                local w1 = shr(w21, 19) + shl(w20, 13)
                local w0 = shr(w20, 19) + shl(w21, 13)
                local x0 = shr(w21, 29) + shl(w20, 3)
                local x1 = shr(w20, 29) + shl(w21, 3)
                local y1 = shr(w21, 6)
                local y0 = shr(w20, 6) + shl(w21, 26)

                local r1, r0 =
                    w[j - 32] + bxor(t1, u1, v1) + w[j - 14] + bxor(w1, x1, y1),
                    w[j - 31] + bxor(t0, u0, v0) + w[j - 13] + bxor(w0, x0, y0)

                w[j], w[j + 1] = carry64(r1, r0)
            end

            -- Block function.
            local a1, a0 = h01, h00
            local b1, b0 = h11, h10
            local c1, c0 = h21, h20
            local d1, d0 = h31, h30
            local e1, e0 = h41, h40
            local f1, f0 = h51, h50
            local g1, g0 = h61, h60
            local h1, h0 = h71, h70
            for j = 1, 160, 2 do
                local t1 = shr(e1, 14) + shl(e0, 18)
                local t0 = shr(e0, 14) + shl(e1, 18)
                local u1 = shr(e1, 18) + shl(e0, 14)
                local u0 = shr(e0, 18) + shl(e1, 14)
                local v0 = shr(e1, 9) + shl(e0, 23)
                local v1 = shr(e0, 9) + shl(e1, 23)
                local s11 = bxor(t1, u1, v1)
                local s10 = bxor(t0, u0, v0)

                local ch1 = bxor(g1, band(e1, bxor(f1, g1)))
                local ch0 = bxor(g0, band(e0, bxor(f0, g0)))

                local temp11 = h1 + s11 + ch1 + K[j] + w[j]
                local temp10 = h0 + s10 + ch0 + K[j + 1] + w[j + 1]

                local w1 = shr(a1, 28) + shl(a0, 4)
                local w0 = shr(a0, 28) + shl(a1, 4)
                local x0 = shr(a1, 2) + shl(a0, 30)
                local x1 = shr(a0, 2) + shl(a1, 30)
                local y0 = shr(a1, 7) + shl(a0, 25)
                local y1 = shr(a0, 7) + shl(a1, 25)
                local s01 = bxor(w1, x1, y1)
                local s00 = bxor(w0, x0, y0)

                local maj1 = band(a1, b1) + band(c1, bxor(a1, b1))
                local maj0 = band(a0, b0) + band(c0, bxor(a0, b0))

                local temp21 = s01 + maj1
                local temp20 = s00 + maj0

                h1 = g1  h0 = g0
                g1 = f1  g0 = f0
                f1 = e1  f0 = e0
                e1, e0 = carry64(d1 + temp11, d0 + temp10)
                d1 = c1  d0 = c0
                c1 = b1  c0 = b0
                b1 = a1  b0 = a0
                a1, a0 = carry64(temp11 + temp21, temp10 + temp20)
            end

            h01, h00 = carry64(h01 + a1, h00 + a0)
            h11, h10 = carry64(h11 + b1, h10 + b0)
            h21, h20 = carry64(h21 + c1, h20 + c0)
            h31, h30 = carry64(h31 + d1, h30 + d0)
            h41, h40 = carry64(h41 + e1, h40 + e0)
            h51, h50 = carry64(h51 + f1, h50 + f0)
            h61, h60 = carry64(h61 + g1, h60 + g0)
            h71, h70 = carry64(h71 + h1, h70 + h0)
        end

        return concat({
            be32(h01), be32(h00), be32(h11), be32(h10), be32(h21), be32(h20), be32(h31), be32(h30),
            be32(h41), be32(h40), be32(h51), be32(h50), be32(h61), be32(h60), be32(h71), be32(h70),
        })
    end

    M.sha512 = digest
end

-------------------------------------------------------------------------------
-- SHA-256 (ccryptolib sha256.lua).
-------------------------------------------------------------------------------
do
    local rol = bit32.lrotate
    local shr = bit32.rshift
    local bxor = bit32.bxor
    local band = bit32.band

    local K = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
        0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
        0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
        0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
        0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    }

    local function compress(h, w)
        local h0, h1, h2, h3, h4, h5, h6, h7 = unpack(h)

        -- Message schedule.
        for j = 17, 64 do
            local wf = w[j - 15]
            local w2 = w[j - 2]
            local s0 = bxor(rol(wf, 25), rol(wf, 14), shr(wf, 3))
            local s1 = bxor(rol(w2, 15), rol(w2, 13), shr(w2, 10))
            w[j] = (w[j - 16] + s0 + w[j - 7] + s1) % 2 ^ 32
        end

        -- Block.
        local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
        for j = 1, 64 do
            local s1 = bxor(rol(e, 26), rol(e, 21), rol(e, 7))
            local ch = bxor(g, band(e, bxor(f, g)))
            local temp1 = h + s1 + ch + K[j] + w[j]
            local s0 = bxor(rol(a, 30), rol(a, 19), rol(a, 10))
            local maj = band(a, b) + band(c, bxor(a, b))
            local temp2 = s0 + maj

            h = g
            g = f
            f = e
            e = (d + temp1) % 2 ^ 32
            d = c
            c = b
            b = a
            a = (temp1 + temp2) % 2 ^ 32
        end

        return {
            (h0 + a) % 2 ^ 32,
            (h1 + b) % 2 ^ 32,
            (h2 + c) % 2 ^ 32,
            (h3 + d) % 2 ^ 32,
            (h4 + e) % 2 ^ 32,
            (h5 + f) % 2 ^ 32,
            (h6 + g) % 2 ^ 32,
            (h7 + h) % 2 ^ 32,
        }
    end

    local H0 = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    }

    --- Hashes data using SHA256.
    --- @param data string Input bytes.
    --- @return string hash The 32-byte hash value.
    local function digest(data)
        -- Pad input.
        local bitlen = #data * 8
        local padlen = -(#data + 9) % 64
        data = data .. "\128" .. rep("\0", padlen) .. belen(bitlen, 8)

        -- Digest.
        local h = H0
        local w = {}
        for i = 1, #data, 64 do
            words(w, data, i, 16)
            h = compress(h, w)
        end

        local out = {}
        for i = 1, 8 do
            out[i] = be32(h[i])
        end
        return concat(out)
    end

    M.sha256 = digest
end

-------------------------------------------------------------------------------
-- Arithmetic modulo p = 2^255 - 19 (ccryptolib internal/fp.lua). An element is 12
-- doubles; limb i holds a multiple of 2^ceil(21.25 i), so products stay exact.
-------------------------------------------------------------------------------
local fp
do

    --- @class FpR2: Fq An Fp element with limbs inside twice the standard range.

    --- @class FpR1: FpR2 An Fp element with limbs inside the standard range. See
    --- the Curve25519 polynomial representation for more info around this.

    --- The modular square root of -1.
    --- @type FpR1
    local I = {
        958640 * 2 ^ 0,
        826664 * 2 ^ 22,
        1613251 * 2 ^ 43,
        1041528 * 2 ^ 64,
        13673 * 2 ^ 85,
        387171 * 2 ^ 107,
        1824679 * 2 ^ 128,
        313839 * 2 ^ 149,
        709440 * 2 ^ 170,
        122635 * 2 ^ 192,
        262782 * 2 ^ 213,
        712905 * 2 ^ 234,
    }

    --- Converts a Lua number to an element.
    --- @param n number A number n in [0..2²²).
    --- @return FpR1 out The number as an element.
    local function num(n)
        return {n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
    end

    --- Negates an element.
    --- @param a FpR1
    --- @return FpR1 out -a.
    local function neg(a)
        local a00, a01, a02, a03, a04, a05, a06, a07, a08, a09, a10, a11 = unpack(a)
        return {
            -a00,
            -a01,
            -a02,
            -a03,
            -a04,
            -a05,
            -a06,
            -a07,
            -a08,
            -a09,
            -a10,
            -a11,
        }
    end

    --- Adds two elements.
    --- @param a FpR1
    --- @param b FpR1
    --- @return FpR2 out a + b.
    local function add(a, b)
        local a00, a01, a02, a03, a04, a05, a06, a07, a08, a09, a10, a11 = unpack(a)
        local b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, b10, b11 = unpack(b)
        return {
            a00 + b00,
            a01 + b01,
            a02 + b02,
            a03 + b03,
            a04 + b04,
            a05 + b05,
            a06 + b06,
            a07 + b07,
            a08 + b08,
            a09 + b09,
            a10 + b10,
            a11 + b11,
        }
    end

    --- Subtracts an element from another.
    --- @param a FpR1
    --- @param b FpR1
    --- @return FpR2 out a - b.
    local function sub(a, b)
        local a00, a01, a02, a03, a04, a05, a06, a07, a08, a09, a10, a11 = unpack(a)
        local b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, b10, b11 = unpack(b)
        return {
            a00 - b00,
            a01 - b01,
            a02 - b02,
            a03 - b03,
            a04 - b04,
            a05 - b05,
            a06 - b06,
            a07 - b07,
            a08 - b08,
            a09 - b09,
            a10 - b10,
            a11 - b11,
        }
    end

    --- Carries an element. Also performs a small reduction modulo p.
    --- @param a FpR2 The element to carry.
    --- @return FpR1 out The same element as a but in a tighter range.
    local function carry(a)
        local a00, a01, a02, a03, a04, a05, a06, a07, a08, a09, a10, a11 = unpack(a)
        local c00, c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11

        c11 = a11 + 3 * 2 ^ 306 - 3 * 2 ^ 306  a00 = a00 + 19 / 2 ^ 255 * c11

        c00 = a00 + 3 * 2 ^ 73  - 3 * 2 ^ 73   a01 = a01 + c00
        c01 = a01 + 3 * 2 ^ 94  - 3 * 2 ^ 94   a02 = a02 + c01
        c02 = a02 + 3 * 2 ^ 115 - 3 * 2 ^ 115  a03 = a03 + c02
        c03 = a03 + 3 * 2 ^ 136 - 3 * 2 ^ 136  a04 = a04 + c03
        c04 = a04 + 3 * 2 ^ 158 - 3 * 2 ^ 158  a05 = a05 + c04
        c05 = a05 + 3 * 2 ^ 179 - 3 * 2 ^ 179  a06 = a06 + c05
        c06 = a06 + 3 * 2 ^ 200 - 3 * 2 ^ 200  a07 = a07 + c06
        c07 = a07 + 3 * 2 ^ 221 - 3 * 2 ^ 221  a08 = a08 + c07
        c08 = a08 + 3 * 2 ^ 243 - 3 * 2 ^ 243  a09 = a09 + c08
        c09 = a09 + 3 * 2 ^ 264 - 3 * 2 ^ 264  a10 = a10 + c09
        c10 = a10 + 3 * 2 ^ 285 - 3 * 2 ^ 285  a11 = a11 - c11 + c10

        c11 = a11 + 3 * 2 ^ 306 - 3 * 2 ^ 306

        return {
            a00 - c00 + 19 / 2 ^ 255 * c11,
            a01 - c01,
            a02 - c02,
            a03 - c03,
            a04 - c04,
            a05 - c05,
            a06 - c06,
            a07 - c07,
            a08 - c08,
            a09 - c09,
            a10 - c10,
            a11 - c11,
        }
    end

    --- Returns the canoncal representative of a modp number.
    ---
    --- Some elements can be represented by two different arrays of floats. This
    --- returns the canonical element of the represented equivalence class. We
    --- define an element as canonical if it's the smallest nonnegative number in
    --- its class.
    ---
    --- @param a FpR2
    --- @return FpR1 out A canonical element a' ≡ a (mod p).
    local function canonicalize(a)
        local a00, a01, a02, a03, a04, a05, a06, a07, a08, a09, a10, a11 = unpack(a)
        local c00, c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11

        -- Perform an euclidean reduction.
        -- TODO Range check.
        c00 = a00 % 2 ^ 22   a01 = a00 - c00 + a01
        c01 = a01 % 2 ^ 43   a02 = a01 - c01 + a02
        c02 = a02 % 2 ^ 64   a03 = a02 - c02 + a03
        c03 = a03 % 2 ^ 85   a04 = a03 - c03 + a04
        c04 = a04 % 2 ^ 107  a05 = a04 - c04 + a05
        c05 = a05 % 2 ^ 128  a06 = a05 - c05 + a06
        c06 = a06 % 2 ^ 149  a07 = a06 - c06 + a07
        c07 = a07 % 2 ^ 170  a08 = a07 - c07 + a08
        c08 = a08 % 2 ^ 192  a09 = a08 - c08 + a09
        c09 = a09 % 2 ^ 213  a10 = a09 - c09 + a10
        c10 = a10 % 2 ^ 234  a11 = a10 - c10 + a11
        c11 = a11 % 2 ^ 255  c00 = c00 + 19 / 2 ^ 255 * (a11 - c11)

        -- Canonicalize.
        if      c11 / 2 ^ 234 == 2 ^ 21 - 1
            and c10 / 2 ^ 213 == 2 ^ 21 - 1
            and c09 / 2 ^ 192 == 2 ^ 21 - 1
            and c08 / 2 ^ 170 == 2 ^ 22 - 1
            and c07 / 2 ^ 149 == 2 ^ 21 - 1
            and c06 / 2 ^ 128 == 2 ^ 21 - 1
            and c05 / 2 ^ 107 == 2 ^ 21 - 1
            and c04 / 2 ^ 85  == 2 ^ 22 - 1
            and c03 / 2 ^ 64  == 2 ^ 21 - 1
            and c02 / 2 ^ 43  == 2 ^ 21 - 1
            and c01 / 2 ^ 22  == 2 ^ 21 - 1
            and c00 >= 2 ^ 22 - 19
        then
            return {19 - 2 ^ 22 + c00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
        else
            return {c00, c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11}
        end
    end

    --- Returns whether two elements are the same.
    --- @param a FpR1
    --- @param b FpR1
    --- @return boolean eq Whether a ≡ b (mod p).
    local function eq(a, b)
        local c = canonicalize(sub(a, b))
        for i = 1, 12 do if c[i] ~= 0 then return false end end
        return true
    end

    --- Multiplies two elements.
    --- @param a FpR2
    --- @param b FpR2
    --- @return FpR1 c An element such that c ≡ a × b (mod p).
    local function mul(a, b)
        local a00, a01, a02, a03, a04, a05, a06, a07, a08, a09, a10, a11 = unpack(a)
        local b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, b10, b11 = unpack(b)
        local c00, c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11

        -- Multiply high half into c00..c11.
        c00 = a11 * b01
            + a10 * b02
            + a09 * b03
            + a08 * b04
            + a07 * b05
            + a06 * b06
            + a05 * b07
            + a04 * b08
            + a03 * b09
            + a02 * b10
            + a01 * b11
        c01 = a11 * b02
            + a10 * b03
            + a09 * b04
            + a08 * b05
            + a07 * b06
            + a06 * b07
            + a05 * b08
            + a04 * b09
            + a03 * b10
            + a02 * b11
        c02 = a11 * b03
            + a10 * b04
            + a09 * b05
            + a08 * b06
            + a07 * b07
            + a06 * b08
            + a05 * b09
            + a04 * b10
            + a03 * b11
        c03 = a11 * b04
            + a10 * b05
            + a09 * b06
            + a08 * b07
            + a07 * b08
            + a06 * b09
            + a05 * b10
            + a04 * b11
        c04 = a11 * b05
            + a10 * b06
            + a09 * b07
            + a08 * b08
            + a07 * b09
            + a06 * b10
            + a05 * b11
        c05 = a11 * b06
            + a10 * b07
            + a09 * b08
            + a08 * b09
            + a07 * b10
            + a06 * b11
        c06 = a11 * b07
            + a10 * b08
            + a09 * b09
            + a08 * b10
            + a07 * b11
        c07 = a11 * b08
            + a10 * b09
            + a09 * b10
            + a08 * b11
        c08 = a11 * b09
            + a10 * b10
            + a09 * b11
        c09 = a11 * b10
            + a10 * b11
        c10 = a11 * b11

        -- Multiply low half with reduction into c00..c11.
        c00 = c00 * (19 / 2 ^ 255)
            + a00 * b00
        c01 = c01 * (19 / 2 ^ 255)
            + a01 * b00
            + a00 * b01
        c02 = c02 * (19 / 2 ^ 255)
            + a02 * b00
            + a01 * b01
            + a00 * b02
        c03 = c03 * (19 / 2 ^ 255)
            + a03 * b00
            + a02 * b01
            + a01 * b02
            + a00 * b03
        c04 = c04 * (19 / 2 ^ 255)
            + a04 * b00
            + a03 * b01
            + a02 * b02
            + a01 * b03
            + a00 * b04
        c05 = c05 * (19 / 2 ^ 255)
            + a05 * b00
            + a04 * b01
            + a03 * b02
            + a02 * b03
            + a01 * b04
            + a00 * b05
        c06 = c06 * (19 / 2 ^ 255)
            + a06 * b00
            + a05 * b01
            + a04 * b02
            + a03 * b03
            + a02 * b04
            + a01 * b05
            + a00 * b06
        c07 = c07 * (19 / 2 ^ 255)
            + a07 * b00
            + a06 * b01
            + a05 * b02
            + a04 * b03
            + a03 * b04
            + a02 * b05
            + a01 * b06
            + a00 * b07
        c08 = c08 * (19 / 2 ^ 255)
            + a08 * b00
            + a07 * b01
            + a06 * b02
            + a05 * b03
            + a04 * b04
            + a03 * b05
            + a02 * b06
            + a01 * b07
            + a00 * b08
        c09 = c09 * (19 / 2 ^ 255)
            + a09 * b00
            + a08 * b01
            + a07 * b02
            + a06 * b03
            + a05 * b04
            + a04 * b05
            + a03 * b06
            + a02 * b07
            + a01 * b08
            + a00 * b09
        c10 = c10 * (19 / 2 ^ 255)
            + a10 * b00
            + a09 * b01
            + a08 * b02
            + a07 * b03
            + a06 * b04
            + a05 * b05
            + a04 * b06
            + a03 * b07
            + a02 * b08
            + a01 * b09
            + a00 * b10
        c11 = a11 * b00
            + a10 * b01
            + a09 * b02
            + a08 * b03
            + a07 * b04
            + a06 * b05
            + a05 * b06
            + a04 * b07
            + a03 * b08
            + a02 * b09
            + a01 * b10
            + a00 * b11

        -- Carry and reduce.
        a10 = c10 + 3 * 2 ^ 285 - 3 * 2 ^ 285  c11 = c11 + a10
        a11 = c11 + 3 * 2 ^ 306 - 3 * 2 ^ 306  c00 = c00 + 19 / 2 ^ 255 * a11

        a00 = c00 + 3 * 2 ^ 73  - 3 * 2 ^ 73   c01 = c01 + a00
        a01 = c01 + 3 * 2 ^ 94  - 3 * 2 ^ 94   c02 = c02 + a01
        a02 = c02 + 3 * 2 ^ 115 - 3 * 2 ^ 115  c03 = c03 + a02
        a03 = c03 + 3 * 2 ^ 136 - 3 * 2 ^ 136  c04 = c04 + a03
        a04 = c04 + 3 * 2 ^ 158 - 3 * 2 ^ 158  c05 = c05 + a04
        a05 = c05 + 3 * 2 ^ 179 - 3 * 2 ^ 179  c06 = c06 + a05
        a06 = c06 + 3 * 2 ^ 200 - 3 * 2 ^ 200  c07 = c07 + a06
        a07 = c07 + 3 * 2 ^ 221 - 3 * 2 ^ 221  c08 = c08 + a07
        a08 = c08 + 3 * 2 ^ 243 - 3 * 2 ^ 243  c09 = c09 + a08
        a09 = c09 + 3 * 2 ^ 264 - 3 * 2 ^ 264  c10 = c10 - a10 + a09
        a10 = c10 + 3 * 2 ^ 285 - 3 * 2 ^ 285  c11 = c11 - a11 + a10

        a11 = c11 + 3 * 2 ^ 306 - 3 * 2 ^ 306

        return {
            c00 - a00 + 19 / 2 ^ 255 * a11,
            c01 - a01,
            c02 - a02,
            c03 - a03,
            c04 - a04,
            c05 - a05,
            c06 - a06,
            c07 - a07,
            c08 - a08,
            c09 - a09,
            c10 - a10,
            c11 - a11,
        }
    end

    --- Squares an element.
    --- @param a FpR2
    --- @return FpR1 b An element such that b ≡ a² (mod p).
    local function square(a)
        local a00, a01, a02, a03, a04, a05, a06, a07, a08, a09, a10, a11 = unpack(a)
        local d00, d01, d02, d03, d04, d05, d06, d07, d08, d09, d10
        local c00, c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11

        -- Compute 2a.
        d00 = a00 + a00
        d01 = a01 + a01
        d02 = a02 + a02
        d03 = a03 + a03
        d04 = a04 + a04
        d05 = a05 + a05
        d06 = a06 + a06
        d07 = a07 + a07
        d08 = a08 + a08
        d09 = a09 + a09
        d10 = a10 + a10

        -- Multiply high half into c00..c11.
        c00 = a11 * d01
            + a10 * d02
            + a09 * d03
            + a08 * d04
            + a07 * d05
            + a06 * a06
        c01 = a11 * d02
            + a10 * d03
            + a09 * d04
            + a08 * d05
            + a07 * d06
        c02 = a11 * d03
            + a10 * d04
            + a09 * d05
            + a08 * d06
            + a07 * a07
        c03 = a11 * d04
            + a10 * d05
            + a09 * d06
            + a08 * d07
        c04 = a11 * d05
            + a10 * d06
            + a09 * d07
            + a08 * a08
        c05 = a11 * d06
            + a10 * d07
            + a09 * d08
        c06 = a11 * d07
            + a10 * d08
            + a09 * a09
        c07 = a11 * d08
            + a10 * d09
        c08 = a11 * d09
            + a10 * a10
        c09 = a11 * d10
        c10 = a11 * a11

        -- Multiply low half with reduction into c00..c11.
        c00 = c00 * (19 / 2 ^ 255)
            + a00 * a00
        c01 = c01 * (19 / 2 ^ 255)
            + a01 * d00
        c02 = c02 * (19 / 2 ^ 255)
            + a02 * d00
            + a01 * a01
        c03 = c03 * (19 / 2 ^ 255)
            + a03 * d00
            + a02 * d01
        c04 = c04 * (19 / 2 ^ 255)
            + a04 * d00
            + a03 * d01
            + a02 * a02
        c05 = c05 * (19 / 2 ^ 255)
            + a05 * d00
            + a04 * d01
            + a03 * d02
        c06 = c06 * (19 / 2 ^ 255)
            + a06 * d00
            + a05 * d01
            + a04 * d02
            + a03 * a03
        c07 = c07 * (19 / 2 ^ 255)
            + a07 * d00
            + a06 * d01
            + a05 * d02
            + a04 * d03
        c08 = c08 * (19 / 2 ^ 255)
            + a08 * d00
            + a07 * d01
            + a06 * d02
            + a05 * d03
            + a04 * a04
        c09 = c09 * (19 / 2 ^ 255)
            + a09 * d00
            + a08 * d01
            + a07 * d02
            + a06 * d03
            + a05 * d04
        c10 = c10 * (19 / 2 ^ 255)
            + a10 * d00
            + a09 * d01
            + a08 * d02
            + a07 * d03
            + a06 * d04
            + a05 * a05
        c11 = a11 * d00
            + a10 * d01
            + a09 * d02
            + a08 * d03
            + a07 * d04
            + a06 * d05

        -- Carry and reduce.
        a10 = c10 + 3 * 2 ^ 285 - 3 * 2 ^ 285  c11 = c11 + a10
        a11 = c11 + 3 * 2 ^ 306 - 3 * 2 ^ 306  c00 = c00 + 19 / 2 ^ 255 * a11

        a00 = c00 + 3 * 2 ^ 73  - 3 * 2 ^ 73   c01 = c01 + a00
        a01 = c01 + 3 * 2 ^ 94  - 3 * 2 ^ 94   c02 = c02 + a01
        a02 = c02 + 3 * 2 ^ 115 - 3 * 2 ^ 115  c03 = c03 + a02
        a03 = c03 + 3 * 2 ^ 136 - 3 * 2 ^ 136  c04 = c04 + a03
        a04 = c04 + 3 * 2 ^ 158 - 3 * 2 ^ 158  c05 = c05 + a04
        a05 = c05 + 3 * 2 ^ 179 - 3 * 2 ^ 179  c06 = c06 + a05
        a06 = c06 + 3 * 2 ^ 200 - 3 * 2 ^ 200  c07 = c07 + a06
        a07 = c07 + 3 * 2 ^ 221 - 3 * 2 ^ 221  c08 = c08 + a07
        a08 = c08 + 3 * 2 ^ 243 - 3 * 2 ^ 243  c09 = c09 + a08
        a09 = c09 + 3 * 2 ^ 264 - 3 * 2 ^ 264  c10 = c10 - a10 + a09
        a10 = c10 + 3 * 2 ^ 285 - 3 * 2 ^ 285  c11 = c11 - a11 + a10

        a11 = c11 + 3 * 2 ^ 306 - 3 * 2 ^ 306

        return {
            c00 - a00 + 19 / 2 ^ 255 * a11,
            c01 - a01,
            c02 - a02,
            c03 - a03,
            c04 - a04,
            c05 - a05,
            c06 - a06,
            c07 - a07,
            c08 - a08,
            c09 - a09,
            c10 - a10,
            c11 - a11,
        }
    end

    --- Squares an element n times.
    --- @param a FpR2
    --- @param n number The number of times to square a.
    --- @return FpR1 c A number c such that c ≡ a ^ 2 ^ n (mod p).
    local function nsquare(a, n)
        for _ = 1, n do a = square(a) end
        return a
    end

    --- Computes the inverse of an element.
    ---
    --- Performance: 11 multiplications and 252 squarings.
    ---
    --- @param a FpR2
    --- @return FpR1 c An element such that c ≡ a⁻¹ (mod p), or 0 if c doesn't exist.
    local function invert(a)
        local a2 = square(a)
        local a9 = mul(a, nsquare(a2, 2))
        local a11 = mul(a9, a2)

        local x5 = mul(square(a11), a9)
        local x10 = mul(nsquare(x5, 5), x5)
        local x20 = mul(nsquare(x10, 10), x10)
        local x40 = mul(nsquare(x20, 20), x20)
        local x50 = mul(nsquare(x40, 10), x10)
        local x100 = mul(nsquare(x50, 50), x50)
        local x200 = mul(nsquare(x100, 100), x100)
        local x250 = mul(nsquare(x200, 50), x50)

        return mul(nsquare(x250, 5), a11)
    end

    --- Returns an element x that satisfies vx² = u.
    ---
    --- Note that when v = 0, the returned element can take any value.
    ---
    --- @param u FpR2
    --- @param v FpR2
    --- @return FpR1? x An element such that vx² ≡ u (mod p), if it exists.
    local function sqrtDiv(u, v)
        u = carry(u)

        local v2 = square(v)
        local v3 = mul(v, v2)
        local v6 = square(v3)
        local v7 = mul(v, v6)
        local uv7 = mul(u, v7)

        local x2 = mul(square(uv7), uv7)
        local x4 = mul(nsquare(x2, 2), x2)
        local x8 = mul(nsquare(x4, 4), x4)
        local x16 = mul(nsquare(x8, 8), x8)
        local x18 = mul(nsquare(x16, 2), x2)
        local x32 = mul(nsquare(x16, 16), x16)
        local x50 = mul(nsquare(x32, 18), x18)
        local x100 = mul(nsquare(x50, 50), x50)
        local x200 = mul(nsquare(x100, 100), x100)
        local x250 = mul(nsquare(x200, 50), x50)
        local pr = mul(nsquare(x250, 2), uv7)

        local uv3 = mul(u, v3)
        local b = mul(uv3, pr)
        local b2 = square(b)
        local vb2 = mul(v, b2)

        if not eq(vb2, u) then
            -- Found sqrt(-u/v), multiply by i.
            b = mul(b, I)
            b2 = square(b)
            vb2 = mul(v, b2)
        end

        if eq(vb2, u) then
            return b
        else
            return nil
        end
    end

    --- @class String32: string A string with length equal to 32 bytes.

    --- Encodes an element in little-endian.
    --- @param a FpR1
    --- @return String32 out The 32-byte canonical encoding of a.
    local function encode(a)
        a = canonicalize(a)
        local a00, a01, a02, a03, a04, a05, a06, a07, a08, a09, a10, a11 = unpack(a)

        local bytes = {}
        local acc = a00

        local function putBytes(n)
            for _ = 1, n do
                local byte = acc % 256
                bytes[#bytes + 1] = byte
                acc = (acc - byte) / 256
            end
        end

        putBytes(2) acc = acc + a01 / 2 ^ 16
        putBytes(3) acc = acc + a02 / 2 ^ 40
        putBytes(3) acc = acc + a03 / 2 ^ 64
        putBytes(2) acc = acc + a04 / 2 ^ 80
        putBytes(3) acc = acc + a05 / 2 ^ 104
        putBytes(3) acc = acc + a06 / 2 ^ 128
        putBytes(2) acc = acc + a07 / 2 ^ 144
        putBytes(3) acc = acc + a08 / 2 ^ 168
        putBytes(3) acc = acc + a09 / 2 ^ 192
        putBytes(2) acc = acc + a10 / 2 ^ 208
        putBytes(3) acc = acc + a11 / 2 ^ 232
        putBytes(3)

        return string.char(unpack(bytes)) --[[@as String32, putBytes sums to 32]]
    end

    --- Decodes an element in little-endian.
    --- @param s String32 A 32-byte string, the most-significant bit is discarded.
    --- @return FpR1 out The decoded element. It may not be canonical.
    local function decode(s)
        local b = { byte(s, 1, 32) }
        return carry({
            b[1] + b[2] * 2 ^ 8 + b[3] * 2 ^ 16,
            (b[4] + b[5] * 2 ^ 8 + b[6] * 2 ^ 16) * 2 ^ 24,
            (b[7] + b[8] * 2 ^ 8) * 2 ^ 48,
            (b[9] + b[10] * 2 ^ 8 + b[11] * 2 ^ 16) * 2 ^ 64,
            (b[12] + b[13] * 2 ^ 8 + b[14] * 2 ^ 16) * 2 ^ 88,
            (b[15] + b[16] * 2 ^ 8) * 2 ^ 112,
            (b[17] + b[18] * 2 ^ 8 + b[19] * 2 ^ 16) * 2 ^ 128,
            (b[20] + b[21] * 2 ^ 8 + b[22] * 2 ^ 16) * 2 ^ 152,
            (b[23] + b[24] * 2 ^ 8) * 2 ^ 176,
            (b[25] + b[26] * 2 ^ 8 + b[27] * 2 ^ 16) * 2 ^ 192,
            (b[28] + b[29] * 2 ^ 8 + b[30] * 2 ^ 16) * 2 ^ 216,
            (b[31] + b[32] % 128 * 2 ^ 8) * 2 ^ 240,
        })
    end

    --- Checks if the given element is equal to 0.
    --- @param a FpR2
    --- @return boolean eqz Whether a ≡ 0 (mod p).
    local function eqz(a)
        local c = canonicalize(a)
        for i = 1, 12 do
            if c[i] ~= 0 then
                return false
            end
        end
        return true
    end

    fp = {
        num = num,
        neg = neg,
        add = add,
        sub = sub,
        mul = mul,
        square = square,
        carry = carry,
        canonicalize = canonicalize,
        eq = eq,
        eqz = eqz,
        invert = invert,
        sqrtDiv = sqrtDiv,
        encode = encode,
        decode = decode,
    }
end

-------------------------------------------------------------------------------
-- Edwards25519 points (ccryptolib internal/edwards25519.lua): extended coordinates
-- {X, Y, Z, T}, and Niels form {Y + X, Y - X, 2Z, 2dT} for the second operand of add/sub.
-------------------------------------------------------------------------------
local ed
do
    local D = fp.mul(fp.num(-121665), fp.invert(fp.num(121666)))
    local K = fp.carry(fp.add(D, D))

    --- @type EdPoint
    local O = { fp.num(0), fp.num(1), fp.num(1), fp.num(0) }

    --- @param withT boolean Whether to compute T (only an add that follows needs it).
    local function double(P1, withT)
        -- Unsoundness: fp.sub(g, e), and fp.sub(d, i) break fp.sub's contract since
        -- it doesn't accept an fp2. Although not ideal, in practice this doesn't
        -- matter since fp.carry handles the larger sum.
        local P1x, P1y, P1z = unpack(P1)
        local a = fp.square(P1x)
        local b = fp.square(P1y)
        local c = fp.square(P1z)
        local d = fp.add(c, c)
        local e = fp.add(a, b)
        local f = fp.add(P1x, P1y)
        local g = fp.square(f)
        local h = fp.carry(fp.sub(g, e))
        local i = fp.sub(b, a)
        local j = fp.carry(fp.sub(d, i))
        local P3x = fp.mul(h, j)
        local P3y = fp.mul(i, e)
        local P3z = fp.mul(j, i)
        local P3t = withT and fp.mul(h, e) or nil
        return {P3x, P3y, P3z, P3t}
    end

    --- Adds two points.
    --- @param P1 EdPoint The first summand point.
    --- @param N2 NsPoint The second summand point.
    --- @return EdPoint P3 P1 + P2, where N2 = niels(P2).
    local function add(P1, N2)
        local P1x, P1y, P1z, P1t = unpack(P1)
        local N1p, N1m, N1z, N1t = unpack(N2)
        local a = fp.sub(P1y, P1x)
        local b = fp.mul(a, N1m)
        local c = fp.add(P1y, P1x)
        local d = fp.mul(c, N1p)
        local e = fp.mul(P1t, N1t)
        local f = fp.mul(P1z, N1z)
        local g = fp.sub(d, b)
        local h = fp.sub(f, e)
        local i = fp.add(f, e)
        local j = fp.add(d, b)
        local P3x = fp.mul(g, h)
        local P3y = fp.mul(i, j)
        local P3z = fp.mul(h, i)
        local P3t = fp.mul(g, j)
        return {P3x, P3y, P3z, P3t}
    end

    --- Subtracts one point from another.
    --- @param P1 EdPoint The first summand point.
    --- @param N2 NsPoint The second summand point.
    --- @return EdPoint P3 P1 - P2, where N2 = niels(P2).
    local function sub(P1, N2)
        local P1x, P1y, P1z, P1t = unpack(P1)
        local N1p, N1m, N1z, N1t = unpack(N2)
        local a = fp.sub(P1y, P1x)
        local b = fp.mul(a, N1p)
        local c = fp.add(P1y, P1x)
        local d = fp.mul(c, N1m)
        local e = fp.mul(P1t, N1t)
        local f = fp.mul(P1z, N1z)
        local g = fp.sub(d, b)
        local h = fp.add(f, e)
        local i = fp.sub(f, e)
        local j = fp.add(d, b)
        local P3x = fp.mul(g, h)
        local P3y = fp.mul(i, j)
        local P3z = fp.mul(h, i)
        local P3t = fp.mul(g, j)
        return {P3x, P3y, P3z, P3t}
    end

    --- Computes the Niels representation of a point.
    --- @param P1 EdPoint The input point.
    --- @return NsPoint N1 Niels' precomputation applied to P1.
    local function niels(P1)
        local P1x, P1y, P1z, P1t = unpack(P1)
        local N3p = fp.add(P1y, P1x)
        local N3m = fp.sub(P1y, P1x)
        local N3z = fp.add(P1z, P1z)
        local N3t = fp.mul(P1t, K)
        return {N3p, N3m, N3z, N3t}
    end

    --- Scales a point.
    --- @param P1 EdPoint The input point.
    --- @return EdPoint P2 The same point as P1, but with Z = 1.
    local function scale(P1)
        local P1x, P1y, P1z = unpack(P1)
        local zInv = fp.invert(P1z)
        local P3x = fp.mul(P1x, zInv)
        local P3y = fp.mul(P1y, zInv)
        local P3z = fp.num(1)
        local P3t = fp.mul(P3x, P3y)
        return {P3x, P3y, P3z, P3t}
    end

    --- Encodes a scaled point.
    --- @param P1 EdPoint The scaled point to encode.
    --- @return string out P1 encoded as a 32-byte string.
    local function encode(P1)
        P1 = scale(P1)
        local P1x, P1y = unpack(P1)
        local y = fp.encode(P1y)
        local xBit = fp.canonicalize(P1x)[1] % 2
        return y:sub(1, -2) .. string.char(y:byte(-1) + xBit * 128)
    end

    -- The encoding of the identity (0, 1).
    local IDENTITY = "\1" .. rep("\0", 31)

    --- Decodes a point strictly (RFC 8032 section 5.1.3): nil unless y < p, the point is
    --- on the curve, and the sign bit is clear when x = 0.
    --- @param str String32 A 32-byte encoded point.
    --- @return EdPoint? P1 The decoded point.
    local function decode(str)
        -- y < p: reject 2^255 - 19 .. 2^255 - 1 (with either sign bit).
        if byte(str, 32) % 128 == 127 and byte(str, 1) >= 237 then
            local all = true
            for i = 2, 31 do
                if byte(str, i) ~= 255 then
                    all = false
                    break
                end
            end
            if all then
                return nil
            end
        end
        local sign = floor(byte(str, 32) / 128)
        local P3y = fp.decode(str)
        local a = fp.square(P3y)
        local b = fp.sub(a, fp.num(1))
        local c = fp.mul(a, D)
        local d = fp.add(c, fp.num(1))
        local P3x = fp.sqrtDiv(b, d)
        if not P3x then
            return nil
        end
        local xc = fp.canonicalize(P3x)
        if xc[1] % 2 ~= sign then
            if fp.eqz(xc) then
                return nil
            end
            P3x = fp.carry(fp.neg(P3x))
        end
        local P3z = fp.num(1)
        local P3t = fp.mul(P3x, P3y)
        return { P3x, P3y, P3z, P3t }
    end

    --- Whether a point is the identity (X = 0 and Y = Z).
    local function isIdentity(P1)
        return fp.eqz(P1[1]) and fp.eq(P1[2], P1[3])
    end

    --- Odd multiples P, 3P, 5P, ..., (2n - 1)P in Niels form.
    local function oddMultiples(P, n)
        local P2 = niels(double(P, true))
        local out = { niels(P) }
        for i = 2, n do
            P = add(P, P2)
            out[i] = niels(P)
        end
        return out
    end

    -- The base point B: y = 4/5, x even ("X" = 0x58, "f" = 0x66).
    local B = decode("X" .. rep("f", 31))
    -- B, 3B, ..., 63B: digits of [S]B go up to 63, those of [k]A up to 15.
    local B_TABLE = oddMultiples(B, 32)

    ed = {
        O = O,
        IDENTITY = IDENTITY,
        double = double,
        add = add,
        sub = sub,
        niels = niels,
        encode = encode,
        decode = decode,
        isIdentity = isIdentity,
        oddMultiples = oddMultiples,
        B_TABLE = B_TABLE,
    }
end

-------------------------------------------------------------------------------
-- Scalars modulo L = 2^252 + 27742317777372353535851937790883648493, as 0-based arrays
-- of little-endian byte values.
-------------------------------------------------------------------------------
local L = {
    [0] = 0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
    0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0x10,
}

--- Reduces a 512-bit number mod L (TweetNaCl's modL; limbs stay below 2^21 here).
--- @param x number[] 64 limbs x[0..63], destroyed.
--- @return number[] r The 32 bytes r[0..31] of x mod L.
local function modL(x)
    for i = 63, 32, -1 do
        local carry = 0
        local j = i - 32
        while j < i - 12 do
            x[j] = x[j] + carry - 16 * x[i] * L[j - (i - 32)]
            carry = floor((x[j] + 128) / 256)
            x[j] = x[j] - carry * 256
            j = j + 1
        end
        x[j] = x[j] + carry
        x[i] = 0
    end
    local carry = 0
    for j = 0, 31 do
        x[j] = x[j] + carry - floor(x[31] / 16) * L[j]
        carry = floor(x[j] / 256)
        x[j] = x[j] % 256
    end
    for j = 0, 31 do
        x[j] = x[j] - carry * L[j]
    end
    local r = {}
    for i = 0, 31 do
        x[i + 1] = x[i + 1] + floor(x[i] / 256)
        r[i] = x[i] % 256
    end
    return r
end

--- Whether a scalar (bytes s[0..31]) is below L.
local function belowL(s)
    for i = 31, 0, -1 do
        if s[i] ~= L[i] then
            return s[i] < L[i]
        end
    end
    return false
end

--- The signed sliding-window form of a scalar (ref10's slide): r[0..255], each digit 0 or
--- odd in [-limit, limit], with sum(r[i] * 2^i) equal to the scalar (< 2^253).
local function slide(a, limit, span)
    local r = {}
    for i = 0, 255 do
        r[i] = floor(a[floor(i / 8)] / 2 ^ (i % 8)) % 2
    end
    for i = 0, 255 do
        if r[i] ~= 0 then
            local b = 1
            while b <= span and i + b < 256 do
                local rb = r[i + b]
                if rb ~= 0 then
                    local v = rb * 2 ^ b
                    if r[i] + v <= limit then
                        r[i] = r[i] + v
                        r[i + b] = 0
                    elseif r[i] - v >= -limit then
                        r[i] = r[i] - v
                        for k = i + b, 255 do
                            if r[k] == 0 then
                                r[k] = 1
                                break
                            end
                            r[k] = 0
                        end
                    else
                        break
                    end
                end
                b = b + 1
            end
        end
    end
    return r
end

--- [a]A + [b]B from sliding-window digits and odd-multiple tables (ref10's
--- ge_double_scalarmult_vartime); `bdigits` may be nil for [a]A alone.
local function scalarMult(adigits, atable, bdigits, btable)
    local double, add, sub = ed.double, ed.add, ed.sub
    local i = 255
    while i >= 0 and adigits[i] == 0 and (bdigits == nil or bdigits[i] == 0) do
        i = i - 1
    end
    local P = ed.O
    while i >= 0 do
        local d = adigits[i]
        P = double(P, d ~= 0 or (bdigits ~= nil and bdigits[i] ~= 0))
        if d > 0 then
            P = add(P, atable[(d + 1) / 2])
        elseif d < 0 then
            P = sub(P, atable[(1 - d) / 2])
        end
        if bdigits ~= nil then
            d = bdigits[i]
            if d > 0 then
                P = add(P, btable[(d + 1) / 2])
            elseif d < 0 then
                P = sub(P, btable[(1 - d) / 2])
            end
        end
        i = i - 1
    end
    return P
end

local L_DIGITS = slide(L, 15, 6)

-- Keys that passed the checks below, mapped to their table of odd multiples of -A.
local goodKeys = {}

--- The odd multiples of -A for a valid public key, or nil: the key must decode strictly,
--- not be the identity, and have order L ([L]A = identity), so no small-order component.
local function keyTable(pk)
    local cached = goodKeys[pk]
    if cached ~= nil then
        return cached
    end
    if pk == ed.IDENTITY then
        return nil
    end
    local A = ed.decode(pk)
    if A == nil then
        return nil
    end
    local negA = { fp.carry(fp.neg(A[1])), A[2], A[3], fp.carry(fp.neg(A[4])) }
    local atable = ed.oddMultiples(negA, 8)
    if not ed.isIdentity(scalarMult(L_DIGITS, atable, nil, nil)) then
        return nil
    end
    goodKeys[pk] = atable
    return atable
end

--- Verifies an Ed25519 signature (RFC 8032, with the strict rules in the header).
--- @param pk string The signer's 32-byte public key.
--- @param msg string The signed message.
--- @param sig string The 64-byte signature R || S.
--- @return boolean valid Whether the signature is valid. Never errors.
function M.verify(pk, msg, sig)
    if type(pk) ~= "string" or type(msg) ~= "string" or type(sig) ~= "string" then
        return false
    end
    if #pk ~= 32 or #sig ~= 64 then
        return false
    end
    local rStr = string.sub(sig, 1, 32)
    if rStr == ed.IDENTITY then
        return false
    end
    local s = {}
    for i = 0, 31 do
        s[i] = byte(sig, 33 + i)
    end
    if not belowL(s) then
        return false
    end
    local atable = keyTable(pk)
    if atable == nil then
        return false
    end
    local h = M.sha512(rStr .. pk .. msg)
    local x = {}
    for i = 0, 63 do
        x[i] = byte(h, i + 1)
    end
    local k = modL(x)
    -- [S]B - [k]A must encode to exactly R.
    local P = scalarMult(slide(k, 15, 6), atable, slide(s, 63, 8), ed.B_TABLE)
    return ed.encode(P) == rStr
end

--- Lower-case hex of a byte string.
function M.tohex(s)
    return (string.gsub(s, ".", function(c)
        return string.format("%02x", byte(c))
    end))
end

--- The bytes of a hex string, or nil if it is not one.
function M.fromhex(h)
    if type(h) ~= "string" or #h % 2 ~= 0 or string.find(h, "[^0-9a-fA-F]") then
        return nil
    end
    return (string.gsub(h, "..", function(cc)
        return char(tonumber(cc, 16))
    end))
end

return M
