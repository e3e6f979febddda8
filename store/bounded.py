"""A time bound on every store operation.

A request must never hang on storage: a server that is stopped (SIGSTOP, a partition) keeps
its sockets open and simply does not answer, and the auto-pipeline's reader waits on its
socket without a timeout of its own. So every public store operation runs under
``asyncio.timeout(store.timeout)``; past it the operation is cancelled and raises
``StoreUnavailable`` (503). Cancelling is safe for the auto-pipeline: a reply that arrives for
a cancelled caller is dropped, and replies stay matched to commands in order.

A timed-out write has an unknown outcome: the server may still apply it when it resumes.
"""

import asyncio
import collections
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from store.errors import StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")


class HasTimeout(Protocol):
    timeout: float | None
    timeouts: int

    def on_timeout(self) -> None: ...


S = TypeVar("S", bound=HasTimeout)


Method = Callable[Concatenate[S, P], Coroutine[Any, Any, T]]


def bounded(method: Method[S, P, T]) -> Method[S, P, T]:
    """Runs ``method`` within ``self.timeout`` seconds, or raises ``StoreUnavailable``."""

    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        bound = asyncio.timeout(self.timeout)
        try:
            async with bound:
                return await method(self, *args, **kwargs)
        except TimeoutError:
            if not bound.expired():
                raise
            self.timeouts += 1
            self.on_timeout()
            raise StoreUnavailable("storage timed out") from None

    functools.update_wrapper(wrapper, method)
    return wrapper


class Deadlines:
    """The same bound for the hot path, with one timer for every awaited future instead of
    one ``asyncio.timeout`` (a timer armed and cancelled) per call. ``watch`` notes a future's
    deadline; the timer fires at the oldest one still unanswered and fails every future past
    its deadline with ``StoreUnavailable``, which wakes its caller exactly as a cancelled
    ``asyncio.timeout`` would. Answered futures leave the queue as new ones are watched."""

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
