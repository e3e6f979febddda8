"""The loader's execution check (the hot path): one round trip per check.

Checks of the same project that arrive together (the same event-loop tick) share one script
call (store/lua/execute.lua); what loaders receive (source, name, version, macros) is cached
per project and revision, and the script sends it only when this process's revision is stale.
Every check reads the revision atomically, so a change is seen by the very next run on every
instance. Bounded like every wait, by the core's ``Deadlines`` (one timer for all checks in
flight).
"""

import asyncio
import functools
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from store import keyspace
from store.core import Core
from store.errors import script_error
from store.licences import Licences
from store.models import Execution, Hosted, Limits

# Loader checks of one project per script call at most (see Checks._submit).
DEFAULT_CHECK_BATCH = 8

# A queued loader check: key_id, hwid, limit subject ("-": none), client IP, the IPv6 /48
# subject ("": none), its future.
Check = tuple[str, str, str, str, str, "asyncio.Future[tuple[list[Any], Hosted | None]]"]

# How a batch's checks are limited (checks batch apart by it): not at all; per client; per
# client and per IPv6 /48 (one more KEY per check, see store/lua/execute.lua).
FREE, LIMITED, WIDE = 0, 1, 2


class Checks:
    def __init__(
        self,
        core: Core,
        licences: Licences,
        *,
        limits: Limits | None = None,
        check_batch: int = DEFAULT_CHECK_BATCH,
    ) -> None:
        """``limits`` are the per-client limits of the check."""
        self.core = core
        self.licences = licences
        self.limits = limits if limits is not None else Limits()
        if check_batch < 1:
            raise ValueError("check_batch must be >= 1")
        # Loader checks per script call at most, and those queued in this tick, per project.
        self.check_batch = check_batch
        self._checks: dict[tuple[str, int], list[Check]] = {}
        self._checks_scheduled = False
        # project_id -> what its loaders receive: checked against Redis on every run
        self._hosted: dict[str, Hosted] = {}
        self.hosted_cache_size = 1024

    async def execute(
        self,
        project_id: str,
        key_id: str,
        hwid: str,
        client: str | None = None,
        ip: str = "",
        wide: str | None = None,
    ) -> Execution:
        """One execution check, in one round trip (see the module's docstring). ``client``
        (an IP address or IPv6 /64) is what the per-client limits count, inside the same
        script; None applies none. ``wide`` (an IPv6 client's /48, with ``client``) gets a
        failure limit of its own (``Limits.failures_48``). ``ip`` is matched against the
        vendor's blacklist (addresses and networks)."""
        fut = self._submit(project_id, key_id, hwid, client, ip, wide)
        self.core.deadlines.watch(fut)
        try:
            res, hosted = await fut
        except ResponseError as exc:
            raise script_error(exc) from None
        if len(res) < 5:
            return _failed_execution(res)
        _, discord_id, total, expires, note, new, ffa, remaining, reset = res
        if new == "1" and expires:
            # First run redeemed the key: its key -> project ref expires with it. Off the
            # response path: the command rides in the next auto-pipeline batch.
            ref = asyncio.ensure_future(self.licences.expire_ref(key_id, expires))
            ref.add_done_callback(_ignore_result)
        return Execution(
            code="KEY_VALID",
            hosted=hosted,
            discord_id=discord_id or None,
            total_executions=total,
            expires_at=int(expires) if expires else None,
            note=note,
            ffa=ffa == "1",
            remaining=None if remaining == "-1" else int(remaining),
            reset=None if remaining == "-1" else int(reset),
        )

    def _submit(
        self, project_id: str, key_id: str, hwid: str, client: str | None, ip: str, wide: str | None
    ) -> "asyncio.Future[tuple[list[Any], Hosted | None]]":
        """Queues a check; its future gets (the script's result for it, what loaders receive).
        A project's checks queued in one tick go as one script call: at the tick's end, or as
        soon as ``check_batch`` of them are queued (so Valkey starts on them while the rest of
        the tick is still being handled). Checks limited differently batch apart."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[list[Any], Hosted | None]] = loop.create_future()
        if client is None:
            mode = FREE
        elif wide is None or self.limits.failures_48 <= 0:
            mode, wide = LIMITED, None
        else:
            mode = WIDE
        batch_key = (project_id, mode)
        batch = self._checks.get(batch_key)
        if batch is None:
            batch = self._checks[batch_key] = []
            if not self._checks_scheduled:
                self._checks_scheduled = True
                # call_soon runs after every callback already ready in this tick: all
                # handlers woken by the same poll have queued their checks by then.
                loop.call_soon(self._send_checks)
        batch.append((key_id, hwid, client or "-", ip, wide or "", fut))
        if len(batch) >= self.check_batch:
            del self._checks[batch_key]
            self._send_safely(project_id, batch_key[1], batch, True)
        return fut

    def _send_checks(self) -> None:
        self._checks_scheduled = False
        batches, self._checks = self._checks, {}
        last = len(batches) - 1
        for i, ((project_id, mode), batch) in enumerate(batches.items()):
            # The tick's last batch writes everything queued: no reason to wait any longer.
            self._send_safely(project_id, mode, batch, i == last)

    def _send_safely(
        self, project_id: str, mode: int, batch: list[Check], flush: bool, body: bool = False
    ) -> None:
        """``_send_batch``; should it ever raise, its checks fail with the error at once
        (rather than waiting for the deadline) and the tick's other batches still go."""
        try:
            self._send_batch(project_id, mode, batch, flush, body)
        except Exception as exc:
            _fail_checks(batch, exc)

    def _send_batch(
        self, project_id: str, mode: int, batch: list[Check], flush: bool, body: bool = False
    ) -> None:
        """One script call for ``batch`` (EVAL with the script's body when ``body``)."""
        cached = self._hosted.get(project_id)
        now = self.core.now()
        lim = self.limits
        limit_args = (
            (lim.execute, lim.execute_window, lim.failures, lim.failure_window)
            if mode
            else (0, 1, 0, 1)
        )
        head, streams = keyspace.execute_fixed(project_id)
        check_keys: list[str] = []
        check_args: list[str] = []
        for key_id, hwid, subject, ip, wide, _ in batch:
            check_keys += (keyspace.key(project_id, key_id), keyspace.client(project_id, subject))
            if mode == WIDE:
                check_keys.append(keyspace.client(project_id, wide))
            check_args += (hwid, key_id, ip)
        script = self.core.scripts.execute
        command = (
            "EVAL" if body else "EVALSHA", script.source if body else script.sha,
            8 + len(streams) + len(check_keys),
            *head, keyspace.hourly_executions(project_id, now // 3600), *check_keys, *streams,
            now, self.core.retention, cached.rev if cached else "", *limit_args,
            lim.failures_48 if mode == WIDE else 0, *check_args,
        )  # fmt: skip
        fut = self.core.pipe.command(command, flush)
        fut.add_done_callback(
            functools.partial(self._batch_done, project_id, mode, batch, cached, body)
        )

    def _batch_done(
        self,
        project_id: str,
        mode: int,
        batch: list[Check],
        cached: Hosted | None,
        body: bool,
        fut: "asyncio.Future[Any]",
    ) -> None:
        """Hands each check its result (or the batch's error)."""
        if fut.cancelled():  # only when the pipeline is torn down: the checks go with it
            for *_, check in batch:
                check.cancel()
            return
        exc = fut.exception()
        if exc is not None:
            if isinstance(exc, NoScriptError) and not body:
                # Script cache flushed or server restarted: once more, with the script's body.
                pending = [c for c in batch if not c[-1].done()]
                if pending:
                    self._send_safely(project_id, mode, pending, True, body=True)
            else:
                _fail_checks(batch, exc)
            return
        res: list[Any] = fut.result()
        if len(res) == 1:  # PROJECT_NOT_FOUND: the same for every check
            for *_, check in batch:
                if not check.done():
                    check.set_result((res, None))
            return
        rev, fresh = res[0], res[1]
        # The script omits what loaders receive when no check is valid or the cached revision
        # is current.
        hosted = cached
        if fresh is not None:
            source, name, version, macros = fresh
            hosted = Hosted(rev, source, name, version, tuple(macros.split(",")) if macros else ())
            self._cache_hosted(project_id, hosted)
        for (*_, check), result in zip(batch, res[2:], strict=True):
            if not check.done():
                check.set_result((result, hosted))

    def _cache_hosted(self, project_id: str, hosted: Hosted) -> None:
        cache = self._hosted
        cache.pop(project_id, None)
        cache[project_id] = hosted
        if len(cache) > self.hosted_cache_size:  # drop the least recently refreshed
            del cache[next(iter(cache))]


def _failed_execution(res: list[Any]) -> Execution:
    code = res[0]
    if code == "RATE_LIMITED":
        _, kind, reset, retry = res
        return Execution(code=code, limited=kind, retry_after=int(retry), reset=int(reset))
    if len(res) == 1:
        return Execution(code=code)
    _, remaining, reset = res
    if remaining == "-1":
        return Execution(code=code)
    return Execution(code=code, remaining=int(remaining), reset=int(reset))


def _fail_checks(batch: list[Check], exc: BaseException) -> None:
    for *_, check in batch:
        if not check.done():
            check.set_exception(exc)


def _ignore_result(fut: "asyncio.Future[None]") -> None:
    if not fut.cancelled():
        fut.exception()
