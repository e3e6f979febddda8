"""Licence keys: buyer keys, their redemption, and the active (script) keys they become.

A key is one hash in its project's slot (``keyspace.key``), indexed by the project's sets;
a bare key id resolves to its project through the vendor's ref (store/keyrefs.py: key ids are
private to their vendor). Ownership is checked inside
the script that reads or writes, so a vendor can never act on another's key (it looks missing).
"""

import asyncio
import bisect
import re
import secrets
import string
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import msgspec
from redis.exceptions import NoScriptError, ResponseError

from store import keyrefs, keyspace, paging
from store.domain import ProjectDomain
from store.errors import (
    DiscordNotLinked,
    InvalidCursor,
    KeyNotFound,
    ProjectNotFound,
    script_error,
)
from store.models import (
    ActiveKey,
    BuyerKey,
    active_key_from_hash,
    buyer_key_from_hash,
    pairs,
)
from store.scripts import Script

KEY_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 32  # 32 * log2(62) = 190.5 bits of entropy
# Script calls of one listing page at most (a page of expired keys or empty projects may end
# short, with a cursor: bounded time per request).
_PAGE_CALLS = 64
# Keys a search reads per call at most by default: the dashboard's budget (docs/dashboard.md).
SEARCH_BUDGET = 5_000
_KEY_ID = re.compile("[A-Za-z0-9_-]{32}")  # handlers/ids.py's KEY_ID, as long as ours
_DISCORD_ID = re.compile("[0-9]{1,20}")  # handlers/ids.py's DISCORD_ID

K = TypeVar("K", bound=BuyerKey | ActiveKey)


class KeySearch(msgspec.Struct, Generic[K], frozen=True):
    """One page of what ``Licences.search`` found."""

    rows: list[K]
    next: str | None  # the cursor to continue from (None: nothing more to list or scan)
    by: str  # "key id", "discord id" (one lookup, one index), "scan" or "" (a plain page)
    scanned: int = 0  # keys a scan read


def new_key_id() -> str:
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


