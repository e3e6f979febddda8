"""The vendor-wide blacklist (HWIDs and client IPs).

Entries live with the vendor; each is mirrored into every project of the vendor (same slot as
the project), so the loader check reads them inside its one script, cluster-safe. Adding an
entry writes the vendor record first and then mirrors; creating a project registers it first
and then copies the mirrors: whichever runs second sees the other, so no project misses an
entry. Attempts are counted per project and summed when listed.
"""

import asyncio
import uuid

import msgspec

from store import keyspace
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


class Blacklist:
    def __init__(self, core: Core, vendors: Vendors) -> None:
        self.core = core
        self.vendors = vendors

    async def _entries(self, vendor_id: str) -> dict[str, _Stored]:
        flat = await self.core.call("HGETALL", keyspace.vendor_blacklist(vendor_id))
        return {entry_id: _decode(raw) for entry_id, raw in pairs(flat).items()}

    async def _mirror(self, project_ids: list[str], entry_id: str, entry: _Stored) -> None:
        calls = []
        for p in project_ids:
            if entry.hwid:
                calls.append(
                    self.core.call("HSET", keyspace.blacklist_hwids(p), entry.hwid, entry_id)
                )
            if entry.ip:
                calls.append(self.core.call("HSET", keyspace.blacklist_ips(p), entry.ip, entry_id))
        await asyncio.gather(*calls)

    async def add(
        self, vendor_id: str, ip: str | None, hwid: str | None, reason: str
    ) -> BlacklistEntry:
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

    async def list(self, vendor_id: str) -> list[BlacklistEntry]:
        entries = await self._entries(vendor_id)
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

    async def delete(self, vendor_id: str, entry_id: str) -> None:
        raw = await self.core.call("HGET", keyspace.vendor_blacklist(vendor_id), entry_id)
        if raw is None:
            raise EntryNotFound
        entry = _decode(raw)
        await self.core.call("HDEL", keyspace.vendor_blacklist(vendor_id), entry_id)
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
                    [entry_id, entry.hwid or "", entry.ip or ""],
                )
                for p in project_ids
            )
        )
        # Another entry may block the same HWID or IP: make sure its mirror still stands.
        rest = await self._entries(vendor_id)
        for other_id, other in rest.items():
            if (entry.hwid and other.hwid == entry.hwid) or (entry.ip and other.ip == entry.ip):
                await self._mirror(project_ids, other_id, other)
