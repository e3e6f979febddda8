"""The server's AOF housekeeping: how much the AOF grew since its last rewrite, how busy the
server is, and a rewrite on request.

An AOF rewrite stalls the server's main thread on fsyncs at its start and end (see
docs/performance.md), so ``leaf7 serve`` on the embedded Valkey asks for one early while the
server is quiet (service/storage.py), instead of letting the size threshold fire in the middle
of a busy spell.
"""

from typing import NamedTuple

from redis.exceptions import ResponseError

from store.core import Core
from store.redis_internals import parse_info


class AofState(NamedTuple):
    rewriting: bool  # a rewrite (or the snapshot it waits for) is under way
    grown: int  # bytes appended since the last rewrite (0 with AOF off)
    ops_per_sec: int  # the server's own moving figure (about the last 1.6 s)


class Persistence:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def aof(self) -> AofState:
        # The auto-pipeline hands INFO over as text: parsed as redis-py's own info() does.
        reply = await self.core.call("INFO", "persistence", "stats")
        info = parse_info(reply)
        if not int(info.get("aof_enabled", 0)):
            return AofState(False, 0, int(info.get("instantaneous_ops_per_sec", 0)))
        return AofState(
            bool(int(info["aof_rewrite_in_progress"]) or int(info["aof_rewrite_scheduled"])),
            max(0, int(info["aof_current_size"]) - int(info["aof_base_size"])),
            int(info["instantaneous_ops_per_sec"]),
        )

    async def rewrite_aof(self) -> bool:
        """Starts a rewrite; False when one is already under way."""
        try:
            await self.core.call("BGREWRITEAOF")
        except ResponseError as exc:
            if "in progress" in str(exc):
                return False
            raise
        return True
