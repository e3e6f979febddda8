"""Automatic pipelining: commands issued in the same event-loop tick go to Redis as one batch.

A loader check is one command (EVALSHA), so under load hundreds of concurrent checks share a
handful of round trips instead of each holding a pooled connection for its own. Each batch is
sent with a non-transactional pipeline; results (or per-command errors) go back to the
awaiting callers in order.
"""

import asyncio
from typing import Any

from redis.asyncio import Redis


class AutoPipeline:
    def __init__(self, client: "Redis", max_batch: int = 256) -> None:
        self._client = client
        self._max_batch = max_batch
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.commands = 0

    def call(self, *args: Any) -> "asyncio.Future[Any]":
        """Queues one command; the future resolves with its reply (or raises its error)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, fut))
        if not self._scheduled:
            self._scheduled = True
            # call_soon runs after every callback already ready in this tick: all handlers
            # woken by the same poll have queued their commands by then.
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        for i in range(0, len(pending), self._max_batch):
            task = asyncio.ensure_future(self._send(pending[i : i + self._max_batch]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], "asyncio.Future[Any]"]]) -> None:
        self.batches += 1
        self.commands += len(batch)
        try:
            if len(batch) == 1:
                results: list[Any] = [await self._client.execute_command(*batch[0][0])]  # type: ignore[no-untyped-call]
            else:
                pipe = self._client.pipeline(transaction=False)
                for args, _ in batch:
                    pipe.execute_command(*args)
                results = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the whole batch failed (connection lost, timeout)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        except BaseException as exc:  # cancelled: do not leave callers hanging
            for _, fut in batch:
                if not fut.done():
                    fut.cancel()
            raise exc
        for (_, fut), result in zip(batch, results, strict=True):
            if fut.done():
                continue
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    async def drain(self) -> None:
        """Waits for every batch in flight (used on shutdown)."""
        while self._tasks or self._pending:
            await asyncio.sleep(0)
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
