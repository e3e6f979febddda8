"""A cap on the connections one client IP may hold open (LEAF7_MAX_CONN_PER_IP).

aiohttp accepts every connection and keeps idle ones for the keep-alive timeout, so one
client could hold thousands of sockets (and file descriptors) open. ``CappedSite`` serves the
app like ``web.TCPSite`` but through ``PerIpCap``, a protocol factory that counts the open
connections of each peer address and closes a new one at once when its address already has
``cap`` open (before aiohttp sees it: no request is read). Peers in the trusted proxies
(LEAF7_TRUSTED_PROXIES) are not capped: every client behind a proxy shares its address.
"""

import asyncio
import collections
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Counted(asyncio.Protocol):
    """aiohttp's request handler behind a counter: every event is passed on unchanged."""

    __slots__ = ("_cap", "_inner", "_ip")

    def __init__(self, cap: "PerIpCap", inner: Any) -> None:
        self._cap = cap
        self._inner = inner
        self._ip: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ip = self._cap.admit(transport)
        if ip is None:  # over the cap: closed before anything is read
            if isinstance(transport, asyncio.Transport):
                transport.abort()
            else:
                transport.close()
            return
        self._ip = ip
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._ip is None:
            return  # refused: aiohttp never saw it
        self._cap.release(self._ip)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class PerIpCap:
    """Protocol factory: ``server()``'s handlers, at most ``cap`` open per peer address."""

    def __init__(self, server: web.Server, cap: int, trusted: Sequence[Network] = ()) -> None:
        self.server = server
        self.cap = cap
        self.trusted = tuple(trusted)
        self.open: collections.Counter[str] = collections.Counter()
        self.refused = 0

    def __call__(self) -> asyncio.Protocol:
        return _Counted(self, self.server())

    def admit(self, transport: asyncio.BaseTransport) -> str | None:
        """The peer's address when it may open one more connection, else None."""
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "unix"
        if self.open[ip] >= self.cap and not self._trusted(ip):
            self.refused += 1
            return None
        self.open[ip] += 1
        return ip

    def release(self, ip: str) -> None:
        self.open[ip] -= 1
        if self.open[ip] <= 0:
            del self.open[ip]

    def _trusted(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address.version == n.version and address in n for n in self.trusted)


class CappedSite(web.BaseSite):
    """``web.TCPSite`` with the connections of each client IP capped (``PerIpCap``)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        cap: int,
        *,
        trusted: Sequence[Network] = (),
        reuse_port: bool = False,
        backlog: int = 1024,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._cap = cap
        self._trusted = trusted
        self._reuse_port = reuse_port
        self.factory: PerIpCap | None = None

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None  # the runner is set up before its sites start
        self.factory = PerIpCap(server, self._cap, self._trusted)
        self._server = await asyncio.get_running_loop().create_server(
            self.factory,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
            reuse_port=self._reuse_port,
            family=socket.AF_INET6 if ":" in self._host else socket.AF_UNSPEC,
        )
