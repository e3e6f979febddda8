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
