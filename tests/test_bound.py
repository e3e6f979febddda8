"""Every Redis wait is bounded: against a real Valkey that is SIGSTOPped (its sockets stay
open, nothing answers), every public coroutine of the store and every route that touches
Redis, each called alone, fails within the bound (503 ``Storage unavailable`` over HTTP), and
everything works again after SIGCONT."""

import inspect
import time
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from handlers.openapi import Operation
from service.config import Settings
from store import Store, StoreUnavailable
from store.integrations import Duration, Hook
from store.models import BuyerKey
from store.transfer import ImportEntry
from store.webhooks import Notification
from tests.support.api import EXECUTE, Api, store_of
from tests.support.faults import Faulty, app_on

pytestmark = [pytest.mark.real, pytest.mark.slow]

BOUND = 0.3
SLACK = 5.0  # beyond the bound: "does not hang" (the wait itself: >= 0.9 x BOUND)
PID = "00000000-0000-4000-8000-000000000001"

# An argument for every parameter name a store coroutine takes. A new parameter name fails the
# test until it is added here, so a new method cannot go untested.
ARGS: dict[str, Any] = {
    "vendor_id": "00000000-0000-4000-8000-00000000000f",
    "project_id": PID,
    "key_id": "k" * 32,
    "discord_id": "123456789",
    "name": "n",
    "fields": {"name": "p"},
    "changes": {"name": "q"},
    "api_key": "l7_unknown",
    "limit": 10,
    "window": 60,
    "grace": 0,
    "source": "print(1)",
    "version": None,
    "macros": "",
    "amount": 1,
    "key_days": 1,
    "key_hours": 0,
    "key_minutes": 0,
    "note": None,
    "hwid": "hw",
    "client": "1.2.3.4",
    "ip": "1.2.3.4",
    "seconds": 60,
    "duration": 60,
    "hours": 12,
    "expires_at": "2000000000",
    "webhook_url": "https://example.com/hook",
    "notify": True,
    "consumer": "c",
    "count": 1,
    "backoff": 1.0,
    "max_backoff": 1.0,
    "n": Notification(PID, "1-0", 1, {}),
    "entry_id": "e",
    "entry_ids": ["1-0"],
    "min_idle": 1.0,
    "reason": "r",
    "index": f"l7:{{{PID}}}:buyers",
    "keys": [f"l7:{{{PID}}}:project"],
    "commands": [("PING",)],
    "cursor": None,
    "integration_id": "0" * 32,
    "provider": "sellix",
    "secret": "s",
    "products": {"p": Duration()},
    "hook": Hook(
        integration_id="0" * 32,
        project_id=PID,
        vendor_id="00000000-0000-4000-8000-00000000000f",
        provider="sellix",
        secret="s",
        products={"p": Duration()},
    ),
    "order_id": "o",
    "lines": [(["p"], 1)],
    "email": None,
    "idempotency_key": None,
    "entries": [ImportEntry(key_id="imported-key-1", redeemed=True, hwid="hw")],
    "session_id": "s" * 43,
    "digest": "d" * 64,
    "idle": 60,
    "lifetime": 120,
    "batch": "[]",
    "subject": "1.2.3.4",
    "message": "m",
    "marks": "",
    "op": "run",
    "job": "j",
    "query": "q",
    "kind": BuyerKey,
    "executor": "synapse",
    "limits": (10, 60),
    "days": 7,
    "change_ids": [f"{PID}:1-0:1"],
    "lease": 60.0,
    "state": "s" * 43,
    "record": "{}",
    "ttl": 60,
    "step": 0,
    "machine_id": "m" * 32,
    "browser": "b",
    "token": "t",
    "click": "c",
    "checkpoints": 1,
    "min_seconds": 10,
    "keys_per_day": 1,
    "allow_extend": False,
    "max_extends": 1,
    "field": "views",
    "unique_id": "u",
    "enabled": True,
    "config": "{}",
    "turnstile_secret": "",
    "checkpoint_secrets": [],
    "mode": "new",
    "ip_limit": 10,
    "ip_window": 3600,
    "guild": "1100000000000000001",
    "role": "1200000000000000002",
}
# Coroutines that are not a request's work: closing drains the pipeline on shutdown;
# follow_primary runs in the background on Redis Sentinel (tests/test_sentinel.py).
LIFECYCLE = {"core.close", "core.follow_primary"}


def _arguments(fn: Any, store: Store) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            args.append("PING")
        elif p.name == "script":
            args.append(store.core.scripts.get_key)
        elif p.name == "args":
            args.append([])
        elif p.default is not p.empty and p.name not in ARGS:
            continue
        elif p.kind is p.KEYWORD_ONLY:
            kwargs[p.name] = ARGS[p.name]
        else:
            assert p.name in ARGS, f"{fn.__qualname__}: no test argument for {p.name!r}"
            args.append(ARGS[p.name])
    return args, kwargs


def public_coroutines(store: Store) -> list[tuple[str, Any]]:
    """(``domain.method``, bound method) for every public coroutine (or async generator) of
    the store's core and domains, plus the core's ``call`` (it returns a watched future)."""
    found = [("core.call", store.core.call)]
    for domain, obj in vars(store).items():
        for name, fn in inspect.getmembers(obj, inspect.ismethod):
            label = f"{domain}.{name}"
            if name.startswith("_") or label in LIFECYCLE:
                continue
            if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
                found.append((label, fn))
    return found


