"""The contract of store/lua/execute.lua, written once on this side: the KEYS and ARGV of one
call (``execute_call``) and the shapes of its reply (the structs below, decoded by
``decode_check`` and ``decode_hosted``). The script's header documents the same layout; a
test (tests/test_execute_contract.py) holds the two together.

The reply crosses as nested lists (Lua tables); each struct is ``array_like`` (its fields in
the script's order), so ``msgspec.convert`` reads one straight from its list: the structs are
the only place on this side that spells the layout out.
"""

from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from store import keyspace
from store.models import Hosted, Limit, Limits

# How a batch's checks are limited (checks batch apart by it): not at all; per client; per
# client and per IPv6 /48 (one more KEY per check).
FREE, LIMITED, WIDE = 0, 1, 2

# One check's arguments: key_id, hwid, limit subject ("-": none), client IP, the IPv6 /48
# subject ("": none), executor name; what follows (the batcher's tag and future) is ignored.
CheckArgs = tuple[str, str, str, str, str, str, object, object]


def execute_call(
    project_id: str,
    checks: Iterable[CheckArgs],
    *,
    mode: int,
    now: int,
    retention: int,
    cached_rev: str,
    limits: Limits,
    executor_cap: int,
) -> tuple[list[Any], list[Any]]:
    """(KEYS, ARGV) of one script call deciding ``checks`` in order (see the script's header).
    ``mode``: FREE applies no per-client limit, WIDE adds each check's /48 limit hash."""
    head, streams = keyspace.execute_fixed(project_id)
    hour = now // 3600
    keys: list[Any] = [
        *head,
        keyspace.hourly_executions(project_id, hour),
        keyspace.hourly_executors(project_id, hour),
    ]
    args: list[Any] = [now, retention, cached_rev]
    if mode == FREE:
        args += (0, 1, 0, 1, 0)
    else:
        lim = limits
        args += (lim.execute, lim.execute_window, lim.failures, lim.failure_window)
        args.append(lim.failures_48 if mode == WIDE else 0)
    args.append(executor_cap)
    for key_id, hwid, subject, ip, wide, executor, _, _ in checks:
        keys += (keyspace.key(project_id, key_id), keyspace.client(project_id, subject))
        if mode == WIDE:
            keys.append(keyspace.client(project_id, wide))
        args += (hwid, key_id, ip, executor)
    keys += streams
    return keys, args


class HostedReply(msgspec.Struct, array_like=True, frozen=True):
    """What loaders receive, sent only when the caller's cached revision is stale."""

    source: str
    name: str
    version: str
    macros: str  # comma-separated
    marks: str | None  # the watermark plan; None: the project marks no copies


class LimitedReply(msgspec.Struct, array_like=True, frozen=True):
    """RATE_LIMITED: refused before any other verdict (not counted, no event)."""

    code: Literal["RATE_LIMITED"]
    kind: Limit
    reset: int  # epoch s
    retry_after: int  # s


class FailureReply(msgspec.Struct, array_like=True, frozen=True):
    """Any other refusal (and PROJECT_NOT_FOUND, which the script sends once per batch)."""

    code: str
    remaining: int  # the client's executions left in the window; -1: no limit
    reset: int  # the window's end (epoch s); 0: no limit


class ValidReply(msgspec.Struct, array_like=True, frozen=True):
    """KEY_VALID."""

    code: Literal["KEY_VALID"]
    discord_id: str  # "": none
    total_executions: int
    expires_at: str  # epoch s; "": never
    note: str | None
    redeemed_now: bool  # this run redeemed the key
    ffa: bool
    remaining: int  # as FailureReply's
    reset: int
    sign_kid: str | None  # None: signed verdicts off
    prev_kid: str | None  # the previous key id while still accepted
    premium: bool  # False: a free key or free-for-all


CheckReply = ValidReply | LimitedReply | FailureReply

NOT_FOUND = FailureReply("PROJECT_NOT_FOUND", -1, 0)


def decode_check(item: list[Any]) -> CheckReply:
    """One check's result as its struct (``strict=False``: the script sends most numbers and
    flags as strings, e.g. ``"1"``; a result that fits none raises ``msgspec.ValidationError``)."""
    code = item[0]
    if code == "KEY_VALID":
        return msgspec.convert(item, ValidReply, strict=False)
    if code == "RATE_LIMITED":
        return msgspec.convert(item, LimitedReply, strict=False)
    if len(item) == 1:
        return NOT_FOUND
    return msgspec.convert(item, FailureReply, strict=False)


def decode_hosted(rev: str, item: list[Any]) -> Hosted:
    """What loaders receive as of ``rev``, from the reply's HostedReply (sent only when the
    caller's revision is stale: off the common path)."""
    h = msgspec.convert(item, HostedReply)
    macros = tuple(h.macros.split(",")) if h.macros else ()
    return Hosted(rev, h.source, h.name, h.version, macros, h.marks or "")
