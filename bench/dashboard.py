"""Dashboard page times with a 100,000-key project.

Starts ``leaf7 serve`` on a fresh embedded Valkey, seeds one vendor's project with ``--keys``
buyer keys (1000 per request) and redeems ``--redeem`` of them, signs in to the dashboard,
then fetches every page ``--rounds`` times one after the other and prints the median and
the max wall time per page, measured by the client over loopback (an upper bound of the
server's time). The target: each page <= 50 ms.

    python bench/dashboard.py [--keys 100000] [--redeem 2000] [--rounds 20]
"""

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout: tests/support (not shipped) is used too

from tests.support.processes import create_vendor, serving  # noqa: E402

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def run(base: str, api_key: str, keys: int, redeem: int, rounds: int) -> None:
    auth = {"Authorization": f"Bearer {api_key}"}
    async with aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post("/api/vendor/projects", json={"name": "Big"}, headers=auth) as r:
            pid = (await r.json())["project_id"]
        made: list[str] = []
        t0 = time.monotonic()
        for _ in range(keys // 1000):
            body = {"project_id": pid, "amount": 1000, "note": "batch"}
            async with s.post("/api/vendor/keys/buyer", json=body, headers=auth) as r:
                made += [k["key_id"] for k in await r.json()]
        print(f"seeded {len(made)} keys in {time.monotonic() - t0:.1f} s")
        sem = asyncio.Semaphore(32)

        async def one(i: int, key_id: str) -> None:
            async with sem:
                body = {"key_id": key_id, "discord_id": str(1000 + i % 500)}
                async with s.post("/api/vendor/keys/redeem", json=body, headers=auth) as r:
                    assert r.status == 200, await r.text()

        await asyncio.gather(*(one(i, k) for i, k in enumerate(made[:redeem])))
        print(f"redeemed {redeem}")
        async with s.get("/dashboard/signin") as r:
            token = _CSRF.search(await r.text()).group(1)  # type: ignore[union-attr]
        async with s.post("/dashboard/signin", data={"csrf": token, "api_key": api_key}) as r:
            assert r.status == 200 and "Overview" in await r.text()
        p = f"/dashboard/projects/{pid}"
        pages = {
            "overview": "/dashboard/",
            "overview: banned keys (scan 5,000)": "/dashboard/overview/banned",
            "projects": "/dashboard/projects",
            "project": p,
            "keys (buyer, first page)": p + "/keys",
            "keys (active, first page)": p + "/keys?tab=active",
            "search: key id": f"{p}/keys?q={made[-1]}",
            "search: Discord ID": p + "/keys?tab=active&q=1007",
            "search: note (scan 5,000)": p + "/keys?q=nomatch",
            "filter: banned (scan 5,000)": p + "/keys?tab=active&status=banned",
            "script": p + "/script",
            "users": "/dashboard/users?discord_id=1007",
            "blacklist": "/dashboard/blacklist",
            "events": "/dashboard/events",
            "settings": "/dashboard/settings",
        }
        print(f"{'page':32} {'median ms':>10} {'max ms':>8}")
        for name, path in pages.items():
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                async with s.get(path, allow_redirects=False) as r:
                    body = await r.read()
                    fragment = path.endswith("/banned")  # an htmx fragment
                    assert r.status == 200, (path, r.status)
                    assert fragment or b"Sign out" in body, path
                times.append((time.perf_counter() - t) * 1000)
            print(f"{name:32} {statistics.median(times):10.1f} {max(times):8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--redeem", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        vendor = create_vendor(data_dir, "Bench", "42")
        env = {"LEAF7_RATE_KEYGEN": "0", "LEAF7_RATE_VENDOR": "0", "LEAF7_ACCESS_LOG": "0"}
        with serving(data_dir, env) as server:
            asyncio.run(run(server.base, vendor["api_key"], a.keys, a.redeem, a.rounds))


if __name__ == "__main__":
    main()
