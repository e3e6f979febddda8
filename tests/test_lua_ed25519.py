"""handlers/lua/vendor/ed25519.lua, the loader's Ed25519 verifier, run by Lua 5.1 and Luau."""

import hashlib
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import ed25519_ref as ref
from tests.support.lua import LUAU, run_file

MODULE = Path(__file__).resolve().parents[1] / "handlers" / "lua" / "vendor" / "ed25519.lua"
# Luau as Roblox executors run it (no codegen); CI has it at the same path.
INTERPRETERS = ["lua5.1", "luau"]
pytestmark = pytest.mark.lua


def run_lua(interpreter: str, body: str, tmp_path: Path) -> list[str]:
    """Runs `body` after the module, embedded the way the loader embeds it (one chunk that
    evaluates to the module, bound to `M`); `H` decodes hex. Returns the printed lines."""
    text = (
        f"local M = (function()\n{MODULE.read_text()}\nend)()\n"
        "local function H(h) return assert(M.fromhex(h)) end\n" + body
    )
    return run_file(interpreter, text, tmp_path).splitlines()


def hx(data: bytes) -> str:
    return f'H"{data.hex()}"'


def verify_all(interpreter: str, cases: list[tuple[str, str, str]], tmp_path: Path) -> list[bool]:
    """M.verify over Lua expressions (public key, message, signature)."""
    lines = [f"print(tostring(M.verify({pk}, {msg}, {sig})))" for pk, msg, sig in cases]
    out = run_lua(interpreter, "\n".join(lines) + "\n", tmp_path)
    assert len(out) == len(cases), out
    assert set(out) <= {"true", "false"}, out
    return [line == "true" for line in out]


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def forge_for_small_order(public: bytes, msg: bytes) -> bytes:
    """A signature that RFC 8032's bare equation accepts for a small-order key T, without any
    secret: R = [S]B works whenever [k]T is the identity (k = H(R || T || M))."""
    for s in range(1, 1000):
        big_r = ref.compress(ref.point_mul(s, ref.G))
        sig = big_r + s.to_bytes(32, "little")
        if ref.verify_loose(public, msg, sig):
            return sig
    raise AssertionError("no forgery found")


