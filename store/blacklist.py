"""The vendor-wide blacklist (HWIDs and client IPs).

Entries live with the vendor; each is mirrored into every project of the vendor (same slot as
the project), so the loader check reads them inside its one script, cluster-safe. Adding an
entry writes the vendor record first and then mirrors; creating a project registers it first
and then copies the mirrors: whichever runs second sees the other, so no project misses an
entry. Attempts are counted per project and summed when listed.

An IP entry is an address or a CIDR network, normalised (``normalise_ip``). In the mirror
(``keyspace.blacklist_ips``) an address is its own field, as clients appear; a network's field
is its address in hex and its prefix length (``0a000000/8``), and the field ``/`` lists the
prefix lengths in use (``4/24 6/64``, longest first), so the loader check computes a client's
network only for those (store/lua/execute.lua; docs/security.md#the-blacklist).
"""

import asyncio
import ipaddress
import uuid

import msgspec

from store import keyspace, paging
from store.core import Core
from store.errors import EntryNotFound
from store.models import Base, iso, pairs
from store.vendors import Vendors


class BlacklistEntry(Base):
    id: str
    ip: str | None
    hwid: str | None
    reason: str
    attempts: int
    timestamp: str | None


class _Stored(msgspec.Struct):
    ip: str | None
    hwid: str | None
    reason: str
    timestamp: int


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Stored).decode


def normalise_ip(text: str) -> str:
    """A blacklist ``ip`` in canonical form: an address (``1.2.3.4``, ``2001:db8::1``) or a
    CIDR network (``10.0.0.0/8``, ``2001:db8::/32``). IPv4-mapped IPv6 becomes IPv4, a /32 or
    /128 is written as its address, and a network with host bits set becomes its network
    (``10.0.0.1/8`` -> ``10.0.0.0/8``). ValueError when ``text`` is neither."""
    text = text.strip()
    if "%" in text:  # a scoped address (fe80::1%eth0) is no client IP
        raise ValueError(text)
    net: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.ip_network(text, strict=False)
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            net = ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def _ip_field(ip: str) -> tuple[str, str]:
    """(an entry's field in the project's ``bl_ips`` mirror, its prefix token: ``''`` for an
    address, ``4/24`` or ``6/64`` for a network). See the module's docstring."""
    ip = normalise_ip(ip)  # entries written before ranges existed, too
    if "/" not in ip:
        return ip, ""
    net = ipaddress.ip_network(ip)
    return f"{net.network_address.packed.hex()}/{net.prefixlen}", f"{net.version}/{net.prefixlen}"


