"""Redis unavailable: bounded 503s, /readyz fails while /healthz answers, and the service
recovers by itself. Each test owns a real Valkey that it kills, stops and restarts."""

import asyncio
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from service.config import Settings
from service.embedded import binary_path
from store.client_options import client_options
from tests.support.api import Api, store_of
from tests.support.faults import Faulty, app_on
from tests.support.metrics import scrape, value

UNAVAILABLE = {"detail": "Storage unavailable"}


async def _get(client: TestClient[Any, Any], path: str) -> tuple[int, Any, float]:
    t0 = time.monotonic()
    resp = await client.get(path)
    return resp.status, await resp.json(), time.monotonic() - t0


async def _execute(client: TestClient[Any, Any], run: dict[str, str]) -> tuple[int, Any, float]:
    t0 = time.monotonic()
    resp = await client.post("/api/loader/execute", json=run)
    return resp.status, await resp.json(), time.monotonic() - t0


async def _bounded(
    aiohttp_client: Any, faulty: Faulty, settings: Settings, bound: float
) -> tuple[TestClient[Any, Any], Api, dict[str, str]]:
    """An app on ``faulty`` with the storage bound ``bound``, a vendor and a valid key."""
    client = await app_on(aiohttp_client, faulty, replace(settings, redis_timeout=bound))
    return (client, *await _setup(client))


async def _setup(client: TestClient[Any, Any]) -> tuple[Api, dict[str, str]]:
    api = await Api(client, store_of(client)).login()
    project = await api.project()
    [key] = await api.keys(project["project_id"])
    run = {"project_id": project["project_id"], "script_key": key["key_id"], "hwid": "PC"}
    status, body, _ = await _execute(client, run)
    assert (status, body["code"]) == (200, "KEY_VALID")
    return api, run


async def _recovers(client: TestClient[Any, Any], run: dict[str, str], within: float) -> float:
    """Seconds until an execution check answers KEY_VALID again."""
    t0 = time.monotonic()
    while True:
        status, body, _ = await _execute(client, run)
        if status == 200:
            assert body["code"] == "KEY_VALID"
            return time.monotonic() - t0
        assert (status, body) == (503, UNAVAILABLE)
        assert time.monotonic() - t0 < within, "did not recover"
        await asyncio.sleep(0.02)


async def test_client_options_surface_a_dead_server_fast(tmp_path: Path) -> None:
    """redis-py's default retry policy takes ~4 s to report a refused connection."""
    client = Redis(unix_socket_path=str(tmp_path / "gone.sock"), **client_options(2.0))
    try:
        t0 = time.monotonic()
        with pytest.raises(RedisConnectionError):
            await client.ping()
        # At once (a few ms), not after the ~4 s of retries: 2 s is a margin, not a target.
        assert time.monotonic() - t0 < 2.0
    finally:
        await client.aclose()


async def test_sigkill_answers_503_fast_and_recovers_on_restart(
    aiohttp_client: Any, faulty: Faulty, settings: Settings
) -> None:
    # A long bound, so that "answered without waiting for it" has a wide margin.
    bound = 20.0
    client, api, run = await _bounded(aiohttp_client, faulty, settings, bound)
    faulty.kill()

    # A dead server refuses connections: the answer is immediate (a few ms), never the bound.
    for _ in range(3):
        status, body, took = await _execute(client, run)
        assert (status, body) == (503, UNAVAILABLE)
        assert took < bound / 4
    resp = await client.get("/api/vendor/keys/buyer", headers=api.auth)
    assert (resp.status, await resp.json()) == (503, UNAVAILABLE)
    resp = await client.post(
        "/api/vendor/keys/buyer", json={"project_id": run["project_id"]}, headers=api.auth
    )
    assert (resp.status, await resp.json()) == (503, UNAVAILABLE)
    status, body, took = await _get(client, "/readyz")
    assert (status, body) == (503, UNAVAILABLE) and took < bound / 4
    status, body, _ = await _get(client, "/healthz")
    assert (status, body) == (200, {"status": "ok"})

    m = await scrape(client)
    assert value(m, "leaf7_redis_errors_total", kind="connection") == 6  # 5 requests + readyz

    faulty.start()  # same data directory, same socket path
    took = await _recovers(client, run, within=10.0)  # does not hang (a few ms here)
    print(f"\nSIGKILL: recovered {took * 1000:.1f} ms after the restart")
    assert (await _get(client, "/readyz"))[:2] == (200, {"status": "ok"})
    # Nothing acknowledged before the kill was lost; vendor writes work again.
    assert len(await api.call("GET", "/api/vendor/keys/buyer")) == 1
    assert len(await api.keys(run["project_id"], amount=3)) == 3


