"""Scale-out with real processes: ``leaf7 serve --workers 2`` on one port (one embedded Valkey,
SIGTERM drains in-flight requests), and two ``leaf7 serve`` instances sharing one Valkey
behind a real nginx (Debian's ``/usr/sbin/nginx``, run from a config in a tmp directory)."""

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from service.embedded import EmbeddedValkey
from tests.support.processes import (
    LEAF7,
    Server,
    _env,
    assert_no_valkey,
    create_vendor,
    free_port,
    kill_valkeys,
    valkey_pids,
)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
EXECUTE = "/api/loader/execute"


class Serve(Server):
    """``leaf7 serve [args]`` as a subprocess on a free port, waited for without blocking the
    event loop (``/readyz``)."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__(data_dir, env, args)

    async def wait_ready(self, limit: float = 20.0) -> None:  # type: ignore[override]
        await until_ready(self.proc, self.base + "/readyz", limit, "leaf7 serve", self.output)


async def until_ready(
    proc: "subprocess.Popen[bytes]", url: str, limit: float, name: str, log: Callable[[], str]
) -> None:
    """Polls ``url`` until it answers 200; fails (with ``log()``) when ``proc`` exits first or
    after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as http:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}:\n{log()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                pytest.fail(f"{name} not ready in {limit} s:\n{log()}")
            await asyncio.sleep(0.05)


def children(pid: int) -> list[int]:
    """The worker processes of a ``--workers`` parent (not its embedded Valkey)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = []
    with contextlib.suppress(OSError):
        for child in path.read_text().split():
            with contextlib.suppress(OSError):
                if b"--reuse-port" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
    return found


def gone(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    return True


async def worker_pids(base: str, expect: int, limit: float = 15.0) -> set[int]:
    """The X-Leaf7-Worker of /healthz over fresh connections (SO_REUSEPORT spreads them by
    source port), until ``expect`` different workers have answered (workers start a little
    apart) and at least 20 connections were made."""
    pids: set[int] = set()
    deadline = time.monotonic() + limit
    n = 0
    while (len(pids) < expect or n < 20) and time.monotonic() < deadline:
        n += 1
        conn = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=conn) as http, http.get(base + "/healthz") as r:
            assert r.status == 200
            pids.add(int(r.headers["X-Leaf7-Worker"]))
        if len(pids) < expect:
            await asyncio.sleep(0.02)
    return pids


async def _json(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, status: int = 200
) -> Any:
    async with http.request(method, url, json=body) as resp:
        data = await resp.json()
        assert resp.status == status, (resp.status, data)
        return data


# ---- --workers 2 ----------------------------------------------------------------------------


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[Serve, Path]]:
    data_dir = tmp_path / "data"
    server = Serve(data_dir, "--workers", "2")
    try:
        yield server, data_dir
    finally:
        for pid in children(server.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.kill()
        kill_valkeys(data_dir)


async def test_workers_share_one_port_and_one_valkey(workers: tuple[Serve, Path]) -> None:
    server, data_dir = workers
    await server.wait_ready()
    kids = children(server.proc.pid)
    assert len(kids) == 2
    assert await worker_pids(server.base, 2) == set(kids)  # both answer on the one port
    assert len(valkey_pids(data_dir)) == 1  # started once by the parent, shared

    # Both workers serve the same data: what one writes the other reads.
    vendor = create_vendor(data_dir, "acme", "1")
    headers = {"Authorization": f"Bearer {vendor['api_key']}"}
    base = server.base
    async with aiohttp.ClientSession(headers=headers) as http:
        project = await _json(http, "POST", base + "/api/vendor/projects", {"name": "P"}, 201)
        pid = project["project_id"]
        [key] = await _json(http, "POST", base + "/api/vendor/keys/buyer", {"project_id": pid})
    body = {"project_id": pid, "script_key": key["key_id"], "hwid": "pc"}
    codes = []
    for _ in range(20):  # fresh connections: spread over both workers
        conn = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=conn) as http:
            codes.append((await _json(http, "POST", base + EXECUTE, body))["key"])
    assert sorted(c["total_executions"] for c in codes) == list(range(1, 21))


async def test_sigterm_drains_in_flight_requests(workers: tuple[Serve, Path]) -> None:
    """Slow uploads are in flight on both workers when the parent gets SIGTERM: each one
    completes with 200, then every process exits and the embedded Valkey is stopped."""
    server, data_dir = workers
    await server.wait_ready()
    vendor = create_vendor(data_dir, "acme", "1")
    headers = {"Authorization": f"Bearer {vendor['api_key']}"}
    base = server.base
    async with aiohttp.ClientSession(headers=headers) as http:
        project = await _json(http, "POST", base + "/api/vendor/projects", {"name": "P"}, 201)
    url = f"{base}/api/vendor/projects/{project['project_id']}/source"
    started = asyncio.Event()

    async def slow_upload(n: int) -> tuple[int, Any]:
        async def body() -> AsyncIterator[bytes]:
            yield b'{"source": "print(' + str(n).encode()
            started.set()
            for _ in range(10):  # about a second of streaming, across the SIGTERM
                await asyncio.sleep(0.1)
                yield b" "
            yield b')"}'

        conn = aiohttp.TCPConnector(force_close=True)
        async with (
            aiohttp.ClientSession(headers=headers, connector=conn) as http,
            http.put(url, data=body(), headers={"Content-Type": "application/json"}) as resp,
        ):
            return resp.status, await resp.json()

    kids = children(server.proc.pid)
    assert await worker_pids(server.base, 2) == set(kids)  # both are up
    uploads = [asyncio.ensure_future(slow_upload(n)) for n in range(12)]  # on both workers
    await started.wait()
    await asyncio.sleep(0.3)  # every upload is connected and mid-body
    server.proc.send_signal(signal.SIGTERM)
    results = await asyncio.wait_for(asyncio.gather(*uploads), 20)
    assert [status for status, _ in results] == [200] * 12, results
    assert sorted(r["version"] for _, r in results) == sorted(f"0.0.{i}" for i in range(1, 13))
    assert await asyncio.to_thread(server.proc.wait, 20) == 0
    assert all(gone(pid) for pid in kids)
    assert_no_valkey(data_dir)
    # New connections are refused once it is gone.
    with pytest.raises(aiohttp.ClientError):
        async with aiohttp.ClientSession() as http, http.get(base + "/healthz"):
            pass


async def test_workers_exit_when_the_parent_is_killed(workers: tuple[Serve, Path]) -> None:
    server, _ = workers
    await server.wait_ready()
    kids = children(server.proc.pid)
    assert await worker_pids(server.base, 2) == set(kids)
    server.proc.kill()  # SIGKILL: nothing is forwarded
    server.proc.wait(5)
    deadline = time.monotonic() + 10
    while not all(gone(pid) for pid in kids):
        assert time.monotonic() < deadline, "orphaned workers kept running"
        await asyncio.sleep(0.1)


# ---- two instances behind nginx -------------------------------------------------------------


DEPLOY_NGINX = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"


def nginx_conf(tmp: Path, port: int, upstreams: list[int]) -> str:
    """deploy/nginx.conf, rewritten to run here: the test's instances as upstream servers,
    a loopback port, pid, logs and temp files in ``tmp``."""
    conf = DEPLOY_NGINX.read_text()
    servers = "".join(
        f"        server 127.0.0.1:{p} max_fails=3 fail_timeout=5s;\n" for p in upstreams
    )
    conf, n = re.subn(r"(?m)^\s*server leaf7-\w+:8000[^;]*;\n", "", conf)
    assert n == 2, "deploy/nginx.conf: expected two upstream servers"
    conf = conf.replace("upstream leaf7 {\n", "upstream leaf7 {\n" + servers, 1)
    user = "user root;" if os.geteuid() == 0 else ""
    rules = [
        (r"(?m)^user [^;]+;", user),
        (r"(?m)^pid [^;]+;", f"pid {tmp}/nginx.pid;"),
        (r"(?m)^error_log [^;]+;", f"error_log {tmp}/error.log warn;"),
        (r"(?m)^(\s*)listen 80;", rf"\1listen 127.0.0.1:{port};"),
        (r"(?m)^worker_processes [^;]+;", "daemon off;\nworker_processes 1;"),
        (r"(?m)^(\s*)worker_connections [^;]+;", r"\1worker_connections 512;"),
        (
            r"(?m)^http \{",
            "http {\n"
            + "".join(
                f"    {kind}_temp_path {tmp}/{kind};\n"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            ),
        ),
    ]
    for pattern, replacement in rules:
        conf, n = re.subn(pattern, replacement, conf, count=1)
        assert n == 1, f"deploy/nginx.conf: no match for {pattern}"
    return conf


class Nginx:
    def __init__(self, tmp: Path, upstreams: list[int]) -> None:
        if not Path(NGINX).exists():
            pytest.fail(
                f"nginx is required at {NGINX} (.ci/run installs it: apt-get install nginx)"
            )
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        (tmp / "nginx.conf").write_text(nginx_conf(tmp, self.port, upstreams))
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, limit: float = 10.0) -> None:
        await until_ready(self.proc, self.base + "/healthz", limit, "nginx", self.error_log)

    def error_log(self) -> str:
        return (self.tmp / "error.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


SHARED_SECRET = "test-secret-shared-by-every-instance"


@pytest.fixture
async def balanced(tmp_path: Path) -> AsyncIterator[tuple[Serve, Serve, Nginx, Path]]:
    """One Valkey, two ``leaf7 serve`` on it, nginx in front of both."""
    data_dir = tmp_path / "data"
    valkey = await asyncio.to_thread(EmbeddedValkey(tmp_path / "valkey").start)
    # Instances on one Redis must share the API key secret.
    env = {
        "REDIS_URL": valkey.url,
        "LEAF7_TRUSTED_PROXIES": "127.0.0.1",
        "LEAF7_SECRET": SHARED_SECRET,
    }
    a = Serve(data_dir, env=env)
    b = Serve(data_dir, env=env)
    nginx = None
    try:
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        nginx = Nginx(tmp_path / "nginx", [a.port, b.port])
        await nginx.wait_ready()
        yield a, b, nginx, tmp_path
    finally:
        if nginx is not None:
            nginx.stop()
        for s in (a, b):
            s.kill()
        await asyncio.to_thread(valkey.stop)


@pytest.mark.nginx
async def test_two_instances_behind_nginx(balanced: tuple[Serve, Serve, Nginx, Path]) -> None:
    a, b, nginx, tmp = balanced
    from redis.asyncio import Redis

    from store import Store

    redis_url = EmbeddedValkey(tmp / "valkey").url
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        store = Store(client, secret=SHARED_SECRET.encode())
        _, api_key = await store.vendors.create("acme", "1")
        await store.core.pipe.close()
    finally:
        await client.aclose()
    auth = {"Authorization": f"Bearer {api_key}"}

    async with aiohttp.ClientSession(headers=auth) as http:
        # nginx spreads requests over both instances (keepalive upstream connections).
        pids = set()
        for _ in range(8):
            async with http.get(nginx.base + "/healthz") as resp:
                assert resp.status == 200
                pids.add(resp.headers["X-Leaf7-Worker"])
        assert pids == {str(a.proc.pid), str(b.proc.pid)}

        project = await _json(http, "POST", nginx.base + "/api/vendor/projects", {"name": "P"}, 201)
        pid = project["project_id"]
        src = {"source": "print(L7_ScriptName)"}
        await _json(http, "PUT", f"{a.base}/api/vendor/projects/{pid}/source", src)
        body = {"project_id": pid, "amount": 3}
        k1, k2, k3 = await _json(http, "POST", nginx.base + "/api/vendor/keys/buyer", body)

        async def run(base: str, key: dict[str, Any], hwid: str) -> dict[str, Any]:
            body = {"project_id": pid, "script_key": key["key_id"], "hwid": hwid}
            return await _json(http, "POST", base + EXECUTE, body)  # type: ignore[no-any-return]

        # Executions through A, B and nginx (both) all count, exactly.
        valid = 0
        for i in range(30):
            base = (a.base, b.base, nginx.base)[i % 3]
            data = await run(base, k1, "pc-1")
            assert data["code"] == "KEY_VALID", data
            assert data["key"]["total_executions"] == i + 1
            valid += 1
        results = await asyncio.gather(
            *(run((a.base, b.base, nginx.base)[i % 3], k2, "pc-2") for i in range(60))
        )
        assert all(r["code"] == "KEY_VALID" for r in results)
        valid += 60
        assert sorted(r["key"]["total_executions"] for r in results) == list(range(1, 61))
        rows = await _json(http, "GET", f"{nginx.base}/api/vendor/keys/active?project_id={pid}")
        assert sum(r["total_executions"] for r in rows) == valid

        # A new source through A is served by B's very next check (B had the old one cached).
        assert (await run(b.base, k1, "pc-1"))["script"].endswith(src["source"])
        await _json(http, "PUT", f"{a.base}/api/vendor/projects/{pid}/source", {"source": "v2()"})
        assert (await run(b.base, k1, "pc-1"))["script"] == "v2()"

        # A ban through A is seen by the very next execution through B, and through nginx.
        await _json(http, "POST", f"{a.base}/api/vendor/keys/active/{k1['key_id']}/ban")
        assert (await run(b.base, k1, "pc-1"))["code"] == "KEY_BANNED"
        for _ in range(4):
            assert (await run(nginx.base, k1, "pc-1"))["code"] == "KEY_BANNED"
            assert (await run(nginx.base, k3, "pc-1"))["code"] == "HWID_BANNED"
        # ...and the unban through B, by the next one through A.
        await _json(http, "POST", f"{b.base}/api/vendor/keys/active/{k1['key_id']}/unban")
        assert (await run(a.base, k1, "pc-1"))["code"] == "KEY_VALID"


# ---- gunicorn's aiohttp worker --------------------------------------------------------------


async def test_gunicorn_aiohttp_worker(tmp_path: Path) -> None:
    """The documented alternative: ``service.app:gunicorn_app`` under gunicorn's uvloop
    aiohttp worker, two workers on one Valkey; SIGTERM stops it cleanly."""
    gunicorn = LEAF7.parent / "gunicorn"
    valkey = await asyncio.to_thread(EmbeddedValkey(tmp_path / "valkey").start)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**_env(tmp_path / "data"), "REDIS_URL": valkey.url, "LEAF7_SECRET": SHARED_SECRET}
    log = tmp_path / "gunicorn.log"
    cmd = [str(gunicorn), "service.app:gunicorn_app", "--bind", f"127.0.0.1:{port}"]
    cmd += ["--workers", "2", "--worker-class", "aiohttp.GunicornUVLoopWebWorker"]
    cmd += ["--graceful-timeout", "10", "--log-file", str(log)]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL)  # noqa: ASYNC220
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")
            with contextlib.suppress(aiohttp.ClientError):
                async with aiohttp.ClientSession() as http, http.get(base + "/readyz") as r:
                    if r.status == 200:
                        break
            assert time.monotonic() < deadline, "gunicorn did not become ready"
            await asyncio.sleep(0.1)
        assert len(await worker_pids(base, 2)) == 2

        from redis.asyncio import Redis

        from store import Store

        client = Redis.from_url(valkey.url, decode_responses=True)
        store = Store(client, secret=SHARED_SECRET.encode())
        try:
            _, api_key = await store.vendors.create("acme", "1")
        finally:
            await store.core.pipe.close()
            await client.aclose()
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {api_key}"}) as http:
            project = await _json(http, "POST", base + "/api/vendor/projects", {"name": "P"}, 201)
            [key] = await _json(
                http, "POST", base + "/api/vendor/keys/buyer", {"project_id": project["project_id"]}
            )
            body = {"project_id": project["project_id"], "script_key": key["key_id"], "hwid": "h"}
            assert (await _json(http, "POST", base + EXECUTE, body))["code"] == "KEY_VALID"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        await asyncio.to_thread(valkey.stop)
