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
from collections.abc import Callable
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from store.core import Core
from store.errors import script_error
from store.execute_contract import (
    FREE,
    LIMITED,
    WIDE,
    FailureReply,
    LimitedReply,
    ValidReply,
    decode_check,
    decode_hosted,
    execute_call,
)
from store.licences import Licences
from store.models import Execution, Hosted, Limits

# Loader checks of one project per script call at most (see Checks._submit).
DEFAULT_CHECK_BATCH = 8
# Valid checks for on_valid fewer than this wait for one more read from Redis (see
# Checks._after_read); 0: none waits.
HOLD_BELOW = 16
# Executor names counted per project and hour at most; valid runs of any other name that hour
# are counted as "other" (store/lua/execute.lua).
EXECUTOR_CAP = 16

# A queued loader check: key_id, hwid, limit subject ("-": none), client IP, the IPv6 /48
# subject ("": none), executor name (store/execute_contract.py's CheckArgs), the caller's tag
# (None: none; see ValidHook), its future. Checks batch apart by how they are limited (FREE,
# LIMITED, WIDE there).
Check = tuple[str, str, str, str, str, str, Any, "asyncio.Future[Execution]"]

# Called with a project and its valid checks queued with a tag, as (tag, execution), of all the
# batches whose replies came in one read from Redis, before any of those checks is answered:
# the service signs their verdicts there (handlers/verdicts.py), one signature for them all and
# no wait of its own per check.
ValidHook = Callable[[str, list[tuple[Any, Execution]]], None]


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
        self.on_valid: ValidHook | None = None
        # project_id -> the valid checks of this read waiting for on_valid: (tag, answer, future)
        self._hooked: dict[str, list[tuple[Any, Execution, asyncio.Future[Execution]]]] = {}
        self._held = False  # the queued ones already waited for one read
        self._in_flight = 0  # script calls sent and not answered yet
        core.pipe.on_read = self._after_read

    async def execute(
        self,
        project_id: str,
        key_id: str,
        hwid: str,
        client: str | None = None,
        ip: str = "",
        wide: str | None = None,
        executor: str = "unknown",
        tag: Any = None,
    ) -> Execution:
        """One execution check, in one round trip (see the module's docstring). ``client``
        (an IP address or IPv6 /64) is what the per-client limits count, inside the same
        script; None applies none. ``wide`` (an IPv6 client's /48, with ``client``) gets a
        failure limit of its own (``Limits.failures_48``). ``ip`` is matched against the
        vendor's blacklist (addresses and networks). A valid run is counted under
        ``executor`` (a normalised name, handlers/executors.py) in the hour's executor hash.
        A valid check queued with a ``tag`` goes through ``on_valid`` before it is answered."""
        fut = self._submit(project_id, key_id, hwid, client, ip, wide, executor, tag)
        self.core.deadlines.watch(fut)
        try:
            return await fut
        except ResponseError as exc:
            raise script_error(exc) from None

    def _submit(
        self,
        project_id: str,
        key_id: str,
        hwid: str,
        client: str | None,
        ip: str,
        wide: str | None,
        executor: str,
        tag: Any,
    ) -> "asyncio.Future[Execution]":
        """Queues a check; its future gets (the script's result for it, what loaders receive).
        A project's checks queued in one tick go as one script call: at the tick's end, or as
        soon as ``check_batch`` of them are queued (so Valkey starts on them while the rest of
        the tick is still being handled). Checks limited differently batch apart."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Execution] = loop.create_future()
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
        batch.append((key_id, hwid, client or "-", ip, wide or "", executor, tag, fut))
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
        keys, args = execute_call(
            project_id,
            batch,
            mode=mode,
            now=self.core.now(),
            retention=self.core.retention,
            cached_rev=cached.rev if cached else "",
            limits=self.limits,
            executor_cap=EXECUTOR_CAP,
        )
        script = self.core.scripts.execute
        command = (
            "EVAL" if body else "EVALSHA", script.source if body else script.sha, len(keys),
            *keys, *args,
        )  # fmt: skip
        fut = self.core.pipe.command(command, flush)
        self._in_flight += 1
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
        self._in_flight -= 1
        if self._hooked and (fut.cancelled() or fut.exception() is not None):
            # No read may follow this one: the checks held for one go now.
            asyncio.get_running_loop().call_soon(self._after_read, False)
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
            reply = decode_check(res)
            assert not isinstance(reply, ValidReply)
            for *_, check in batch:
                if not check.done():
                    check.set_result(_failed_execution(reply))
            return
        rev, fresh = res[0], res[1]
        # The script omits what loaders receive when no check is valid or the cached revision
        # is current.
        hosted = cached
        if fresh is not None:
            hosted = decode_hosted(rev, fresh)
            self._cache_hosted(project_id, hosted)
        # Decoded here, as the reply is handed over. The valid checks queued with a tag wait
        # for the hook, which gets those of every batch in the same read from Redis at once
        # (the pipe calls _after_read once the read's callbacks, this one included, have run):
        # one signature for them all. The others are answered now.
        hook = self.on_valid
        for (key_id, *_, tag, check), item in zip(batch, res[2:], strict=True):
            if check.done():
                continue
            try:
                answer = self._execution(project_id, key_id, item, hosted)
            except Exception as error:  # a reply that fits no verdict: this check's error only
                check.set_exception(error)
                continue
            if tag is not None and hook is not None and answer.code == "KEY_VALID":
                if not self._hooked and self.core.pipe.on_read != self._after_read:
                    # The pipe calls another hook: then at the next iteration (no hang).
                    asyncio.get_running_loop().call_soon(self._after_read)
                self._hooked.setdefault(project_id, []).append((tag, answer, check))
            else:
                check.set_result(answer)

    def _after_read(self, hold: bool = True) -> None:
        """The pipe's read hook: hands the valid checks queued with a tag, per project, to
        ``on_valid``, then answers them (with its error, should it raise). Under load (other
        script calls still to answer) fewer than HOLD_BELOW of them wait for the next read,
        once: the hook then signs twice as many at a time (handlers/verdicts.py)."""
        if not self._hooked:
            return
        if (
            hold
            and not self._held
            and self._in_flight
            and sum(map(len, self._hooked.values())) < HOLD_BELOW
        ):
            self._held = True  # a reply is due: its read calls this again
            return
        hooked, self._hooked = self._hooked, {}
        self._held = False
        hook = self.on_valid
        for project_id, checks in hooked.items():
            error = None
            try:
                if hook is not None:
                    hook(project_id, [(tag, answer) for tag, answer, _ in checks])
            except Exception as exc:  # the project's tagged checks fail with it
                error = exc
            for _, answer, check in checks:
                if check.done():
                    continue
                if error is None:
                    check.set_result(answer)
                else:
                    check.set_exception(error)

    def _execution(
        self, project_id: str, key_id: str, item: list[Any], hosted: Hosted | None
    ) -> Execution:
        """One check's Execution from its part of the reply."""
        reply = decode_check(item)
        if not isinstance(reply, ValidReply):
            return _failed_execution(reply)
        expires = reply.expires_at
        if reply.redeemed_now and expires:
            # First run redeemed the key: its key -> project ref expires with it. Off the
            # response path: the commands ride in the next auto-pipeline batches.
            ref = asyncio.ensure_future(self.licences.expire_ref(project_id, key_id, expires))
            ref.add_done_callback(_ignore_result)
        unlimited = reply.remaining < 0
        return Execution(
            code="KEY_VALID",
            hosted=hosted,
            discord_id=reply.discord_id or None,
            total_executions=reply.total_executions,
            expires_at=int(expires) if expires else None,
            note=reply.note,
            ffa=reply.ffa,
            remaining=None if unlimited else reply.remaining,
            reset=None if unlimited else reply.reset,
            sign_kid=reply.sign_kid,
            prev_kid=reply.prev_kid,
            premium=reply.premium,
        )

    def _cache_hosted(self, project_id: str, hosted: Hosted) -> None:
        cache = self._hosted
        cache.pop(project_id, None)
        cache[project_id] = hosted
        if len(cache) > self.hosted_cache_size:  # drop the least recently refreshed
            del cache[next(iter(cache))]


def _failed_execution(reply: LimitedReply | FailureReply) -> Execution:
    if isinstance(reply, LimitedReply):
        return Execution(
            code=reply.code, limited=reply.kind, retry_after=reply.retry_after, reset=reply.reset
        )
    if reply.remaining < 0:
        return Execution(code=reply.code)
    return Execution(code=reply.code, remaining=reply.remaining, reset=reply.reset)


def _fail_checks(batch: list[Check], exc: BaseException) -> None:
    for *_, check in batch:
        if not check.done():
            check.set_exception(exc)


def _ignore_result(fut: "asyncio.Future[None]") -> None:
    if not fut.cancelled():
        fut.exception()
