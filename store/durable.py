"""Durable vendor writes: acknowledged only once the server has fsynced them.

``WAITAOF numlocal numreplicas timeout`` (Redis >= 7.2, Valkey) blocks the *connection that
sends it* until everything that connection wrote is fsynced to the AOF. So the write and its
WAITAOF go out together in one pipeline on one pool connection (one round trip):

- not through the auto-pipeline: a WAITAOF there would block that connection inside the
  server until the next fsync, and every loader check queued behind it would wait too;
- not on a different connection: WAITAOF waits for the offset of *its own* connection's last
  write, so on a connection that wrote nothing it returns at once and proves nothing.

With ``appendfsync everysec`` a waiting WAITAOF is answered after the server's next
background fsync, which it notices on its next cron tick: with the default ``hz 10`` that is
up to ~100 ms, so the embedded Valkey runs with ``hz 100`` (a few milliseconds).

A server without WAITAOF (Redis < 7.2, fakeredis) or without AOF answers an error; the write
itself has been applied, so it is acknowledged, the store logs one warning and stops asking
(mode ``unsupported``); any other error reply of WAITAOF is a 503. ``LEAF7_FSYNC=none``
never asks. A WAITAOF that times out (``[0, n]``) raises ``StoreUnavailable``: the write is
applied but not known to be on disk, so it is not acknowledged (503); the vendor may retry.
"""

import logging
from typing import Any

from redis.exceptions import ResponseError

from store.errors import StoreUnavailable

log = logging.getLogger("leaf7.store")

WAITAOF = "WAITAOF"


class Durability:
    """Decides whether a write pipeline ends with WAITAOF, and checks its reply."""

    def __init__(self, mode: str = "waitaof", timeout: float | None = 2.0) -> None:
        if mode not in ("waitaof", "none"):
            raise ValueError(f"unknown fsync mode {mode!r}")
        self.mode = mode  # "waitaof", "none", or "unsupported" once the server refused
        # The server gives up a little before the request's own bound, so that a slow disk
        # reads as "not fsynced" (503) rather than as a lost connection.
        self.timeout_ms = 0 if timeout is None else max(1, int(timeout * 1000 * 0.8))
        self.waits = 0  # WAITAOF confirmations (numlocal >= 1)
        self.timeouts = 0  # WAITAOF that returned numlocal == 0

    @property
    def enabled(self) -> bool:
        return self.mode == "waitaof"

    def command(self) -> tuple[Any, ...]:
        """``WAITAOF 1 0 <ms>``: this server's AOF, no replicas."""
        return (WAITAOF, 1, 0, self.timeout_ms)

    def check(self, reply: Any) -> None:
        """Inspects the reply of the command from ``command()``."""
        if isinstance(reply, ResponseError):
            self._unsupported(reply)
            return
        if isinstance(reply, BaseException):
            raise reply
        numlocal = int(reply[0])
        if numlocal < 1:
            self.timeouts += 1
            raise StoreUnavailable("write not fsynced in time")
        self.waits += 1

    def _unsupported(self, exc: ResponseError) -> None:
        text = str(exc).lower()
        if "unknown command" not in text and "appendonly" not in text:
            raise StoreUnavailable(f"WAITAOF failed: {exc}")
        if self.mode == "waitaof":
            self.mode = "unsupported"
            log.warning(
                "the Redis server refused WAITAOF (%s): vendor writes are acknowledged "
                "without waiting for fsync; use Redis >= 7.2 / Valkey with appendonly yes, "
                "or appendfsync always (see README, Operations)",
                exc,
            )