async def test_sigstop_answers_503_within_the_bound_and_recovers(
    aiohttp_client: Any, faulty: Faulty, settings: Settings
) -> None:
    bound = 0.5
    client, api, run = await _bounded(aiohttp_client, faulty, settings, bound)
    faulty.sigstop()  # sockets stay open, nothing answers

    # Concurrent checks (they share the auto-pipeline connection) and a vendor write (a pool
    # connection, then WAITAOF) all fail within the bound.
    async def vendor_write() -> tuple[int, Any, float]:
        t0 = time.monotonic()
        resp = await client.post(
            "/api/vendor/keys/buyer", json={"project_id": run["project_id"]}, headers=api.auth
        )
        return resp.status, await resp.json(), time.monotonic() - t0

    results = await asyncio.gather(*(_execute(client, run) for _ in range(16)), vendor_write())
    for status, body, took in results:
        assert (status, body) == (503, UNAVAILABLE)
        # Waited the bound (behaviour), and then no more than a generous margin (no hang).
        assert bound * 0.9 <= took < bound + 5.0, took
    took_all = [took for _, _, took in results]
    print(f"\nSIGSTOP, bound {bound} s: 503 after {min(took_all):.3f}-{max(took_all):.3f} s")
    status, body, took = await _get(client, "/readyz")
    assert (status, body) == (503, UNAVAILABLE)
    assert took < bound + 5.0
    status, body, _ = await _get(client, "/healthz")  # needs no storage: answered, not 503
    assert (status, body) == (200, {"status": "ok"})
    assert store_of(client).core.timeouts >= 17
    m = await scrape(client)
    # 17 requests + readyz. (The vendor write may meet the stopped server as a socket timeout of
    # the pool connection, which counts as a connection error: 503 within the bound either way.)
    errors = value(m, "leaf7_redis_errors_total", kind="timeout")
    assert errors + value(m, "leaf7_redis_errors_total", kind="connection") == 18
    assert errors >= 17
    assert value(m, "leaf7_store_timeouts_total") >= 17

    faulty.sigcont()
    await _recovers(client, run, within=10.0)
    assert (await _get(client, "/readyz"))[:2] == (200, {"status": "ok"})
    keys = await api.call("GET", f"/api/vendor/keys/buyer?project_id={run['project_id']}")
    # The timed-out generation may or may not have been applied once the server resumed
    # (a 503 after a timeout means "unknown outcome"); the acknowledged key is there.
    assert run["script_key"] in {k["key_id"] for k in keys}
    assert len(await api.keys(run["project_id"], amount=2)) == 2


async def test_starts_while_redis_is_down_and_recovers(
    aiohttp_client: Any, faulty: Faulty, settings: Settings
) -> None:
    faulty.kill()  # the socket file is left behind, refusing connections
    client = await app_on(aiohttp_client, faulty, settings)
    assert (await _get(client, "/healthz"))[:2] == (200, {"status": "ok"})
    assert (await _get(client, "/readyz"))[:2] == (503, UNAVAILABLE)
    resp = await client.post(
        "/api/loader/execute",
        json={"project_id": "00000000-0000-4000-8000-000000000000", "script_key": "k", "hwid": "h"},
    )
    assert (resp.status, await resp.json()) == (503, UNAVAILABLE)
    faulty.start()
    assert (await _get(client, "/readyz"))[:2] == (200, {"status": "ok"})
    _, run = await _setup(client)  # scripts are sent on first use
    assert run["script_key"]


async def test_stopped_server_replaced_behind_the_same_address(
    aiohttp_client: Any, faulty: Faulty, settings: Settings, tmp_path: Path
) -> None:
    """The old server stops answering and never comes back; a new one takes over its socket
    path (a failover behind the same address). The loader's pipelined connection to the old
    one stays open, so the store must drop it after a timeout, or every check would 503 for
    as long as that socket lives."""
    bound = 0.3
    client, _, run = await _bounded(aiohttp_client, faulty, settings, bound)
    faulty.sigstop()
    socket_path = faulty.server.socket_path
    new_dir = tmp_path / "new"
    new_dir.mkdir()
    replacement = _valkey_on(socket_path, new_dir)
    try:
        deadline = time.monotonic() + 5
        while not socket_path.exists() or socket_path.stat().st_ino == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        # The new server is empty: the check reaching it answers PROJECT_NOT_FOUND (200).
        t0 = time.monotonic()
        while True:
            status, body, _ = await _execute(client, run)
            if status == 200:
                break
            assert (status, body) == (503, UNAVAILABLE)
            assert time.monotonic() - t0 < 20 * bound, "still stuck on the stopped server"
        assert body["code"] == "PROJECT_NOT_FOUND"
        assert store_of(client).core.pipe_aborts >= 1
        print(f"\nfailover: checks answered by the new server after {time.monotonic() - t0:.2f} s")
    finally:
        replacement.kill()
        replacement.wait()


def _valkey_on(socket_path: Path, data_dir: Path) -> "subprocess.Popen[bytes]":
    """A bare valkey-server on ``socket_path`` (it unlinks and rebinds the path)."""
    args = [str(binary_path()), "--port", "0", "--unixsocket", str(socket_path)]
    args += ["--dir", str(data_dir), "--save", ""]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
