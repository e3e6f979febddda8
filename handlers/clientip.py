"""Who the client is: its IP address behind trusted proxies (LEAF7_TRUSTED_PROXIES), what
per-IP rate limits count, whether it came over HTTPS, the base of the URLs leaf7 hands out."""

import functools
import ipaddress
from collections.abc import Sequence

from aiohttp import web

from handlers.appkeys import SETTINGS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=8192)  # a pure function of the text; peers repeat
def _parse_ip(value: str) -> IPAddress | None:
    """An address from a peer or an X-Forwarded-For entry (``1.2.3.4``, ``1.2.3.4:567``,
    ``::1``, ``[::1]:567``); IPv4-mapped IPv6 becomes IPv4, a zone (``fe80::1%eth0``) is
    dropped. None when it is not one."""
    value = value.strip()
    if value.startswith("["):  # [v6] or [v6]:port
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # v4:port
        value = value.partition(":")[0]
    value = value.partition("%")[0]
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(
    ip: IPAddress, proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    return any(ip.version == net.version and ip in net for net in proxies)


def client_ip(request: web.Request) -> str:
    """The client's IP address: the peer, or, only when the peer is a trusted proxy
    (LEAF7_TRUSTED_PROXIES), the right-most address of X-Forwarded-For that is not a trusted
    proxy. Entries left of that one were written by the client and are never believed. When
    every entry is trusted (or one cannot be parsed) the left-most trusted address reached is
    used. A peer without an IP address (a unix socket) is ``"unix"``."""
    remote = request.remote or ""
    proxies = request.app[SETTINGS].trusted_proxies
    if not proxies:
        return _peer_text(remote)
    peer = _parse_ip(remote)
    if peer is None:
        return "unix"
    if not _trusted(peer, proxies):
        return str(peer)
    forwarded = ",".join(request.headers.getall("X-Forwarded-For", ()))
    current = peer
    for entry in reversed(forwarded.split(",")):
        if not entry.strip():
            continue
        ip = _parse_ip(entry)
        if ip is None:
            break
        current = ip
        if not _trusted(ip, proxies):
            break
    return str(current)


def is_https(request: web.Request) -> bool:
    """The request reached leaf7 over HTTPS: its own TLS, or a TLS-terminating proxy's
    ``X-Forwarded-Proto: https``, believed only when the peer is a trusted proxy
    (LEAF7_TRUSTED_PROXIES, as ``client_ip`` decides). Of several values, the right-most is
    the one the proxy wrote (those left of it came from the client)."""
    if request.secure:  # the transport's own TLS (aiohttp reads no header for it)
        return True
    proxies = request.app[SETTINGS].trusted_proxies
    if not proxies:
        return False
    peer = _parse_ip(request.remote or "")
    if peer is None or not _trusted(peer, proxies):
        return False
    proto = ",".join(request.headers.getall("X-Forwarded-Proto", ()))
    return proto.rpartition(",")[2].strip().lower() == "https"


def base_url(request: web.Request) -> str:
    """What every absolute URL leaf7 hands out starts with (``loader.lua``, store hook URLs,
    the dashboard's loader line): LEAF7_PUBLIC_URL, else the address of the listening socket
    that accepted the connection. Never a request header: a ``Host`` (or ``X-Forwarded-Host``)
    the client chose would put its own server into the loader a cache may keep."""
    public = request.app[SETTINGS].public_url
    if public:
        return public
    transport = request.transport
    sock = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sock, tuple) and len(sock) >= 2:
        ip = _parse_ip(str(sock[0]))
        if ip is not None:
            host = f"[{ip}]" if ip.version == 6 else str(ip)
            return f"{request.scheme}://{host}:{sock[1]}"
    return f"{request.scheme}://localhost"  # a unix socket: no address to name


@functools.lru_cache(maxsize=8192)
def _peer_text(remote: str) -> str:
    peer = _parse_ip(remote)
    return "unix" if peer is None else str(peer)


def rate_subject(ip: str) -> str:
    """What per-IP limits count: the address, or its /64 for IPv6 (one host usually has a
    whole /64, so counting single IPv6 addresses would be no limit at all)."""
    return rate_subjects(ip)[0]


@functools.lru_cache(maxsize=8192)
def rate_subjects(ip: str) -> tuple[str, str | None]:
    """(``rate_subject(ip)``, the IPv6 /48 that the brute-force defence also counts, or None:
    IPv4 and anything else). One cached look-up per check."""
    if ":" in ip:
        try:
            net64 = ipaddress.IPv6Network(f"{ip}/64", strict=False).network_address
            net48 = ipaddress.IPv6Network(f"{ip}/48", strict=False).network_address
        except ValueError:
            return ip, None
        return f"{net64}/64", f"{net48}/48"
    return ip, None
