"""Analytics: the event feed, the overview counts and the hourly executions chart."""

import asyncio
from typing import NamedTuple

from store import keyspace
from store.core import Core
from store.models import Event, iso, pairs
from store.projects import Projects
from store.vendors import Vendors


class Analytics:
    def __init__(self, core: Core, vendors: Vendors, projects: Projects) -> None:
        self.core = core
        self.vendors = vendors
        self.projects = projects

    async def recent_events(self, vendor_id: str, limit: int) -> list[Event]:
        """The newest ``limit`` events across the vendor's projects, newest first."""
        project_ids = await self.vendors.project_ids(vendor_id)
        replies = await asyncio.gather(
            *(
                self.core.call("XREVRANGE", keyspace.events(p), "+", "-", "COUNT", limit)
                for p in project_ids
            )
        )
        rows: list[_EventRow] = []
        for p, entries in zip(project_ids, replies, strict=True):
            rows.extend(_EventRow(entry_id, p, pairs(fields)) for entry_id, fields in entries)

        def order(row: _EventRow) -> tuple[int, int]:
            ms, _, seq = row.stream_id.partition("-")
            return int(ms), int(seq or 0)

        rows.sort(key=order, reverse=True)
        return [
            Event(
                type=r.fields.get("type", ""),
                message=r.fields.get("message", ""),
                project_id=r.project_id,
                key_id=r.fields.get("key_id") or None,
                timestamp=iso(r.fields.get("ts")),
            )
            for r in rows[:limit]
        ]

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


class _EventRow(NamedTuple):
    stream_id: str
    project_id: str
    fields: dict[str, str]
