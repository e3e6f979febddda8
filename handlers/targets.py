"""Where webhooks may be sent: public unicast addresses only, unless the operator allows more.

A vendor chooses a project's ``webhook_url`` and the server POSTs to it, so without a policy a
vendor could make the server send requests to itself, its Redis, the cloud's metadata service
(169.254.169.254) or anything else on its private network (SSRF). The policy is applied twice
with the same functions: when a project's ``webhook_url`` is saved (``url_refusal``: a 422 with
a clear reason) and by the deliverer before every POST (``url_refusal`` again, then every
address the name resolves to, ``address_allowed``; it connects to those checked addresses
only). ``LEAF7_WEBHOOK_ALLOW`` lists networks allowed in addition (``allow`` here).
"""

import ipaddress
from collections.abc import Iterable

from yarl import URL

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # ::a.b.c.d (deprecated), also :: and ::1
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known NAT64 prefix, v4 embedded
_LOOPBACKS = (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def _public_v4(addr: ipaddress.IPv4Address) -> bool:
    # is_global is False for loopback, private, link-local, CGNAT (100.64/10), 0/8,
    # reserved (240/4, broadcast), documentation and benchmarking ranges; not for multicast.
    return addr.is_global and not addr.is_multicast


def is_public(addr: Address) -> bool:
    """A public unicast address: what a webhook may reach without ``LEAF7_WEBHOOK_ALLOW``."""
    if isinstance(addr, ipaddress.IPv4Address):
        return _public_v4(addr)
    if addr.scope_id:  # fe80::1%eth0 and the like: interface-scoped, never public
        return False
    mapped = addr.ipv4_mapped  # ::ffff:a.b.c.d reaches a.b.c.d
    if mapped is not None:
        return _public_v4(mapped)
    if addr in _V4_COMPATIBLE:
        return False
    if addr in _NAT64:
        return _public_v4(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    sixtofour = addr.sixtofour  # 2002:a.b.c.d::/48
    if sixtofour is not None and not _public_v4(sixtofour):
        return False
    # is_global is True for multicast (ff0e::) and the deprecated site-local fec0::/10.
    return addr.is_global and not addr.is_multicast and not addr.is_site_local


def address_allowed(addr: Address, allow: Iterable[Network] = ()) -> bool:
    """Public, or inside one of the operator's ``allow`` networks (an IPv4-mapped IPv6
    address counts as its IPv4 address)."""
    if is_public(addr):
        return True
    forms: list[Address] = [addr]
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        forms.append(addr.ipv4_mapped)
    return any(a.version == net.version and a in net for a in forms for net in allow)


def _ipv4_part(part: str) -> int | None:
    """One part of an IPv4 address in any spelling inet_aton (and so getaddrinfo) accepts:
    decimal, ``0x`` hexadecimal, ``0`` octal."""
    if part[:2] in ("0x", "0X"):
        digits, base = part[2:] or "0", 16
    elif len(part) > 1 and part[0] == "0":
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    if not digits.isascii() or not digits.isalnum():
        return None
    try:
        return int(digits, base)
    except ValueError:
        return None


def _numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``127.0.0.1`` and its other spellings (``127.1``, ``0x7f.1``, ``2130706433``,
    ``0177.0.0.1``) as an address; None when ``host`` is not one of them."""
    parts = host.split(".")
    if 1 <= len(parts) <= 4:
        numbers = [_ipv4_part(p) if p else None for p in parts]
        if all(n is not None for n in numbers):
            *head, last = [n for n in numbers if n is not None]
            if all(n <= 255 for n in head) and last < 256 ** (4 - len(head)):
                value = last
                for i, n in enumerate(head):
                    value += n << (24 - 8 * i)
                return ipaddress.IPv4Address(value)
    return None


def literal_address(host: str) -> Address | None:
    """The address a URL host spells literally (IPv6 without brackets, IPv4 in any form);
    None for a name."""
    host = host.rstrip(".") if host.endswith(".") and ":" not in host else host
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    return _numeric_ipv4(host)


def _refuse_name(host: str, allow: tuple[Network, ...]) -> str | None:
    if not set(host) <= _HOST_CHARS:
        return f"{host!r} is not a valid host name"
    labels = host.split(".")
    if labels[-1].isdigit() or labels[-1].startswith("0x"):
        # A name ending in a number is an address to URL parsers (WHATWG), not a name.
        return f"{host!r} is not a valid address"
    loopback_allowed = any(address_allowed(a, allow) for a in _LOOPBACKS)
    if (host == "localhost" or host.endswith(".localhost")) and not loopback_allowed:
        return f"{host!r} is this server (loopback)"
    if len(labels) == 1 and not allow:
        return f"{host!r} is a local name (no dot); use a public host name"
    return None


def url_refusal(url: str, allow: tuple[Network, ...] = ()) -> str | None:
    """Why a webhook may not be sent to ``url``, or None. Literal addresses are checked
    here; names are checked again by the deliverer against every address they resolve to."""
    try:
        parsed = URL(url)
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return "not a valid http(s) URL"
    host = parsed.raw_host.lower()
    addr = literal_address(host)
    if addr is None and ":" in host:
        return f"{host!r} is not a valid IPv6 address"
    if addr is not None:
        if address_allowed(addr, allow):
            return None
        return f"{addr} is not a public address (set LEAF7_WEBHOOK_ALLOW to allow it)"
    return _refuse_name(host.rstrip("."), allow)


def endpoint(url: str) -> str:
    """``host:port`` of a URL: what the deliverer bounds and pauses per endpoint."""
    try:
        parsed = URL(url)
    except ValueError:
        return url
    return f"{(parsed.raw_host or '').lower()}:{parsed.port}"
