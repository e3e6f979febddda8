"""Analytics: the event feed, the overview counts and the hourly executions chart."""

import asyncio
from collections.abc import Callable
from typing import NamedTuple

from store import keyspace, paging
from store.domain import ProjectDomain
from store.errors import ProjectNotFound
from store.models import Event, RateLimit, iso, pairs


class Analytics(ProjectDomain):
    async def recent_events(
        self, vendor_id: str, limit: int, cursor: str | None = None
    ) -> tuple[list[Event], str | None]:
        """The newest ``limit`` events across the vendor's projects, newest first (ties: by
        project id, descending), older than the ``cursor`` position when one is given; and
        the cursor of the next page (None when no older event is left)."""
        if not 1 <= limit <= paging.MAX_LIMIT:
            raise ValueError("limit")
        pos = paging.decode(cursor, "ev", stream=True) if cursor else None
        project_ids = await self.vendors.project_ids(vendor_id)

        def upper(p: str) -> str:
            """The newest entry id of project ``p`` still to come."""
            if pos is None:
                return "+"
            if p < pos.project:  # (ms, seq, p) < (ms, seq, pos.project): the same id too
                return pos.cur
            ms, seq = (int(x) for x in pos.cur.split("-"))
            if seq > 0:
                return f"{ms}-{seq - 1}"
            return f"{ms - 1}-{2**64 - 1}" if ms > 0 else ""

        ends = {p: upper(p) for p in project_ids}
        replies = await asyncio.gather(
            *(
                self.core.call("XREVRANGE", keyspace.events(p), ends[p], "-", "COUNT", limit + 1)
                for p in project_ids
                if ends[p]
            )
        )
        rows: list[_EventRow] = []
        for p, entries in zip([p for p in project_ids if ends[p]], replies, strict=True):
            rows.extend(_EventRow(entry_id, p, pairs(fields)) for entry_id, fields in entries)

        def order(row: _EventRow) -> tuple[int, int, str]:
            ms, _, seq = row.stream_id.partition("-")
            return int(ms), int(seq or 0), row.project_id

        rows.sort(key=order, reverse=True)
        nxt = None
        if len(rows) > limit:
            last = rows[limit - 1]
            nxt = paging.Position("ev", last.project_id, last.stream_id).encode()
        return [
            Event(
                type=r.fields.get("type", ""),
                message=r.fields.get("message", ""),
                project_id=r.project_id,
                key_id=r.fields.get("key_id") or None,
                timestamp=iso(r.fields.get("ts")),
            )
            for r in rows[:limit]
        ], nxt

    async def overview(self, vendor_id: str) -> dict[str, int]:
        project_ids = await self.vendors.project_ids(vendor_id)
        fields = asyncio.gather(
            *(
                self.core.call(
                    "HMGET",
                    keyspace.project(p),
                    "vendor_id",
                    "is_active",
                    "executions",
                    "ffa_executions",
                )
                for p in project_ids
            )
        )
        sizes = asyncio.gather(
            *(self.core.call("SCARD", keyspace.active_index(p)) for p in project_ids)
        )
        rows, counts = await asyncio.gather(fields, sizes)
        active_projects = total = active_keys = 0
        for (owner, is_active, execs, ffa), n in zip(rows, counts, strict=True):
            if owner != vendor_id:
                continue
            active_projects += is_active != "0"
            total += int(execs or 0) + int(ffa or 0)
            active_keys += int(n)
        return {
            "active_projects": active_projects,
            "total_executions": total,
            "active_keys": active_keys,
        }

    async def key_counts(self, vendor_id: str) -> dict[str, int]:
        """Across the vendor's projects: keys generated (``buyer``), redeemed (``active``)
        and HWIDs blocked by a ban (``banned_hwids``); O(1) per project (set sizes)."""
        project_ids = await self.vendors.project_ids(vendor_id)
        calls = [
            self.core.call(cmd, key(p))
            for p in project_ids
            for cmd, key in (
                ("SCARD", keyspace.buyer_index),
                ("SCARD", keyspace.active_index),
                ("HLEN", keyspace.hwid_bans),
            )
        ]
        replies = [int(r) for r in await asyncio.gather(*calls)]
        return {
            "buyer": sum(replies[0::3]),
            "active": sum(replies[1::3]),
            "banned_hwids": sum(replies[2::3]),
        }

    async def hourly_executions(
        self, vendor_id: str, project_id: str | None, hours: int = 12
    ) -> tuple[list[int], list[int]]:
        """(epoch hours, valid executions in each), oldest first, the current hour last."""
        if project_id is not None:
            await self.projects.get(vendor_id, project_id)
            project_ids = [project_id]
        else:
            project_ids = await self.vendors.project_ids(vendor_id)
        now_hour = self.core.now() // 3600
        span = [now_hour - hours + 1 + i for i in range(hours)]
        # One MGET per project: its hourly counters share the project's slot.
        replies = await asyncio.gather(
            *(
                self.core.call("MGET", *(keyspace.hourly_executions(p, h) for h in span))
                for p in project_ids
            )
        )
        totals = [sum(int(r[i] or 0) for r in replies) for i in range(hours)]
        return span, totals

    async def report(
        self,
        project_id: str,
        reason: str,
        subject: str,
        ip: str,
        executor: str,
        limits: tuple[int, int],
    ) -> RateLimit:
        """A loader's report of a forged answer it refused (store/lua/loader_report.lua): one
        round trip. ``limits``: (reports per window per client, window in seconds; 0: none).
        ProjectNotFound for a project that does not exist."""
        now = self.core.now()
        limit, window = limits
        res = await self.core.script(
            self.core.scripts.loader_report,
            [
                keyspace.project(project_id),
                keyspace.report_rate(project_id, subject),
                keyspace.daily_reports(project_id, now // 86400),
                *keyspace.event_streams(project_id),
            ],
            [now, limit, window, reason, ip, executor, REPORT_EVENTS_PER_DAY, REPORTS_TTL],
        )
        if res[0] == "PROJECT_NOT_FOUND":
            raise ProjectNotFound
        allowed, remaining, reset, retry = (int(v) for v in res)
        return RateLimit(bool(allowed), limit, remaining, reset, retry)

    async def _scope(self, vendor_id: str, project_id: str | None) -> list[str]:
        """``[project_id]`` once its owner is checked (ProjectNotFound), else every project of
        the vendor."""
        if project_id is not None:
            await self.projects.get(vendor_id, project_id)
            return [project_id]
        return await self.vendors.project_ids(vendor_id)

    async def _summed(
        self, project_ids: list[str], name: Callable[[str, int], str], span: list[int]
    ) -> list[tuple[int, dict[str, int]]]:
        """(period, counts) for each period of ``span``: the hashes ``name(project, period)``
        of every project summed field by field (one HGETALL each, one batch)."""
        flats = await asyncio.gather(
            *(self.core.call("HGETALL", name(p, t)) for p in project_ids for t in span)
        )
        rows: list[tuple[int, dict[str, int]]] = [(t, {}) for t in span]
        for i, flat in enumerate(flats):
            counts = rows[i % len(span)][1]
            for f, v in pairs(flat).items():
                counts[f] = counts.get(f, 0) + int(v)
        return rows

    async def executors(
        self, vendor_id: str, project_id: str | None, hours: int
    ) -> list[tuple[int, dict[str, int]]]:
        """(epoch hour, valid executions by executor name) of the last ``hours`` hours, oldest
        first, the current hour last; of one project or all the vendor's."""
        project_ids = await self._scope(vendor_id, project_id)
        now_hour = self.core.now() // 3600
        span = [now_hour - hours + 1 + i for i in range(hours)]
        return await self._summed(project_ids, keyspace.hourly_executors, span)

    async def reports(
        self, vendor_id: str, project_id: str | None, days: int
    ) -> list[tuple[int, dict[str, int]]]:
        """(epoch day, forged-answer reports by reason and ``total``) of the last ``days`` UTC
        days, oldest first, today last; of one project or all the vendor's."""
        project_ids = await self._scope(vendor_id, project_id)
        today = self.core.now() // 86400
        span = [today - days + 1 + i for i in range(days)]
        return await self._summed(project_ids, keyspace.daily_reports, span)


# A project's forged-answer reports that become events (and webhook notifications) per UTC
# day; every report is counted. Their daily counts are kept 100 days.
REPORT_EVENTS_PER_DAY = 100
REPORTS_TTL = 100 * 86400


class _EventRow(NamedTuple):
    stream_id: str
    project_id: str
    fields: dict[str, str]