async def _run(fn: Any, store: Store) -> None:
    args, kwargs = _arguments(fn, store)
    if inspect.isasyncgenfunction(fn):
        async for _ in fn(*args, **kwargs):
            pass
    else:
        await fn(*args, **kwargs)


async def test_every_store_coroutine_is_bounded(faulty: Faulty) -> None:
    # A client with no socket timeouts of its own: only the store's bound can answer.
    redis = Redis.from_url(faulty.url, decode_responses=True)
    store = Store(redis, timeout=BOUND)
    await store.core.load_scripts()
    methods = public_coroutines(store)
    assert len(methods) >= 40, [label for label, _ in methods]
    faulty.sigstop()
    slow = []
    try:
        for label, fn in methods:
            t0 = time.monotonic()
            # StoreUnavailable when the bound passed; a (re)connection to the stopped server
            # may also fail on its own first (the error middleware answers 503 for both).
            with pytest.raises((StoreUnavailable, RedisConnectionError)) as raised:
                await _run(fn, store)
            took = time.monotonic() - t0
            waited = raised.type is not StoreUnavailable or took >= BOUND * 0.9
            if not waited or took >= BOUND + SLACK:
                slow.append((label, raised.typename, round(took, 3)))
    finally:
        faulty.sigcont()
    assert not slow, slow
    assert store.core.timeouts >= len(methods) // 2
    assert await store.core.ping()  # recovered
    await store.close()
    await redis.aclose()


def _redis_routes(client: TestClient[Any, Any]) -> list[tuple[str, str]]:
    """(method, path template) of every route that touches Redis, once each (not the
    trailing-slash twin)."""
    out = []
    for route in client.app.router.routes():
        op: Operation | None = getattr(route.handler, "__openapi__", None)
        path = route.resource.canonical if route.resource is not None else ""
        if op is None or not op.redis or path.endswith("/") or route.method == "HEAD":
            continue
        out.append((route.method, path))
    return out


async def test_each_route_alone_answers_503_within_the_bound_and_recovers(
    aiohttp_client: Any, faulty: Faulty, settings: Settings
) -> None:
    client = await app_on(aiohttp_client, faulty, replace(settings, redis_timeout=BOUND))
    api = await Api(client, store_of(client)).login()
    pid = (await api.project())["project_id"]
    [key] = await api.keys(pid)
    run = {"project_id": pid, "script_key": key["key_id"], "hwid": "PC"}
    assert (await (await client.post(EXECUTE, json=run)).json())["code"] == "KEY_VALID"
    entry = await api.call("POST", "/api/vendor/blacklist", {"hwid": "x"})
    values = {
        "{project_id}": pid,
        "{key_id}": key["key_id"],
        "{discord_id}": "555",
        "{entry_id}": entry["id"],
        "{integration_id}": "0" * 32,  # a well-formed id: its lookup is the Redis wait
    }
    bodies: dict[str, Any] = {
        "/api/vendor/projects": {"name": "P"},
        "/api/vendor/projects/{project_id}": {"name": "Q"},
        "/api/vendor/projects/{project_id}/source": {"source": "print(1)"},
        "/api/vendor/keys/buyer": {"project_id": pid},
        "/api/vendor/keys/redeem": {"key_id": key["key_id"], "discord_id": "555"},
        "/api/vendor/keys/active/extend": {"project_id": pid, "key_days": 1},
        "/api/vendor/keys/active/{key_id}/hwid": {"new_hwid": "H"},
        "/api/vendor/blacklist": {"hwid": "y"},
        "/api/vendor/users/{discord_id}/reset_hwid": {"project_id": pid},
        "/api/loader/getkey": {"project_id": pid, "hwid": "PC"},
        "/api/loader/report": {"project_id": pid, "reason": "unsigned"},
        EXECUTE: run,
    }
    routes = _redis_routes(client)
    assert len(routes) >= 30, routes
    faulty.sigstop()
    failures = []
    try:
        for method, template in routes:
            path = template
            for name, value in values.items():
                path = path.replace(name, value)
            path = path.replace("{key_id:(?!extend$)[^{}/]+}", key["key_id"])
            if method == "GET" and template == "/api/vendor/keys/buyer":
                path += f"?project_id={pid}"
            if method == "DELETE" and template == "/api/vendor/keys/buyer":
                path += f"?project_id={pid}&redeemed=false"
            body = bodies.get(template) if method in ("POST", "PUT", "PATCH") else None
            t0 = time.monotonic()
            resp = await client.request(method, path, json=body, headers=api.auth)
            answer = (resp.status, await resp.json())
            took = time.monotonic() - t0
            if answer != (503, {"detail": "Storage unavailable"}) or took >= BOUND + SLACK:
                failures.append((method, template, answer, round(took, 3)))
    finally:
        faulty.sigcont()
    assert not failures, failures
    # Recovered: the same vendor and loader calls work again.
    assert (await (await client.post(EXECUTE, json=run)).json())["code"] == "KEY_VALID"
    assert len(await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")) >= 1
