"""Export and import: a project's data out as JSON lines, keys of another system in.

**Export** (``export``) walks the project's key index page by page (``store/lua/list_keys.lua``,
at most ``paging.MAX_LIMIT`` keys per script call, the same steps as the key listings) and
hands out one batch of lines at a time, so a project of any size is exported in bounded
memory: the project's settings, its hosted source, every key (a ``buyer_key`` line for an
unredeemed key, an ``active_key`` line for a redeemed one), the vendor's blacklist entries
(they apply to every project of the vendor), and an ``end`` line with the counts. The export
is not a snapshot: a key that changes while it runs is exported in either state.

**Import** (``import_keys``) brings at most ``MAX_IMPORT`` keys into a project, keeping their
ids. Key ids are private to their vendor (store/keyrefs.py): only the vendor's own refs are
read or claimed, so an import answers the same whether or not another vendor holds an id. The
vendor's ``key_id`` -> project refs live in slots of their own, so they are claimed first,
each with ``SET NX`` (``PXAT`` the key's end for an expiring key, as a redeemed key's ref
here); an id the vendor holds in another of its projects (its ref, or an old-layout ref that
names one of the vendor's projects) is refused for that entry and nothing of it is written.
Then one script (``store/lua/import_keys.lua``) checks
the owner and writes every accepted key in the project's slot at once: the hash with the
fields and TTL a key made here has (``generate_keys.lua``, ``redeem.lua``, ``ban.lua``), its
indexes, the HWID block of a permanent ban. A key already in the project is never changed
(``unchanged``), so importing a batch again changes nothing. Refs claimed for entries that
were not written are dropped again.
"""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from store import keyrefs, keyspace, paging
from store.blacklist import Blacklist, BlacklistEntry
from store.core import Core
from store.models import Base, Project, iso, key_type, pairs
from store.projects import Projects

# Keys of one import call at most (one script call in the project's slot).
MAX_IMPORT = 1000


# ---- export lines: one JSON object per line, told apart by "type" ---------------------------


class ProjectLine(Project, tag_field="type", tag="project"):
    """The project's settings."""


class SourceLine(Base, tag_field="type", tag="source"):
    """The hosted script (null when none was uploaded) and its version."""

    version: str
    source: str | None


class BuyerKeyLine(Base, tag_field="type", tag="buyer_key"):
    """An unredeemed key: its duration counts from its redemption (all 0: lifetime)."""

    key_id: str
    created_at: str | None
    key_days: int
    key_hours: int
    key_minutes: int
    redeemed: bool = False
    note: str | UnsetType = UNSET
    key_type: str = "paid"  # "free" (docs/free-keys.md) or "paid" (`type` is the line's tag)


class ActiveKeyLine(Base, tag_field="type", tag="active_key"):
    """A redeemed key, with everything it has gathered since."""

    key_id: str
    created_at: str | None
    redeemed_at: str | None
    expires_at: str | None
    discord_id: str | None
    hwid: str | None
    banned: bool
    ban_reason: str | None
    ban_expires_at: str | None
    total_executions: int
    hwid_resets: int
    last_execution: str | None
    last_reset: str | None
    last_self_reset: str | None
    redeemed: bool = True
    note: str | UnsetType = UNSET
    key_type: str = "paid"


class BlacklistLine(BlacklistEntry, tag_field="type", tag="blacklist"):
    """One of the vendor's blacklist entries (each applies to every project of the vendor)."""


class EndLine(Base, tag_field="type", tag="end"):
    """The last line: what the export held. A file without it is incomplete."""

    buyer_keys: int
    active_keys: int
    blacklist: int


ExportLine = ProjectLine | SourceLine | BuyerKeyLine | ActiveKeyLine | BlacklistLine | EndLine


def _int(h: dict[str, str], name: str) -> int:
    return int(h.get(name) or 0)


