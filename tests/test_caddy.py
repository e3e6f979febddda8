"""HTTPS in the deployment: Debian's caddy runs deploy/Caddyfile itself (``LEAF7_TLS=internal``:
a certificate of Caddy's own CA for localhost) in front of a real ``leaf7 serve`` that lists
Caddy in LEAF7_TRUSTED_PROXIES. Over HTTPS, ``loader.lua`` is served with https:// URLs and
the dashboard sign-in sets ``Secure`` cookies; http:// is redirected to https://."""

import asyncio
import contextlib
import re
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.processes import Server, create_vendor, free_port, http, kill_valkeys

pytestmark = [pytest.mark.caddy, pytest.mark.real]

CADDY = shutil.which("caddy") or "/usr/bin/caddy"
CADDYFILE = Path(__file__).resolve().parent.parent / "deploy" / "Caddyfile"


class Caddy:
    def __init__(self, tmp: Path, domain: str, https_port: int, upstream: str) -> None:
        if not Path(CADDY).exists():
            pytest.fail(f"caddy is required at {CADDY} (.ci/run: apt-get install caddy)")
        tmp.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp
        self.http_port = free_port()
        self.log_path = tmp / "caddy.log"
        env = {
            "PATH": "/usr/bin:/bin",
            # Caddy's data (its CA, the certificates) and config in the test's directory.
            "HOME": str(tmp),
            "XDG_DATA_HOME": str(tmp / "data"),
            "XDG_CONFIG_HOME": str(tmp / "config"),
            "LEAF7_DOMAIN": domain,
            "LEAF7_TLS": "internal",
            "LEAF7_UPSTREAMS": upstream,
            "CADDY_HTTP_PORT": str(self.http_port),
            "CADDY_HTTPS_PORT": str(https_port),
            "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
        }
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [CADDY, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def root_cert(self) -> Path:
        return self.tmp / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def behind_caddy(tmp_path: Path) -> Iterator[tuple[Server, Caddy, str]]:
    data_dir = tmp_path / "data"
    port = free_port()
    base = f"https://localhost:{port}"
    env = {"LEAF7_PUBLIC_URL": base, "LEAF7_TRUSTED_PROXIES": "127.0.0.1,::1"}
    server = Server(data_dir, env)
    caddy = None
    try:
        server.wait_ready()
        caddy = Caddy(tmp_path / "caddy", f"localhost:{port}", port, f"127.0.0.1:{server.port}")
        yield server, caddy, base
    finally:
        if caddy is not None:
            caddy.stop()
        server.kill()
        kill_valkeys(data_dir)


async def _until_served(session: aiohttp.ClientSession, caddy: Caddy, url: str) -> None:
    """Waits for Caddy's CA, then for the first HTTPS answer ("does not hang": ~1 s)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        if caddy.proc.poll() is not None:
            pytest.fail(f"caddy exited with {caddy.proc.returncode}:\n{caddy.output()}")
        if caddy.root_cert.exists():
            ctx = ssl.create_default_context(cafile=str(caddy.root_cert))
            with contextlib.suppress(aiohttp.ClientError, ssl.SSLError, OSError):
                async with session.get(url, ssl=ctx) as resp:
                    if resp.status == 200:
                        return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"caddy not serving {url} in 60 s:\n{caddy.output()}")
        await asyncio.sleep(0.1)


async def test_loader_and_dashboard_over_https(behind_caddy: tuple[Server, Caddy, str]) -> None:
    server, caddy, base = behind_caddy
    vendor = create_vendor(server.data_dir, "Secure Vendor", "123456789")
    status, project = http(
        "POST", server.base + "/api/vendor/projects", {"name": "Over TLS"}, vendor["api_key"]
    )
    assert status == 201
    pid = project["project_id"]
    async with aiohttp.ClientSession() as session:
        await _until_served(session, caddy, base + "/healthz")
        tls = ssl.create_default_context(cafile=str(caddy.root_cert))

        async with session.get(f"{base}/api/loader/{pid}/loader.lua", ssl=tls) as resp:
            assert resp.status == 200
            lua = await resp.text()
        assert f'"{base}/api/loader/execute"' in lua
        assert "http://" not in lua

        # Without Caddy's CA the certificate is not trusted: it is really TLS.
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with session.get(base + "/healthz"):
                pass

        # http:// is redirected to https://
        plain = f"http://localhost:{caddy.http_port}/dashboard/signin"
        async with session.get(plain, allow_redirects=False) as resp:
            assert resp.status == 308
            assert resp.headers["Location"].startswith("https://localhost")

        # The dashboard: the sign-in form's cookie and the session's are Secure.
        async with session.get(base + "/dashboard/signin", ssl=tls) as resp:
            assert resp.status == 200
            assert "Secure" in resp.headers["Set-Cookie"]
            token = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert token is not None
        form = {"csrf": token[1], "api_key": vendor["api_key"]}
        async with session.post(
            base + "/dashboard/signin", data=form, ssl=tls, allow_redirects=False
        ) as resp:
            assert resp.status == 303, await resp.text()
            session_cookie = [c for c in resp.headers.getall("Set-Cookie") if "l7_session=" in c]
        assert len(session_cookie) == 1
        assert "; Secure" in session_cookie[0] and "HttpOnly" in session_cookie[0]
        async with session.get(base + "/dashboard/", ssl=tls) as resp:
            assert resp.status == 200
            assert "<h1>Overview</h1>" in await resp.text()
