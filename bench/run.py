"""leaf7 benchmark: the loader execution check against a route that does not touch Redis.

Starts ``leaf7 serve`` on a fresh embedded Valkey, seeds active keys (each redeemed and bound
to its HWID by a first execution), uploads a hosted script that uses macros, then runs wrk
against ``POST /api/loader/execute`` and ``GET /healthz`` in the same run and prints
requests/s, their ratio and execute's p50/p99 latency.

    python bench/run.py [--keys 10000] [--duration 15] [--connections 32] [--threads 2]
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
LEAF7 = Path(sys.executable).parent / "leaf7"


def hosted_source(size: int) -> str:
    """A hosted script of about ``size`` bytes that uses three macros."""
    head = (
        'print("Hello " .. L7_LinkedDiscordID .. ", " .. L7_SecondsLeft .. " s left, run #"'
        " .. L7_TotalExecutions)\n"
    )
    line = "local t = {}; for i = 1, 10 do t[i] = i * i end\n"
    return head + line * max(0, (size - len(head)) // len(line))


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    print("wrk not found: installing it from Debian's packages", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    path = shutil.which("wrk")
    if not path:
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        path = shutil.which("wrk")
    if not path:
        raise SystemExit("wrk is required (apt-get install wrk)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}")
            try:
                async with http.get(f"{base}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("server did not become ready")


async def seed(
    base: str, env: dict[str, str], n_keys: int, keys_file: Path, source: str
) -> None:
    out = subprocess.run(
        [str(LEAF7), "vendor", "create", "--name", "bench", "--discord-id", "1"],
        env=env,
        check=True,
        capture_output=True,
    ).stdout
    api_key = json.loads(out)["api_key"]
    auth = {"Authorization": f"Bearer {api_key}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.post(f"{base}/api/vendor/projects", json={"name": "Bench"}) as r:
            project_id = (await r.json())["project_id"]
        async with http.put(
            f"{base}/api/vendor/projects/{project_id}/source", json={"source": source}
        ) as r:
            assert r.status == 200, await r.text()
        key_ids: list[str] = []
        while len(key_ids) < n_keys:
            amount = min(1000, n_keys - len(key_ids))
            body = {"project_id": project_id, "amount": amount, "key_days": 30}
            async with http.post(f"{base}/api/vendor/keys/buyer", json=body) as r:
                key_ids += [k["key_id"] for k in await r.json()]
        rows = [(key_id, f"HWID-{i:06d}-{random.getrandbits(32):08x}") for i, key_id in
                enumerate(key_ids)]  # fmt: skip
        sem = asyncio.Semaphore(64)

        async def first_run(key_id: str, hwid: str) -> None:
            async with sem:
                body = {"project_id": project_id, "script_key": key_id, "hwid": hwid}
                async with http.post(f"{base}/api/loader/execute", json=body) as r:
                    data = await r.json()
                    assert data["code"] == "KEY_VALID", data

        await asyncio.gather(*(first_run(k, h) for k, h in rows))
        async with http.get(f"{base}/api/vendor/keys/active?project_id={project_id}") as r:
            active = await r.json()
        assert len(active) == n_keys, len(active)
    keys_file.write_text("".join(f"{project_id} {k} {h}\n" for k, h in rows))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def valkey_pid(data_dir: Path) -> int | None:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            # Valkey rewrites its argv; the embedded server runs in its data directory.
            try:
                cwd = (proc / "cwd").resolve()
                comm = (proc / "comm").read_text().strip()
            except OSError:
                continue
            if comm.startswith("valkey") and cwd == data_dir:
                return int(proc.name)
    return None


def run_wrk(wrk: str, args: argparse.Namespace, script: Path, url: str, env: dict[str, str]):  # type: ignore[no-untyped-def]
    cmd = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s"]
    cmd += ["--timeout", "5s", "-s", str(script), url]
    pids = [p for p in (env.get("L7_SERVER_PID"), env.get("L7_VALKEY_PID")) if p]
    before = [cpu_seconds(int(p)) for p in pids]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    after = [cpu_seconds(int(p)) for p in pids]
    line = next(x for x in out.splitlines() if x.startswith("L7JSON "))
    res: dict[str, Any] = json.loads(line[len("L7JSON ") :])
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    res["errors"] = res["connect"] + res["read"] + res["write"] + res["timeout"]
    secs = res["duration_us"] / 1e6
    res["cpu"] = [(a - b) / secs for a, b in zip(after, before, strict=True)]
    return res


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--source-bytes", type=int, default=1024, help="hosted script size")
    parser.add_argument("--profile", help="record the server with py-spy during execute (raw)")
    args = parser.parse_args()
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="leaf7-bench-") as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env["LEAF7_DATA_DIR"] = str(Path(tmp) / "data")
        env["L7_BENCH_KEYS"] = str(Path(tmp) / "keys.txt")
        server = subprocess.Popen(
            [str(LEAF7), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=open("/tmp/bench-server.log", "w")
        )
        try:
            asyncio.run(wait_ready(base, server))
            env["L7_SERVER_PID"] = str(server.pid)
            env["L7_VALKEY_PID"] = str(valkey_pid(Path(env["LEAF7_DATA_DIR"]).resolve()) or "")
            t0 = time.monotonic()
            source = hosted_source(args.source_bytes)
            asyncio.run(seed(base, env, args.keys, Path(env["L7_BENCH_KEYS"]), source))
            print(f"seeded {args.keys} active keys in {time.monotonic() - t0:.1f} s", flush=True)
            print(
                f"wrk: {args.threads} threads, {args.connections} connections, "
                f"{args.duration} s per route",
                flush=True,
            )
            plain = run_wrk(wrk, args, HERE / "plain.lua", f"{base}/healthz", env)
            spy = None
            if args.profile:
                spy = subprocess.Popen(
                    ["py-spy", "record", "-p", str(server.pid), "-d", str(args.duration),
                     "-f", "raw", "-o", args.profile, "-r", "200", "--nonblocking"]
                )  # fmt: skip
            execute = run_wrk(wrk, args, HERE / "execute.lua", f"{base}/api/loader/execute", env)
            if spy:
                spy.wait()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
    ratio = execute["rps"] / plain["rps"]
    print(f"GET  /healthz             {plain['rps']:9.0f} req/s  p50 {plain['p50_us'] / 1000:.2f} ms"
          f"  p99 {plain['p99_us'] / 1000:.2f} ms")  # fmt: skip
    print(f"POST /api/loader/execute  {execute['rps']:9.0f} req/s  p50 "
          f"{execute['p50_us'] / 1000:.2f} ms  p99 {execute['p99_us'] / 1000:.2f} ms")  # fmt: skip
    for name, res in (("healthz", plain), ("execute", execute)):
        print(f"CPU during {name}: " + ", ".join(
            f"{who} {100 * c:.0f}%" for who, c in zip(("server", "valkey"), res["cpu"])))  # fmt: skip
    print(f"execute / healthz ratio   {ratio:.2f}   (target >= 0.60)")
    print(f"execute p99               {execute['p99_us'] / 1000:.2f} ms (target <= 10 ms)")
    print(f"non-2xx: healthz {plain['non2xx']}, execute {execute['non2xx']};"
          f" socket errors: healthz {plain['errors']}, execute {execute['errors']}")  # fmt: skip
    ok = (
        ratio >= 0.6
        and execute["p99_us"] <= 10_000
        and plain["non2xx"] + execute["non2xx"] + plain["errors"] + execute["errors"] == 0
    )
    print("targets: " + ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