def key_line(key_id: str, h: dict[str, str], now: int) -> BuyerKeyLine | ActiveKeyLine:
    """The export line of one key hash."""
    note = h.get("note")
    if "redeemed_at" not in h:
        return BuyerKeyLine(
            key_id=key_id,
            created_at=iso(h.get("created_at")),
            key_days=_int(h, "key_days"),
            key_hours=_int(h, "key_hours"),
            key_minutes=_int(h, "key_minutes"),
            note=UNSET if note is None else note,
            key_type=key_type(h),
        )
    until = h.get("ban_until")
    # A timed ban that has ended counts as none (as everywhere: store/models.py).
    banned = h.get("banned") == "1" and (not until or now < int(until))
    return ActiveKeyLine(
        key_id=key_id,
        created_at=iso(h.get("created_at")),
        redeemed_at=iso(h.get("redeemed_at")),
        expires_at=iso(h.get("expires_at")),
        discord_id=h.get("discord_id") or None,
        hwid=h.get("hwid") or None,
        banned=banned,
        ban_reason=h.get("ban_reason") if banned else None,
        ban_expires_at=iso(until) if banned else None,
        total_executions=_int(h, "total_executions"),
        hwid_resets=_int(h, "hwid_resets"),
        last_execution=iso(h.get("last_execution")),
        last_reset=iso(h.get("last_reset")),
        last_self_reset=iso(h.get("last_self_reset")),
        note=UNSET if note is None else note,
        key_type=key_type(h),
    )


# ---- import -------------------------------------------------------------------------------


class ImportEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One key to import, validated (handlers/transfer.py): times are epoch seconds.

    ``redeemed``: an active key (else a buyer key, which takes only ``created_at``, the
    durations and ``note``). A redeemed key expires at ``expires_at``, or the durations
    counted from now when it has none, or never (both absent). ``ban_until``: a timed ban's
    end (a banned key without it is banned for good, its HWID blocked in the project)."""

    key_id: str
    redeemed: bool = False
    created_at: int | None = None
    key_days: int = 0
    key_hours: int = 0
    key_minutes: int = 0
    note: str | None = None
    discord_id: str | None = None
    hwid: str | None = None
    redeemed_at: int | None = None
    expires_at: int | None = None
    total_executions: int = 0
    hwid_resets: int = 0
    last_execution: int | None = None
    last_reset: int | None = None
    last_self_reset: int | None = None
    banned: bool = False
    ban_reason: str | None = None
    ban_until: int | None = None


Status = Literal["imported", "unchanged", "refused"]


class ImportResult(Base, omit_defaults=True):
    key_id: str
    status: Status
    detail: str | UnsetType = UNSET


class ImportSummary(Base):
    imported: int
    unchanged: int
    refused: int
    results: list[ImportResult]


EXISTS_ELSEWHERE = "key_id already exists in another of your projects"
EXPIRED = "expired longer ago than the retention (LEAF7_EXPIRED_RETENTION): it would be gone"


class _Prepared(msgspec.Struct):
    entry: ImportEntry
    fields: list[str]  # the key hash, flat
    expires: str  # epoch s, '' for none
    ban_hwid: str  # the HWID a permanent ban blocks, '' for none


def _prepare(e: ImportEntry, now: int) -> _Prepared:
    """The key hash an entry becomes, as a key made here would have it."""
    h: dict[str, str] = {
        "created_at": str(e.created_at if e.created_at is not None else e.redeemed_at or now),
        "key_days": str(e.key_days),
        "key_hours": str(e.key_hours),
        "key_minutes": str(e.key_minutes),
    }
    if e.note is not None:
        h["note"] = e.note
    expires, ban_hwid = "", ""
    if e.redeemed:
        if e.expires_at is not None:
            expires = str(e.expires_at)
        else:
            total = e.key_days * 86400 + e.key_hours * 3600 + e.key_minutes * 60
            expires = str(now + total) if total > 0 else ""
        h["redeemed_at"] = str(e.redeemed_at if e.redeemed_at is not None else now)
        h["expires_at"] = expires
        h["hwid_resets"] = str(e.hwid_resets)
        h["total_executions"] = str(e.total_executions)
        optional = {
            "discord_id": e.discord_id,
            "hwid": e.hwid,
            "last_execution": e.last_execution,
            "last_reset": e.last_reset,
            "last_self_reset": e.last_self_reset,
        }
        h.update((name, str(v)) for name, v in optional.items() if v is not None)
        # A timed ban that has already ended is no ban (store/lua/ban.lua).
        if e.banned and (e.ban_until is None or now < e.ban_until):
            h["banned"] = "1"
            if e.ban_reason is not None:
                h["ban_reason"] = e.ban_reason
            if e.ban_until is not None:
                h["ban_until"] = str(e.ban_until)
            elif e.hwid is not None:
                h["banned_hwid"] = ban_hwid = e.hwid
    return _Prepared(e, [x for kv in h.items() for x in kv], expires, ban_hwid)


class Transfer:
    def __init__(self, core: Core, projects: Projects, blacklist: Blacklist) -> None:
        self.core = core
        self.projects = projects
        self.blacklist = blacklist

    # ---- export ---------------------------------------------------------------------------

    async def export(
        self, vendor_id: str, project_id: str
    ) -> AsyncGenerator[list[ExportLine], None]:
        """The project's lines in batches (the first: project and source; then at most
        ``paging.MAX_LIMIT`` keys or blacklist entries per batch; the last: the end line).
        ``ProjectNotFound`` before the first batch for a project that is not the vendor's."""
        project = await self.projects.get(vendor_id, project_id)
        source = await self.core.call("GET", keyspace.project_source(project_id))
        head: list[ExportLine] = [
            ProjectLine(**{f: getattr(project, f) for f in project.__struct_fields__}),
            SourceLine(version=project.version, source=source),
        ]
        yield head
        buyers = actives = 0
        async for batch in self._keys(vendor_id, project_id):
            buyers += sum(isinstance(line, BuyerKeyLine) for line in batch)
            actives += sum(isinstance(line, ActiveKeyLine) for line in batch)
            yield batch
        entries = 0
        cursor: str | None = None
        while True:
            page, cursor = await self.blacklist.page(vendor_id, cursor, paging.MAX_LIMIT)
            entries += len(page)
            if page:
                fields = BlacklistEntry.__struct_fields__
                yield [BlacklistLine(**{f: getattr(e, f) for f in fields}) for e in page]
            if cursor is None:
                break
        yield [EndLine(buyer_keys=buyers, active_keys=actives, blacklist=entries)]

    async def _keys(self, vendor_id: str, project_id: str) -> AsyncIterator[list[ExportLine]]:
        """Every key of the project (its buyer index holds them all), one script step of at
        most ``paging.MAX_LIMIT`` keys at a time (store/paging.py)."""
        p = project_id
        names = [
            keyspace.project(p),
            keyspace.buyer_index(p),
            keyspace.buyer_index(p),
            keyspace.active_index(p),
            keyspace.key_discords(p),
        ]
        pos = paging.Position("x", p)
        while not pos.done:
            cur, after, left, flat = await self.core.script(
                self.core.scripts.list_keys,
                names,
                [
                    vendor_id,
                    keyspace.key_prefix(p),
                    keyspace.discord_prefix(p),
                    pos.cur,
                    paging.MAX_LIMIT,
                    pos.after,
                    *pos.left,
                ],
            )
            pos = paging.Position("x", p, str(cur), str(after), tuple(map(str, left)))
            now = self.core.now()
            it = iter(flat)
            lines: list[ExportLine] = [
                key_line(str(k), pairs(h), now) for k, h in zip(it, it, strict=True)
            ]
            if lines:
                yield lines

    # ---- import ---------------------------------------------------------------------------

    async def import_keys(
        self, vendor_id: str, project_id: str, entries: Sequence[ImportEntry]
    ) -> ImportSummary:
        """Imports ``entries`` (at most ``MAX_IMPORT``, distinct ``key_id``s) into the
        vendor's project; the answer has one result per entry, in their order."""
        if len(entries) > MAX_IMPORT:
            raise ValueError(f"at most {MAX_IMPORT} keys per import")
        if len({e.key_id for e in entries}) != len(entries):
            raise ValueError("key_id: each key at most once per import")
        await self.projects.get(vendor_id, project_id)  # 404 before any ref is claimed
        now = self.core.now()
        retention = self.core.retention
        status: dict[str, tuple[Status, str]] = {}
        prepared: list[_Prepared] = []
        for e in entries:
            p = _prepare(e, now)
            if p.expires and int(p.expires) + retention <= now:
                status[e.key_id] = ("refused", EXPIRED)
            else:
                prepared.append(p)
        await self._refuse_legacy(vendor_id, project_id, prepared, status)
        prepared = [p for p in prepared if p.entry.key_id not in status]
        claimed = await self._claim_refs(vendor_id, project_id, prepared, status)
        accepted = [p for p in prepared if p.entry.key_id not in status]
        try:
            replies = await self._write(vendor_id, project_id, accepted) if accepted else []
        except BaseException:
            await asyncio.gather(
                keyrefs.drop(self.core, vendor_id, project_id, claimed), return_exceptions=True
            )
            raise
        fixes: list[Any] = []
        for p, (code, expires) in zip(accepted, _pairs(replies), strict=True):
            key_id = p.entry.key_id
            if code == "1":
                status[key_id] = ("imported", "")
                if key_id not in claimed:  # a ref left behind (a crash): the key's TTL now
                    fixes.append(self._expire_ref(vendor_id, project_id, key_id, expires))
            else:
                status[key_id] = ("unchanged", "")
                if key_id in claimed:  # its ref was missing: it lives as long as the key
                    fixes.append(self._expire_ref(vendor_id, project_id, key_id, expires))
        if fixes:
            await asyncio.gather(*fixes)
        results = []
        for e in entries:
            code, detail = status[e.key_id]
            results.append(ImportResult(key_id=e.key_id, status=code, detail=detail or UNSET))
        count = {c: sum(r.status == c for r in results) for c in ("imported", "unchanged")}
        return ImportSummary(
            imported=count["imported"],
            unchanged=count["unchanged"],
            refused=len(results) - count["imported"] - count["unchanged"],
            results=results,
        )

    def _ref_at(self, expires: str) -> list[str | int]:
        return ["PXAT", (int(expires) + self.core.retention) * 1000] if expires else []

    async def _refuse_legacy(
        self,
        vendor_id: str,
        project_id: str,
        prepared: list[_Prepared],
        status: dict[str, tuple[Status, str]],
    ) -> None:
        """Refuses (in ``status``) the ids whose old-layout ref (``keyspace.legacy_key_ref``,
        never written again) names another of the vendor's projects; one that names another
        vendor's project is none of this import's business (and is never changed by it)."""
        if not prepared:
            return
        mine, legacy = await asyncio.gather(
            self.projects.vendors.project_ids(vendor_id),
            asyncio.gather(
                *(self.core.call("GET", keyspace.legacy_key_ref(p.entry.key_id)) for p in prepared)
            ),
        )
        for p, owner in zip(prepared, legacy, strict=True):
            if owner is not None and owner != project_id and owner in mine:
                status[p.entry.key_id] = ("refused", EXISTS_ELSEWHERE)

    async def _claim_refs(
        self,
        vendor_id: str,
        project_id: str,
        prepared: list[_Prepared],
        status: dict[str, tuple[Status, str]],
    ) -> set[str]:
        """Claims each entry's ref (``SET NX``, the vendor's own); an id whose ref names
        another of the vendor's projects is refused in ``status``. Returns the ids whose ref
        this call created."""
        claimed: set[str] = set()
        todo = prepared
        for _ in range(3):  # a ref that vanished between SET NX and GET: claim it again
            made = await asyncio.gather(
                *(
                    self.core.call(
                        "SET",
                        keyspace.key_ref(vendor_id, p.entry.key_id),
                        project_id,
                        "NX",
                        *self._ref_at(p.expires),
                    )
                    for p in todo
                )
            )
            taken = [p for p, ok in zip(todo, made, strict=True) if not ok]
            claimed.update(p.entry.key_id for p, ok in zip(todo, made, strict=True) if ok)
            owners = await asyncio.gather(
                *(self.core.call("GET", keyspace.key_ref(vendor_id, p.entry.key_id)) for p in taken)
            )
            todo = []
            for p, owner in zip(taken, owners, strict=True):
                if owner is None:
                    todo.append(p)
                elif owner != project_id:
                    status[p.entry.key_id] = ("refused", EXISTS_ELSEWHERE)
            if not todo:
                break
        for p in todo:
            status[p.entry.key_id] = ("refused", "key_id in use (its ref kept changing): retry")
        return claimed

    async def _expire_ref(self, vendor_id: str, project_id: str, key_id: str, expires: str) -> None:
        await keyrefs.expire(self.core, vendor_id, project_id, key_id, expires, persist=True)

    async def _write(self, vendor_id: str, project_id: str, accepted: list[_Prepared]) -> Any:
        args: list[str | int] = [
            vendor_id,
            keyspace.key_prefix(project_id),
            keyspace.discord_prefix(project_id),
            self.core.retention,
        ]
        for p in accepted:
            e = p.entry
            args += [
                e.key_id,
                "1" if e.redeemed else "0",
                e.discord_id or "",
                p.ban_hwid,
                p.expires,
                len(p.fields),
                *p.fields,
            ]
        return await self.core.script(
            self.core.scripts.import_keys,
            [
                keyspace.project(project_id),
                keyspace.buyer_index(project_id),
                keyspace.active_index(project_id),
                keyspace.key_discords(project_id),
                keyspace.hwid_bans(project_id),
                *keyspace.synced_streams(project_id),
            ],
            args,
            durable=True,
        )


def _pairs(flat: list[Any]) -> list[tuple[str, str]]:
    it = iter(flat)
    return [(str(a), str(b)) for a, b in zip(it, it, strict=True)]