class Blacklist:
    def __init__(self, core: Core, vendors: Vendors) -> None:
        self.core = core
        self.vendors = vendors

    async def _entries(self, vendor_id: str) -> dict[str, _Stored]:
        flat = await self.core.call("HGETALL", keyspace.vendor_blacklist(vendor_id))
        return {entry_id: _decode(raw) for entry_id, raw in pairs(flat).items()}

    async def _mirror(self, project_ids: list[str], entry_id: str, entry: _Stored) -> None:
        field, prefix = _ip_field(entry.ip) if entry.ip else ("", "")
        script = self.core.scripts.blacklist_mirror
        await asyncio.gather(
            *(
                self.core.script(
                    script,
                    [keyspace.blacklist_hwids(p), keyspace.blacklist_ips(p)],
                    [entry_id, entry.hwid or "", field, prefix],
                )
                for p in project_ids
            )
        )

    async def add(
        self, vendor_id: str, ip: str | None, hwid: str | None, reason: str
    ) -> BlacklistEntry:
        """``ip``: an address or CIDR network (normalised; ValueError when it is neither)."""
        ip = normalise_ip(ip) if ip else None
        entry_id = str(uuid.uuid4())
        entry = _Stored(ip=ip, hwid=hwid, reason=reason, timestamp=self.core.now())
        await self.core.call("HSET", keyspace.vendor_blacklist(vendor_id), entry_id, _encode(entry))
        await self._mirror(await self.vendors.project_ids(vendor_id), entry_id, entry)
        return BlacklistEntry(
            id=entry_id, ip=ip, hwid=hwid, reason=reason, attempts=0, timestamp=iso(entry.timestamp)
        )

    async def mirror_into(self, vendor_id: str, project_id: str) -> None:
        """Copies every entry into a new project (called after the project is registered)."""
        for entry_id, entry in (await self._entries(vendor_id)).items():
            await self._mirror([project_id], entry_id, entry)

    async def page(
        self, vendor_id: str, cursor: str | None, limit: int
    ) -> tuple[list[BlacklistEntry], str | None]:
        """At most ``limit`` entries (sorted by time), walking the vendor's blacklist hash with
        HSCAN, and the cursor of the next page (None after the last); see store/paging.py."""
        if not 1 <= limit <= paging.MAX_LIMIT:
            raise ValueError("limit")
        pos = paging.decode(cursor, "bl") if cursor else paging.Position("bl")
        key = keyspace.vendor_blacklist(vendor_id)
        found: dict[str, str] = {}
        left = list(pos.left)
        if left:
            ids, left = left[:limit], left[limit:]
            raws = await self.core.call("HMGET", key, *ids)
            found.update((i, raw) for i, raw in zip(ids, raws, strict=True) if raw is not None)
        cur, after, steps = pos.cur, pos.after, 0
        while not left and len(found) < limit and cur != "end" and steps < 8:
            steps += 1
            room = limit - len(found)
            nxt_raw, flat = await self.core.call("HSCAN", key, cur, "COUNT", room)
            nxt = "end" if str(nxt_raw) == "0" else str(nxt_raw)
            items = [(f, v) for f, v in pairs(flat).items() if not after or f > after]
            if len(items) <= room:
                found.update(items)
                cur = nxt
            elif cur == "0" and nxt == "end":  # the whole hash in one step: cut it by id
                items.sort()
                found.update(items[:room])
                after = items[room - 1][0]
                break
            elif found:
                break  # does not fit: the next page takes this step again
            else:  # one step larger than the page: carry the rest
                items.sort()
                found.update(items[:room])
                left = [f for f, _ in items[room:]]
                cur = nxt
        out = await self._with_attempts(vendor_id, found)
        if cur == "end" and not left:
            return out, None
        return out, paging.Position("bl", "", cur, after, tuple(left)).encode()

    async def _with_attempts(self, vendor_id: str, found: dict[str, str]) -> list[BlacklistEntry]:
        entries = {entry_id: _decode(raw) for entry_id, raw in found.items()}
        project_ids = await self.vendors.project_ids(vendor_id)
        ids = list(entries)
        counts = await asyncio.gather(
            *(
                self.core.call("HMGET", keyspace.blacklist_attempts(p), *ids)
                for p in project_ids
                if ids
            )
        )
        out = []
        for i, entry_id in enumerate(ids):
            e = entries[entry_id]
            attempts = sum(int(c[i] or 0) for c in counts)
            out.append(
                BlacklistEntry(
                    id=entry_id,
                    ip=e.ip,
                    hwid=e.hwid,
                    reason=e.reason,
                    attempts=attempts,
                    timestamp=iso(e.timestamp),
                )
            )
        out.sort(key=lambda e: (e.timestamp or "", e.id))
        return out

    async def list(self, vendor_id: str) -> list[BlacklistEntry]:
        """Every entry, sorted by time (tools; the API pages, see ``page``)."""
        out, cursor = await self.page(vendor_id, None, paging.MAX_LIMIT)
        while cursor is not None:
            more, cursor = await self.page(vendor_id, cursor, paging.MAX_LIMIT)
            out += more
        out.sort(key=lambda e: (e.timestamp or "", e.id))
        return out

    async def delete(self, vendor_id: str, entry_id: str) -> None:
        raw = await self.core.call("HGET", keyspace.vendor_blacklist(vendor_id), entry_id)
        if raw is None:
            raise EntryNotFound
        entry = _decode(raw)
        await self.core.call("HDEL", keyspace.vendor_blacklist(vendor_id), entry_id)
        field, prefix = _ip_field(entry.ip) if entry.ip else ("", "")
        if prefix and any(_prefix(o) == prefix for o in (await self._entries(vendor_id)).values()):
            prefix = ""  # another network of that length still needs it listed
        script = self.core.scripts.blacklist_unmirror
        project_ids = await self.vendors.project_ids(vendor_id)
        await asyncio.gather(
            *(
                self.core.script(
                    script,
                    [
                        keyspace.blacklist_hwids(p),
                        keyspace.blacklist_ips(p),
                        keyspace.blacklist_attempts(p),
                    ],
                    [entry_id, entry.hwid or "", field, prefix],
                )
                for p in project_ids
            )
        )
        # Another entry may block the same HWID, IP or network, or use the prefix length just
        # unlisted (one added meanwhile): make sure its mirror still stands.
        rest = await self._entries(vendor_id)
        for other_id, other in rest.items():
            if (
                (entry.hwid and other.hwid == entry.hwid)
                or (field and other.ip and _ip_field(other.ip)[0] == field)
                or (prefix and _prefix(other) == prefix)
            ):
                await self._mirror(project_ids, other_id, other)


def _prefix(entry: _Stored) -> str:
    return _ip_field(entry.ip)[1] if entry.ip else ""
