"""The loader's Ed25519 verifier (handlers/lua/vendor/ed25519.lua): what it costs an executor.

Runs the module in Luau (``-O2``, the interpreter: executors have no codegen) and in Lua 5.1,
and prints, each a median over the runs: the time to load it (compile and run the chunk), one
verification of a key seen for the first time (it includes the key's checks, the [L]A one
costs about one more scalar multiplication), one verification of a key already checked, and
SHA-512 / SHA-256 of a 64 KiB string (the loader hashes the chunk it runs); and the size of
the file. Times are CPU time (os.clock) inside the interpreter.

    python bench/lua_verify.py [--runs 15]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout: tests/support (not shipped) is used too

from tests.support import ed25519_ref as ref  # noqa: E402

MODULE = HERE.parent / "handlers" / "lua" / "vendor" / "ed25519.lua"
LUAU = HERE.parent.parent / "shared" / "tools" / "luau" / "luau"

# Prints "name ms" lines; `keys` holds (public key, message, signature) hex triples, each key
# distinct, so that the first verification of each pays for the key's checks.
SCRIPT = """
local source = %(source)s
local runs = %(runs)d
local keys = %(keys)s
local loadchunk = loadstring or load
local function ms(t) return (os.clock() - t) * 1000 end
local M
for _ = 1, runs do
  local t = os.clock()
  M = loadchunk(source)()
  print("load " .. ms(t))
end
local function H(h) return M.fromhex(h) end
for i = 1, #keys do
  local pk, msg, sig = H(keys[i][1]), H(keys[i][2]), H(keys[i][3])
  local t = os.clock()
  assert(M.verify(pk, msg, sig))
  print("verify_new_key " .. ms(t))
  t = os.clock()
  assert(M.verify(pk, msg, sig))
  print("verify " .. ms(t))
end
local big = string.rep("leaf7 ", 65536 / 8) .. string.rep("ab", 65536 / 8)
assert(#big == 65536)
for _ = 1, 5 do
  local t = os.clock()
  M.sha512(big)
  print("sha512_64k " .. ms(t))
  t = os.clock()
  M.sha256(big)
  print("sha256_64k " .. ms(t))
end
"""


def lua_string(text: str) -> str:
    # A long bracket the module does not contain.
    level = "=" * 4
    assert f"]{level}]" not in text
    return f"[{level}[\n{text}]{level}]"


def measure(command: list[str], runs: int, keys: list[tuple[str, str, str]]) -> dict[str, float]:
    table = "{" + ",".join(f'{{"{pk}","{msg}","{sig}"}}' for pk, msg, sig in keys) + "}"
    script = SCRIPT % {"source": lua_string(MODULE.read_text()), "runs": runs, "keys": table}
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as f:
        f.write(script)
        f.flush()
        out = subprocess.run([*command, f.name], capture_output=True, text=True, check=True)
    samples: dict[str, list[float]] = {}
    for line in out.stdout.splitlines():
        name, value = line.split()
        samples.setdefault(name, []).append(float(value))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    keys = []
    for i in range(args.runs):
        secret = bytes([i + 1]) * 32
        msg = b"leaf7 signed verdict %d" % i
        keys.append((ref.public_key(secret).hex(), msg.hex(), ref.sign(secret, msg).hex()))

    interpreters = {"Luau -O2": [str(LUAU), "-O2"], "Lua 5.1": ["lua5.1"]}
    results = {name: measure(command, args.runs, keys) for name, command in interpreters.items()}
    rows = [
        ("load (compile + run the chunk)", "load"),
        ("verify, key seen first (incl. [L]A)", "verify_new_key"),
        ("verify, key already checked", "verify"),
        ("SHA-512 of 64 KiB", "sha512_64k"),
        ("SHA-256 of 64 KiB", "sha256_64k"),
    ]
    size = MODULE.stat().st_size
    print(f"handlers/lua/vendor/ed25519.lua: {size} bytes; medians of {args.runs} runs")
    print(f"{'ms':<38}" + "".join(f"{name:>12}" for name in results))
    for label, key in rows:
        print(f"{label:<38}" + "".join(f"{r[key]:>12.2f}" for r in results.values()))


if __name__ == "__main__":
    main()
