"""The time bound on Redis replies, with one timer for every awaited future.

``Deadlines.watch`` notes a future's deadline (now + the owner's ``timeout``); one timer fires
at the oldest one still unanswered and fails every future past its deadline with
``StoreUnavailable``, which wakes its caller exactly as a cancelled ``asyncio.timeout`` would,
at a fraction of the cost (no timer armed and cancelled per call). Cancelling is safe for the
auto-pipeline: a reply that arrives for a future already failed is dropped, and replies stay
matched to commands in order. Used by ``store.core.Core`` for every command it sends.
"""

import asyncio
import collections
from typing import Any, Protocol

from store.errors import StoreUnavailable


class HasTimeout(Protocol):
    timeout: float | None
    timeouts: int

    def on_timeout(self) -> None: ...


class Deadlines:
    """Fails every watched future that is still unanswered ``owner.timeout`` seconds after it
    was watched. Answered futures leave the queue as new ones are watched."""

    def __init__(self, owner: HasTimeout) -> None:
        self._owner = owner
        self._queue: collections.deque[tuple[float, asyncio.Future[Any]]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, fut: "asyncio.Future[Any]") -> None:
        timeout = self._owner.timeout
        if timeout is None:
            return
        loop = fut.get_loop()
        queue = self._queue
        while queue and queue[0][1].done():  # amortised: one pop per watched future
            queue.popleft()
        queue.append((loop.time() + timeout, fut))
        if self._timer is None:
            self._timer = loop.call_at(queue[0][0], self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        queue = self._queue
        now = loop.time()
        expired = 0
        while queue:
            deadline, fut = queue[0]
            if not fut.done():
                if deadline > now:
                    break
                fut.set_exception(StoreUnavailable("storage timed out"))
                expired += 1
            queue.popleft()
        if expired:
            self._owner.timeouts += expired
            self._owner.on_timeout()
        if queue:
            self._timer = loop.call_at(queue[0][0], self._expire, loop)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
