"""Full listings of a large project must not hold anyone else up.

Starts ``leaf7 serve`` on a fresh embedded Valkey, seeds one vendor's project with ``--keys``
buyer keys (1000 per request), then

1. times one full (unpaged, streamed) ``GET /api/vendor/keys/buyer?project_id=…`` alone, and
   the server process's peak memory growth while it runs (VmHWM);
2. runs ``--listings`` such listings at once while ``--checkers`` loops of another vendor's
   loader checks (``POST /api/loader/execute``) run, and prints the checks' verdicts and
   p50/p99/max latency. The target: every check ``KEY_VALID``, p99 <= 100 ms;
3. deletes the project and times it.

    python bench/listing.py [--keys 100000] [--listings 4] [--checkers 4]
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout: tests/support (not shipped) is used too

from tests.support.processes import create_vendor, serving  # noqa: E402

BUYER = "/api/vendor/keys/buyer"


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def listing(session: aiohttp.ClientSession, base: str, key: str, pid: str) -> int:
    """One full listing, read as it streams; returns the number of keys (parsed at the end)."""
    url = f"{base}{BUYER}?project_id={pid}"
    async with session.get(url, headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200, resp.status
        body = await resp.read()
    return len(json.loads(body))


async def curl_listing(base: str, key: str, pid: str, out: Path) -> None:
    """One full listing by curl, in a process of its own (the client's work does not delay
    the checks this process times), saved to ``out``."""
    proc = await asyncio.create_subprocess_exec(
        "curl",
        "-sf",
        "-o",
        str(out),
        "-H",
        f"Authorization: Bearer {key}",
        f"{base}{BUYER}?project_id={pid}",
    )
    assert await proc.wait() == 0


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        env = {
            "LEAF7_RATE_VENDOR": "0",
            "LEAF7_RATE_KEYGEN": "0",
            "LEAF7_RATE_EXECUTE": "0",
            "LEAF7_ACCESS_LOG": "0",
        }
        a = create_vendor(data, "big", "111")
        b = create_vendor(data, "other", "222")
        args.tmp = tmp
        with serving(data, env) as server:
            await run(server.base, server.proc.pid, a["api_key"], b["api_key"], args)


async def run(base: str, server_pid: int, key_a: str, key_b: str, args: argparse.Namespace) -> None:
    auth_a = {"Authorization": f"Bearer {key_a}"}
    auth_b = {"Authorization": f"Bearer {key_b}"}
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as s:

        async def post(path: str, body: object, auth: dict[str, str]) -> object:
            async with s.post(base + path, json=body, headers=auth) as resp:
                assert resp.status < 300, (resp.status, await resp.text())
                return await resp.json()

        project = await post("/api/vendor/projects", {"name": "big"}, auth_a)
        pid = project["project_id"]  # type: ignore[index]
        t = time.perf_counter()
        sem = asyncio.Semaphore(4)

        async def gen(n: int) -> None:
            async with sem:
                await post(BUYER, {"project_id": pid, "amount": n, "key_days": 1}, auth_a)

        await asyncio.gather(*(gen(min(1000, args.keys - i)) for i in range(0, args.keys, 1000)))
        print(f"seeded {args.keys} keys in {time.perf_counter() - t:.1f} s")

        theirs = await post("/api/vendor/projects", {"name": "small"}, auth_b)
        their_pid = theirs["project_id"]  # type: ignore[index]
        [key] = await post(BUYER, {"project_id": their_pid}, auth_b)  # type: ignore[misc]
        check = {"project_id": their_pid, "script_key": key["key_id"], "hwid": "h"}

        # 1. One listing alone: time and the server's peak memory growth.
        hwm0, rss0 = vm_kib(server_pid, "VmHWM"), vm_kib(server_pid, "VmRSS")
        t = time.perf_counter()
        n = await listing(s, base, key_a, pid)
        alone = time.perf_counter() - t
        hwm1 = vm_kib(server_pid, "VmHWM")
        print(
            f"one full listing: {n} keys in {alone:.2f} s; server RSS {rss0 / 1024:.0f} MiB, "
            f"peak {hwm1 / 1024:.0f} MiB (peak grew {(hwm1 - hwm0) / 1024:.1f} MiB)"
        )
        assert n == args.keys

        # 2. Concurrent listings while another vendor's loader checks run.
        latencies: list[float] = []
        codes: dict[str, int] = {}
        stop = asyncio.Event()

        async def checker() -> None:
            while not stop.is_set():
                t0 = time.perf_counter()
                async with s.post(base + "/api/loader/execute", json=check) as resp:
                    code = (await resp.json())["code"]
                latencies.append(time.perf_counter() - t0)
                codes[code] = codes.get(code, 0) + 1

        checkers = [asyncio.ensure_future(checker()) for _ in range(args.checkers)]
        await asyncio.sleep(0.2)
        latencies.clear()
        codes.clear()
        t = time.perf_counter()
        outs = [Path(args.tmp) / f"listing-{i}.json" for i in range(args.listings)]
        await asyncio.gather(*(curl_listing(base, key_a, pid, out) for out in outs))
        took = time.perf_counter() - t
        stop.set()
        await asyncio.gather(*checkers)
        sizes = [len(json.loads(out.read_bytes())) for out in outs]
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000  # noqa: E731
        peak = vm_kib(server_pid, "VmHWM") / 1024
        print(
            f"{args.listings} concurrent listings of {args.keys} keys (curl): {took:.2f} s "
            f"(sizes {sorted(set(sizes))}); peak server memory {peak:.0f} MiB"
        )
        print(
            f"other vendor's loader checks meanwhile: {len(latencies)} ({codes}); "
            f"p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {latencies[-1] * 1000:.1f} ms"
        )
        ok = set(codes) == {"KEY_VALID"} and p(0.99) <= 100 and sizes == [args.keys] * len(sizes)

        # 3. Deleting the project.
        t = time.perf_counter()
        async with s.delete(f"{base}/api/vendor/projects/{pid}", headers=auth_a) as resp:
            assert resp.status == 200, resp.status
        print(f"deleted the project ({args.keys} keys) in {time.perf_counter() - t:.2f} s")
        print("target met" if ok else "TARGET MISSED: every check KEY_VALID, p99 <= 100 ms")
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--listings", type=int, default=4)
    parser.add_argument("--checkers", type=int, default=4)
    asyncio.run(main(parser.parse_args()))