def test_interpreters_are_present() -> None:
    assert LUAU.is_file() and os.access(LUAU, os.X_OK), f"{LUAU} is required (see its README)"
    assert shutil.which("lua5.1"), "lua5.1 is required (apt-get install lua5.1 lua-bit32)"
    probe = subprocess.run(["lua5.1", "-e", "require('bit32')"], capture_output=True, check=False)
    assert probe.returncode == 0, probe.stderr


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_file_is_one_chunk_returning_the_module(interpreter: str) -> None:
    # The file itself, unchanged, is a chunk: dofile'd by Lua 5.1, run as a script by Luau.
    if interpreter == "lua5.1":
        code = f"local M = dofile({str(MODULE)!r}) print(type(M.verify), type(M.sha512))"
        proc = subprocess.run(["lua5.1", "-e", code], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "function\tfunction\n"
    else:
        proc = subprocess.run([str(LUAU), str(MODULE)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_rfc8032_vectors_verify(interpreter: str, tmp_path: Path) -> None:
    cases = [
        (f'H"{v.public}"', f'H"{v.message}"', f'H"{v.signature}"') for v in ref.RFC8032_VECTORS
    ]
    assert verify_all(interpreter, cases, tmp_path) == [True] * len(cases)


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_tampered_and_malformed_are_rejected(interpreter: str, tmp_path: Path) -> None:
    vector = ref.RFC8032_VECTORS[2]
    pk, msg, sig = (bytes.fromhex(h) for h in (vector.public, vector.message, vector.signature))
    s = int.from_bytes(sig[32:], "little")
    cases: dict[str, tuple[str, str, str]] = {"genuine": (hx(pk), hx(msg), hx(sig))}
    for bit in (0, 9, 130, 254, 255):
        cases[f"R bit {bit}"] = (hx(pk), hx(msg), hx(flip(sig, bit)))
    for bit in (256, 300, 400, 508, 511):
        cases[f"S bit {bit - 256}"] = (hx(pk), hx(msg), hx(flip(sig, bit)))
    for bit in (0, 15):
        cases[f"message bit {bit}"] = (hx(pk), hx(flip(msg, bit)), hx(sig))
    cases["message extended"] = (hx(pk), hx(msg + b"\0"), hx(sig))
    for bit in (0, 100, 254, 255):
        cases[f"key bit {bit}"] = (hx(flip(pk, bit)), hx(msg), hx(sig))
    # S + L and S + 2L are the same scalar mod L: RFC 8032 requires S < L.
    for n in (1, 2):
        noncanonical = sig[:32] + (s + n * ref.L).to_bytes(32, "little")
        assert ref.verify_loose(pk, msg, noncanonical)
        cases[f"S + {n}L"] = (hx(pk), hx(msg), hx(noncanonical))
    cases["S = L"] = (hx(pk), hx(msg), hx(sig[:32] + ref.L.to_bytes(32, "little")))

    # The 8 small-order keys, each with a signature a bare RFC 8032 check accepts.
    for i, point in enumerate(ref.small_order_points()):
        key = ref.compress(point)
        cases[f"small-order key {i}"] = (hx(key), hx(msg), hx(forge_for_small_order(key, msg)))
    # Non-canonical encodings of small-order points: y = p + 1 (the identity), and x = 0 with
    # the sign bit set (the identity, and (0, -1)).
    for name, key in {
        "identity as y = p + 1": (ref.P + 1).to_bytes(32, "little"),
        "identity with sign bit": (1 | 1 << 255).to_bytes(32, "little"),
        "(0, -1) with sign bit": ((ref.P - 1) | 1 << 255).to_bytes(32, "little"),
    }.items():
        forged = ref.compress(ref.point_mul(5, ref.G)) + (5).to_bytes(32, "little")
        cases[name] = (hx(key), hx(msg), hx(forged))

    # A key with a small-order component, A = [a]B + T (T of order 8), and a message whose
    # k = H(R || A || M) is a multiple of 8: the bare equation holds, the order check refuses.
    rng = random.Random(25519)
    a, prefix = ref.secret_expand(rng.randbytes(32))
    torsion = ref.small_order_points()[1]
    mixed = ref.compress(ref.point_add(ref.point_mul(a, ref.G), torsion))
    for counter in range(200):
        message = b"mixed-order key %d" % counter
        signed = ref.sign_with(a, prefix, mixed, message)
        if ref.verify_loose(mixed, message, signed):
            break
    else:
        raise AssertionError("no message with k = 0 mod 8")
    cases["key with a small-order component"] = (hx(mixed), hx(message), hx(signed))

    # R that does not decode (y with no x on the curve), and R = the identity.
    y = 2
    while ref.recover_x(y, 0) is not None:
        y += 1
    cases["R off the curve"] = (hx(pk), hx(msg), hx(y.to_bytes(32, "little") + sig[32:]))
    identity = ref.compress(ref.IDENTITY)
    cases["R identity, S 0"] = (hx(pk), hx(msg), hx(identity + bytes(32)))

    # Wrong lengths and types: false, not an error.
    cases["signature 63 bytes"] = (hx(pk), hx(msg), hx(sig[:63]))
    cases["signature 65 bytes"] = (hx(pk), hx(msg), hx(sig + b"\0"))
    cases["key 31 bytes"] = (hx(pk[:31]), hx(msg), hx(sig))
    cases["key 33 bytes"] = (hx(pk + b"\0"), hx(msg), hx(sig))
    cases["empty key and signature"] = ('""', hx(msg), '""')
    cases["nil key"] = ("nil", hx(msg), hx(sig))
    cases["nil message"] = (hx(pk), "nil", hx(sig))
    cases["number signature"] = (hx(pk), hx(msg), "12")

    results = dict(zip(cases, verify_all(interpreter, list(cases.values()), tmp_path), strict=True))
    assert results == {name: name == "genuine" for name in cases}


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_agrees_with_python_on_random_keys(interpreter: str, tmp_path: Path) -> None:
    rng = random.Random(8032)
    cases: list[tuple[str, str, str]] = []
    expected: list[bool] = []
    for i in range(20):
        secret = rng.randbytes(32)
        pk = ref.public_key(secret)
        msg = rng.randbytes(rng.randrange(0, 300))
        sig = ref.sign(secret, msg)
        cases.append((hx(pk), hx(msg), hx(sig)))
        expected.append(True)
        # One tampered variant each: a flipped bit in the signature, the message or the key.
        where = i % 3
        if where == 0:
            sig = flip(sig, rng.randrange(512))
        elif where == 1:
            msg = flip(msg, rng.randrange(len(msg) * 8)) if msg else b"x"
        else:
            pk = flip(pk, rng.randrange(256))
        assert not ref.verify_loose(pk, msg, sig)
        cases.append((hx(pk), hx(msg), hx(sig)))
        expected.append(False)
    assert verify_all(interpreter, cases, tmp_path) == expected


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_hashes_match_hashlib(interpreter: str, tmp_path: Path) -> None:
    rng = random.Random(512)
    lengths = [0, 1, 3, 55, 56, 63, 64, 65, 111, 112, 113, 127, 128, 129, 200, 1000, 4099]
    inputs = [rng.randbytes(n) for n in lengths] + [b"abc"]
    body = "".join(
        f"print(M.tohex(M.sha512({hx(data)})) .. ' ' .. M.tohex(M.sha256({hx(data)})))\n"
        for data in inputs
    )
    out = run_lua(interpreter, body, tmp_path)
    assert out == [
        f"{hashlib.sha512(data).hexdigest()} {hashlib.sha256(data).hexdigest()}" for data in inputs
    ]


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_hex_helpers(interpreter: str, tmp_path: Path) -> None:
    body = (
        "print(M.tohex('\\0\\1\\254\\255'))\n"
        "print(M.fromhex('00ff7A') == '\\0\\255\\122')\n"
        "print(M.fromhex('abc'), M.fromhex('zz'), M.fromhex(nil))\n"
    )
    assert run_lua(interpreter, body, tmp_path) == ["0001feff", "true", "nil\tnil\tnil"]