class Licences(ProjectDomain):
    async def project_of(self, vendor_id: str, key_id: str) -> str:
        """The project of the vendor's key (``KeyNotFound``: none; a project that turns out
        not to be the vendor's is refused by the script that acts on it)."""
        project_id = await keyrefs.resolve(self.core, vendor_id, key_id)
        if project_id is None:
            raise KeyNotFound
        return project_id

    async def generate(
        self,
        vendor_id: str,
        project_id: str,
        *,
        amount: int,
        key_days: int,
        key_hours: int,
        key_minutes: int,
        note: str | None,
    ) -> list[BuyerKey]:
        if not await self.vendors.discord_id(vendor_id):
            raise DiscordNotLinked
        now = self.core.now()
        ids = [new_key_id() for _ in range(amount)]
        script = self.core.scripts.generate_keys
        key_names = [keyspace.project(project_id), keyspace.buyer_index(project_id)]
        key_names += [keyspace.key(project_id, i) for i in ids]
        key_names += keyspace.event_streams(project_id)
        args: list[str | int] = [vendor_id, now, key_days, key_hours, key_minutes]
        args += ["1" if note is not None else "0", note or "", *ids]
        if self.core.durability.enabled:
            # One round trip on one pool connection: the key -> project refs, the script that
            # checks ownership and writes the keys atomically, then WAITAOF: the keys are
            # fsynced before they are handed out (store/durable.py).
            commands: list[tuple[Any, ...]] = [
                ("SET", keyspace.key_ref(vendor_id, i), project_id) for i in ids
            ]
            commands.append(("EVALSHA", script.sha, len(key_names), *key_names, *args))
            result = (await self.core.write(commands))[-1]
            if isinstance(result, NoScriptError):
                eval_args = (script.source, len(key_names), *key_names, *args)
                result = (await self.core.write([("EVAL", *eval_args)]))[0]
            if isinstance(result, ResponseError):
                # Nothing was written by the script; drop the refs made for it.
                await asyncio.gather(
                    keyrefs.drop(self.core, vendor_id, project_id, ids), return_exceptions=True
                )
                raise script_error(result)
            return self._buyer_keys(project_id, ids, now, key_days, key_hours, key_minutes, note)
        # One round trip: the key -> project refs are queued first, then the script that checks
        # ownership and writes the keys atomically, all in one auto-pipeline batch (on a
        # cluster the refs live in other slots: one write per node, all at once).
        refs = [self.core.call("SET", keyspace.key_ref(vendor_id, i), project_id) for i in ids]
        try:
            await self.core.script(script, key_names, args)
        except BaseException:
            # Nothing was written by the script; drop the refs made for it.
            await asyncio.gather(*refs, return_exceptions=True)
            await asyncio.gather(
                keyrefs.drop(self.core, vendor_id, project_id, ids), return_exceptions=True
            )
            raise
        await asyncio.gather(*refs)
        return self._buyer_keys(project_id, ids, now, key_days, key_hours, key_minutes, note)

    @staticmethod
    def _buyer_keys(
        project_id: str,
        ids: list[str],
        now: int,
        key_days: int,
        key_hours: int,
        key_minutes: int,
        note: str | None,
    ) -> list[BuyerKey]:
        h = {"created_at": str(now), "key_days": str(key_days), "key_hours": str(key_hours)}
        h["key_minutes"] = str(key_minutes)
        if note is not None:
            h["note"] = note
        return [buyer_key_from_hash(project_id, i, h) for i in ids]

    async def _page(
        self,
        vendor_id: str,
        project_id: str | None,
        kind: str,
        index: Callable[[str], str],
        cursor: str | None,
        limit: int,
    ) -> tuple[list[tuple[str, str, dict[str, str]]], str | None]:
        """One page: (project_id, key_id, hash) of at most ``limit`` live members of
        ``index(project)``, sorted by creation, and the cursor of the next page (None after
        the last). Without ``project_id`` the vendor's projects are walked in id order. Each
        script call reads at most ``limit`` (<= 1000) keys; see store/paging.py."""
        if not 1 <= limit <= paging.MAX_LIMIT:
            raise ValueError("limit")
        pos = paging.decode(cursor, kind) if cursor else None
        if project_id:
            if pos is not None and pos.project != project_id:
                raise InvalidCursor
            project_ids = [project_id]
        else:
            project_ids = sorted(await self.vendors.project_ids(vendor_id))
        i = 0
        state = paging.Position(kind)
        if pos is not None:
            i = bisect.bisect_left(project_ids, pos.project)
            if i < len(project_ids) and project_ids[i] == pos.project:
                state = pos  # else: that project is gone (or was never ours): the next one
        script = self.core.scripts.list_keys
        out: list[tuple[str, str, dict[str, str]]] = []
        calls = 0
        while i < len(project_ids) and len(out) < limit and calls < _PAGE_CALLS:
            p = project_ids[i]
            calls += 1
            try:
                cur, after, left, flat = await self.core.script(
                    script,
                    [
                        keyspace.project(p),
                        index(p),
                        keyspace.buyer_index(p),
                        keyspace.active_index(p),
                        keyspace.key_discords(p),
                    ],
                    [
                        vendor_id,
                        keyspace.key_prefix(p),
                        keyspace.discord_prefix(p),
                        state.cur,
                        limit - len(out),
                        state.after,
                        *state.left,
                    ],
                )
            except ProjectNotFound:
                if project_id:
                    raise
                cur, after, left, flat = "end", "", [], []  # deleted while we listed
            it = iter(flat)
            out.extend((p, key_id, pairs(h)) for key_id, h in zip(it, it, strict=True))
            state = paging.Position(kind, p, str(cur), str(after), tuple(map(str, left)))
            if state.done:
                i += 1
                state = paging.Position(kind)
        out.sort(key=lambda t: (t[2].get("created_at", ""), t[1]))
        if i >= len(project_ids):
            return out, None
        here = paging.Position(kind, project_ids[i], state.cur, state.after, state.left)
        return out, here.encode()

    async def _all(
        self, vendor_id: str, project_id: str | None, kind: str, index: Callable[[str], str]
    ) -> list[tuple[str, str, dict[str, str]]]:
        """Every page, sorted as a whole (for callers that want everything in memory)."""
        rows, cursor = await self._page(vendor_id, project_id, kind, index, None, paging.MAX_LIMIT)
        while cursor is not None:
            more, cursor = await self._page(
                vendor_id, project_id, kind, index, cursor, paging.MAX_LIMIT
            )
            rows += more
        rows.sort(key=lambda t: (t[2].get("created_at", ""), t[1]))
        return rows

    async def list_buyer(self, vendor_id: str, project_id: str | None) -> list[BuyerKey]:
        """Every buyer key (tests and tools; the API pages, see ``buyer_page``)."""
        rows = await self._all(vendor_id, project_id, "b", keyspace.buyer_index)
        return [buyer_key_from_hash(p, k, h) for p, k, h in rows]

    async def buyer_page(
        self, vendor_id: str, project_id: str | None, cursor: str | None, limit: int
    ) -> tuple[list[BuyerKey], str | None]:
        """One page of buyer keys (sorted by creation) and the next page's cursor."""
        rows, nxt = await self._page(
            vendor_id, project_id, "b", keyspace.buyer_index, cursor, limit
        )
        return [buyer_key_from_hash(p, k, h) for p, k, h in rows], nxt

    async def delete_buyer(self, vendor_id: str, key_id: str) -> None:
        project_id = await self.project_of(vendor_id, key_id)
        await self.core.script(
            self.core.scripts.delete_buyer_key,
            [
                keyspace.project(project_id),
                keyspace.key(project_id, key_id),
                keyspace.buyer_index(project_id),
                *keyspace.event_streams(project_id),
            ],
            [vendor_id, key_id],
            durable=True,
        )
        await keyrefs.drop(self.core, vendor_id, project_id, [key_id])

    # ---- redemption and active keys -------------------------------------------------------

    async def redeem(self, vendor_id: str, key_id: str, discord_id: str) -> ActiveKey:
        project_id = await self.project_of(vendor_id, key_id)
        flat = await self.core.script(
            self.core.scripts.redeem,
            [
                keyspace.project(project_id),
                keyspace.key(project_id, key_id),
                keyspace.active_index(project_id),
                keyspace.discord_index(project_id, discord_id),
                keyspace.key_discords(project_id),
                *keyspace.synced_streams(project_id),
            ],
            [vendor_id, key_id, self.core.now(), discord_id, self.core.retention],
            durable=True,
        )
        h = pairs(flat)
        await keyrefs.expire(self.core, vendor_id, project_id, key_id, h.get("expires_at", ""))
        return active_key_from_hash(project_id, key_id, h, now=self.core.now())

    async def expire_ref(self, project_id: str, key_id: str, expires_at: str) -> None:
        """The ref of a key the loader check redeemed lives exactly as long as the key hash
        (off the response path: the project's owner is read here, not in the check)."""
        vendor_id: str | None = await self.core.call(
            "HGET", keyspace.project(project_id), "vendor_id"
        )
        if vendor_id:
            await keyrefs.expire(self.core, vendor_id, project_id, key_id, expires_at)

    @staticmethod
    def _active_index(discord_id: str | None) -> tuple[str, Callable[[str], str]]:
        if discord_id is None:
            return "a", keyspace.active_index

        def index(p: str) -> str:
            return keyspace.discord_index(p, discord_id)

        return "d" + discord_id, index

    async def list_active(
        self, vendor_id: str, project_id: str | None, discord_id: str | None
    ) -> list[ActiveKey]:
        """Every active key (tests and tools; the API pages, see ``active_page``)."""
        kind, index = self._active_index(discord_id)
        rows = await self._all(vendor_id, project_id, kind, index)
        now = self.core.now()
        return [active_key_from_hash(p, k, h, now=now) for p, k, h in rows if "redeemed_at" in h]

    async def active_page(
        self,
        vendor_id: str,
        project_id: str | None,
        discord_id: str | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[ActiveKey], str | None]:
        """One page of active keys (sorted by creation) and the next page's cursor."""
        kind, index = self._active_index(discord_id)
        rows, nxt = await self._page(vendor_id, project_id, kind, index, cursor, limit)
        now = self.core.now()
        keys = [active_key_from_hash(p, k, h, now=now) for p, k, h in rows if "redeemed_at" in h]
        return keys, nxt

    async def _key_action(self, script: Script, vendor_id: str, key_id: str, *args: Any) -> Any:
        project_id = await self.project_of(vendor_id, key_id)
        return await self.core.script(
            script,
            [
                keyspace.project(project_id),
                keyspace.key(project_id, key_id),
                keyspace.hwid_bans(project_id),
                *keyspace.synced_streams(project_id),
            ],
            [vendor_id, *args, key_id],
            durable=True,
        )

    async def ban(
        self,
        vendor_id: str,
        key_id: str,
        *,
        reason: str | None = None,
        duration: int | None = None,
    ) -> None:
        """Bans for good (and blocks the key's HWID), or, with ``duration`` (seconds), until
        then (the key only); a ban replaces the key's current one (see lua/ban.lua)."""
        project_id = await self.project_of(vendor_id, key_id)
        now = self.core.now()
        until = "" if duration is None else now + duration
        await self.core.script(
            self.core.scripts.ban,
            [
                keyspace.project(project_id),
                keyspace.key(project_id, key_id),
                keyspace.hwid_bans(project_id),
                *keyspace.synced_streams(project_id),
            ],
            [vendor_id, key_id, now, until, "0" if reason is None else "1", reason or ""],
            durable=True,
        )

    async def unban(self, vendor_id: str, key_id: str) -> None:
        await self._key_action(self.core.scripts.unban, vendor_id, key_id)

    async def reset_hwid(self, vendor_id: str, key_id: str) -> str | None:
        """Vendor reset (no cooldown). Returns the previous HWID."""
        old: str = await self._key_action(
            self.core.scripts.reset_hwid, vendor_id, key_id, self.core.now()
        )
        return old or None

    async def set_hwid(self, vendor_id: str, key_id: str, hwid: str | None) -> str | None:
        """Returns the previous HWID."""
        old: str = await self._key_action(self.core.scripts.set_hwid, vendor_id, key_id, hwid or "")
        return old or None

    async def _get_key(self, vendor_id: str, key_id: str) -> tuple[str, dict[str, str]]:
        """The project and hash of one of the vendor's keys (redeemed or not)."""
        project_id = await self.project_of(vendor_id, key_id)
        flat = await self.core.script(
            self.core.scripts.get_key,
            [keyspace.project(project_id), keyspace.key(project_id, key_id)],
            [vendor_id],
        )
        return project_id, pairs(flat)

    async def get_active(self, vendor_id: str, key_id: str) -> ActiveKey:
        project_id, h = await self._get_key(vendor_id, key_id)
        if "redeemed_at" not in h:
            raise KeyNotFound
        return active_key_from_hash(project_id, key_id, h, now=self.core.now())

    async def _set_note(
        self, vendor_id: str, key_id: str, note: str | None, redeemed: bool
    ) -> tuple[str, dict[str, str]]:
        project_id = await self.project_of(vendor_id, key_id)
        flat = await self.core.script(
            self.core.scripts.set_note,
            [
                keyspace.project(project_id),
                keyspace.key(project_id, key_id),
                *keyspace.event_streams(project_id),
            ],
            [vendor_id, key_id, "1" if redeemed else "0", "0" if note is None else "1", note or ""],
            durable=True,
        )
        return project_id, pairs(flat)

    async def set_buyer_note(self, vendor_id: str, key_id: str, note: str | None) -> BuyerKey:
        """Sets (None: removes) the note of any of the vendor's keys, redeemed or not."""
        project_id, h = await self._set_note(vendor_id, key_id, note, redeemed=False)
        return buyer_key_from_hash(project_id, key_id, h)

    async def set_active_note(self, vendor_id: str, key_id: str, note: str | None) -> ActiveKey:
        """Sets (None: removes) the note of a redeemed key (an unredeemed one: KeyNotFound)."""
        project_id, h = await self._set_note(vendor_id, key_id, note, redeemed=True)
        return active_key_from_hash(project_id, key_id, h, now=self.core.now())

    async def get_buyer(self, vendor_id: str, key_id: str) -> BuyerKey:
        project_id, h = await self._get_key(vendor_id, key_id)
        return buyer_key_from_hash(project_id, key_id, h)

    async def delete_unredeemed(self, vendor_id: str, project_id: str) -> int:
        await self.projects.get(vendor_id, project_id)  # 404 before walking anything
        deleted = 0
        async for ids in self.core.members(keyspace.buyer_index(project_id)):
            gone: list[str] = await self.core.script(
                self.core.scripts.delete_unredeemed,
                [
                    keyspace.project(project_id),
                    keyspace.buyer_index(project_id),
                    *keyspace.event_streams(project_id),
                ],
                [vendor_id, keyspace.key_prefix(project_id), *ids],
                durable=True,
            )
            if gone:
                await keyrefs.drop(self.core, vendor_id, project_id, gone)
            deleted += len(gone)
        return deleted

    async def extend(self, vendor_id: str, project_id: str, seconds: int) -> int:
        await self.projects.get(vendor_id, project_id)
        extended = 0
        async for ids in self.core.members(keyspace.active_index(project_id)):
            res: list[str] = await self.core.script(
                self.core.scripts.extend_keys,
                [keyspace.project(project_id), *keyspace.synced_streams(project_id)],
                [
                    vendor_id,
                    keyspace.key_prefix(project_id),
                    self.core.now(),
                    seconds,
                    self.core.retention,
                    *ids,
                ],
                durable=True,
            )
            it = iter(res)
            pairs_ = list(zip(it, it, strict=True))
            # Each key's ref keeps the same TTL as the key itself.
            await asyncio.gather(
                *(keyrefs.expire(self.core, vendor_id, project_id, i, e) for i, e in pairs_)
            )
            extended += len(pairs_)
        return extended

    # ---- search ---------------------------------------------------------------------------

    async def search(
        self,
        vendor_id: str,
        project_id: str | None,
        query: str,
        kind: type[K],
        *,
        status: str = "all",
        cursor: str | None = None,
        limit: int = 50,
        budget: int = SEARCH_BUDGET,
    ) -> KeySearch[K]:
        """A page of the vendor's keys of ``kind`` (``BuyerKey``: every key; ``ActiveKey``: the
        redeemed ones; the rows' type) in ``project_id`` (None: every project) that ``query``
        and ``status`` pick: the dashboard's key tables and banned count, and for any caller
        (the API, the bot) that searches keys.

        ``query``: a key id (32 characters) is one lookup of the vendor's key, in any of its
        projects; on active keys a Discord ID is that user's index, paged; else a HWID (exact)
        or a note (substring, any case). ``status``: "all", "banned", "unbanned", "redeemed" or
        "unredeemed". With neither, a plain page of at most ``limit`` (<= 1000) keys. Else a
        bounded scan of the listing: about ``budget`` keys read per call (a step with more
        matches than ``limit`` leaves room for is read again, shorter), at most ``limit`` rows,
        and ``next`` continues from where it stopped (a caller's next page): every match is
        on exactly one page."""
        if limit < 1 or budget < 1:
            raise ValueError("limit")
        active = kind is ActiveKey
        if _KEY_ID.fullmatch(query):  # a key id: one exact lookup
            try:
                key: Any = await (self.get_active if active else self.get_buyer)(vendor_id, query)
                return KeySearch([key], None, "key id")
            except KeyNotFound:
                pass  # not one of the vendor's keys: a HWID or note, below
        discord = query if active and _DISCORD_ID.fullmatch(query) else None

        def fetch(c: str | None, n: int) -> Awaitable[tuple[Sequence[Any], str | None]]:
            if active:
                return self.active_page(vendor_id, project_id, discord, c, n)
            return self.buyer_page(vendor_id, project_id, c, n)

        match = _matcher("" if discord else query, status)
        if match is None:
            items, nxt = await fetch(cursor, min(limit, paging.MAX_LIMIT))
            return KeySearch(list(items), nxt, "discord id" if discord else "")
        rows: list[Any] = []
        scanned = 0
        nxt = cursor
        while scanned < budget and len(rows) < limit:
            start, want = nxt, min(paging.MAX_LIMIT, budget - scanned)
            while True:
                items, nxt = await fetch(start, want)
                scanned += len(items)
                found = [k for k in items if match(k)]
                room = limit - len(rows)
                if len(found) <= room or want == 1:
                    break
                # More matches than the page has room for: the cursor is past the whole step,
                # so none may be dropped. Read a shorter step from the same place instead (at
                # least half as long each time: a few more reads at most).
                want = max(1, min(want // 2, want * room // len(found)))
            rows.extend(found)
            if nxt is None:
                break
        return KeySearch(rows, nxt, "scan", scanned)


def _matcher(query: str, status: str) -> Callable[[Any], bool] | None:
    """The predicate of a scanned search (HWID exact, or note substring) and/or filter; None
    when there is nothing to filter."""
    if not query and status == "all":
        return None
    needle = query.casefold()

    def match(k: Any) -> bool:
        if query:
            hwid = getattr(k, "hwid", None)
            note = k.note if isinstance(k.note, str) else ""
            if hwid != query and needle not in note.casefold():
                return False
        if status == "banned":
            return bool(getattr(k, "banned", False))
        if status == "unbanned":
            return not getattr(k, "banned", False)
        if status == "redeemed":
            return bool(getattr(k, "redeemed", False))
        if status == "unredeemed":
            return not getattr(k, "redeemed", True)
        return True

    return match
