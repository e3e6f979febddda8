"""A Lua interpreter for the obfuscator: ``python worker.py FILE ARGS...`` runs one Lua file
with ``arg`` set, like the ``lua`` command (LuaJIT 2.1 from lupa, Lua 5.1 without it).

Run as a program of its own (``run.py`` starts it as a file, with no leaf7 module imported):
the obfuscator is a separate program that reads and writes files, and a job that runs too long
is killed with its process. Exit status 1 and the Lua error on stderr when the file fails.
"""

import sys


def main(argv: list[str]) -> int:
    try:  # LuaJIT: several times faster than PUC Lua 5.1
        from lupa import luajit21 as runtime
    except ImportError:  # pragma: no cover (a platform without lupa's LuaJIT)
        from lupa import lua51 as runtime
    # No python.* module in Lua: the obfuscator sees plain Lua and its files only.
    lua = runtime.LuaRuntime(register_eval=False, register_builtins=False)
    lua_globals = lua.globals()
    lua_globals.arg = lua.table_from(argv[1:])
    chunk = lua_globals.loadfile(argv[0])
    if chunk is None:
        print(f"cannot load {argv[0]}", file=sys.stderr)
        return 1
    try:
        chunk()
    except runtime.LuaError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
