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

Replicas (``LEAF7_MIN_REPLICAS_ACK=N``, ``replicas``): the same pipeline also sends
``WAIT N <ms>`` before its WAITAOF: the write is in the memory of N replicas, so it survives
the loss of the primary (a failover promotes one of them). Not ``WAITAOF 1 N``: a replica
reports its own fsync only with its next acknowledgement (once a second), so with
``appendfsync everysec`` on the replicas it took 0.1 to over 0.8 s on Valkey 9.1 (503s with a
short bound); losing the write would take the primary and the replicas failing within the
same second. WAIT gets half the server-side time, WAITAOF the rest. Fewer than N
acknowledgements in time: ``StoreUnavailable`` (503), as above; the write is applied on the
primary but not acknowledged, and the vendor may retry. Not on Redis Cluster (WAIT and WAITAOF
name no key; the configuration refuses it).
"""

import logging
from typing import Any

from redis.exceptions import ResponseError

from store.errors import StoreUnavailable

log = logging.getLogger(f"leaf7.{__name__}")

WAITAOF = "WAITAOF"
WAIT = "WAIT"


class Durability:
    """Decides whether a write pipeline ends with WAITAOF, and checks its reply."""

    def __init__(
        self, mode: str = "waitaof", timeout: float | None = 2.0, replicas: int = 0
    ) -> None:
        if mode not in ("waitaof", "none"):
            raise ValueError(f"unknown fsync mode {mode!r}")
        if replicas < 0:
            raise ValueError("replicas must be >= 0")
        self.mode = mode  # "waitaof", "none", or "unsupported" once the server refused
        self.replicas = replicas  # replicas that must acknowledge too (WAITAOF/WAIT)
        # The server gives up a little before the request's own bound, so that a slow disk
        # reads as "not fsynced" (503) rather than as a lost connection.
        self.timeout_ms = 0 if timeout is None else max(1, int(timeout * 1000 * 0.8))
        self.waits = 0  # WAITAOF confirmations (numlocal >= 1)
        self.timeouts = 0  # WAITAOF that returned numlocal == 0
        self.replica_timeouts = 0  # fewer replicas than ``replicas`` acknowledged in time

    @property
    def enabled(self) -> bool:
        return self.mode == "waitaof" or self.replicas > 0

    @property
    def _wait_ms(self) -> int:
        """WAIT's share of the server-side time (the rest is WAITAOF's)."""
        return max(1, self.timeout_ms // 2) if self.replicas else 0

    def command(self) -> tuple[Any, ...]:
        """``WAITAOF 1 0 <ms>``: this server's AOF."""
        return (WAITAOF, 1, 0, max(1, self.timeout_ms - self._wait_ms))

    def replica_command(self) -> tuple[Any, ...]:
        """``WAIT <replicas> <ms>``: the write is in the memory of ``replicas`` replicas."""
        return (WAIT, self.replicas, self._wait_ms)

    def commands(self) -> list[tuple[Any, ...]]:
        """What follows a durable write in its pipeline (WAIT first: a replica acknowledges
        at once, while the local fsync may take a cron tick)."""
        out = [self.replica_command()] if self.replicas else []
        if self.mode == "waitaof":
            out.append(self.command())
        return out

    def check_all(self, sent: list[tuple[Any, ...]], replies: list[Any]) -> None:
        """Inspects the replies of ``sent`` (from ``commands()``); raises the first
        failure once every reply has been looked at."""
        first: Exception | None = None
        for command, reply in zip(sent, replies, strict=True):
            try:
                if command[0] == WAIT:
                    self.check_replicas(reply)
                else:
                    self.check(reply)
            except Exception as exc:  # raised below, once the others are counted
                first = first or exc
        if first is not None:
            raise first

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

    def check_replicas(self, reply: Any) -> None:
        """Inspects the reply of ``replica_command()``: fewer replicas than asked for within
        the time is a 503."""
        if isinstance(reply, BaseException):
            raise StoreUnavailable(f"WAIT failed: {reply}")
        if int(reply) < self.replicas:
            self.replica_timeouts += 1
            raise StoreUnavailable(f"write acknowledged by {reply} of {self.replicas} replicas")

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
