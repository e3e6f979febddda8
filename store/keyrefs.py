"""Key refs: a vendor's bare key id -> the project that holds the key (``keyspace.key_ref``).

Key ids are private to their vendor: the ref's name holds the vendor id, so two vendors may
each hold ``KEY-00000001`` (each in a project of their own, where the loader check finds it by
project) and nothing a vendor does reads, claims or changes a ref of another vendor. Within
one vendor an id names one key: the vendor's ref names one project, and an import refuses an
id the vendor already holds in another project.

Refs written before refs were per vendor (``keyspace.legacy_key_ref``: one name for every
vendor) are read as a fallback: the vendor's ref wins, and the script that acts on the key
checks its owner as always (an old ref of another vendor's key resolves to a project that is
not the caller's: 404, as if missing). Nothing writes an old ref again; it expires and goes
with its key like a new one. Every change of a ref other than its creation is made only while
the ref still names the key's project (``lua/key_ref.lua``): the same id may by then name
another vendor's key (an old ref) or another project (a ref re-claimed by an import while the
project it named was being deleted).
"""

import asyncio
from collections.abc import Iterable

from store import keyspace
from store.core import Core


async def resolve(core: Core, vendor_id: str, key_id: str) -> str | None:
    """The project of the vendor's key ``key_id`` (None: no ref). Both names in one round
    trip (the auto-pipeline)."""
    mine, legacy = await asyncio.gather(
        core.call("GET", keyspace.key_ref(vendor_id, key_id)),
        core.call("GET", keyspace.legacy_key_ref(key_id)),
    )
    found: str | None = mine or legacy
    return found


async def _change(core: Core, vendor_id: str, project_id: str, key_id: str, op: str) -> None:
    script = core.scripts.key_ref
    await asyncio.gather(
        core.script(script, [keyspace.key_ref(vendor_id, key_id)], [project_id, op]),
        core.script(script, [keyspace.legacy_key_ref(key_id)], [project_id, op]),
    )


async def drop(core: Core, vendor_id: str, project_id: str, key_ids: Iterable[str]) -> None:
    """Deletes the refs of keys of ``project_id`` that are gone (or were never written)."""
    await asyncio.gather(*(_change(core, vendor_id, project_id, k, "del") for k in key_ids))


async def expire(
    core: Core,
    vendor_id: str,
    project_id: str,
    key_id: str,
    expires_at: str,
    *,
    persist: bool = False,
) -> None:
    """The ref lives exactly as long as the key hash it points at: ``expires_at`` (epoch s)
    plus the retention; ``''`` (a key that never expires) leaves it, or with ``persist``
    removes its TTL."""
    if expires_at:
        at_ms = (int(expires_at) + core.retention) * 1000
        await _change(core, vendor_id, project_id, key_id, str(at_ms))
    elif persist:
        await _change(core, vendor_id, project_id, key_id, "persist")
