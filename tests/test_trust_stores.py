"""What a store's hook call may decide (issue 22, defects 3 and 5): a store's orders spend the
vendor's one key-generation budget (shared with the API, the dashboard and import), and only
the signed body decides; secrets are long enough; failed signatures are limited without
locking the real store out.

Every test runs the app over HTTP on fakeredis, a real Valkey and a real Valkey Cluster, with
the movable clock (the limits' windows are counted on the service's clock). The payloads and
signatures are tests/support/stores.py's: each store's documented shape and scheme.
"""

import asyncio
import json
import re
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from handlers.integrations import HOOK_BAD_SIGNATURE_WINDOW, HOOK_BAD_SIGNATURES
from store import keyspace
from tests.support.api import Api, ApiWith, Clock
from tests.support.stores import data_keys, deliver, integrate, payload, sign

WINDOW = 60  # LEAF7_RATE_WINDOW (the default)


def order(provider: str, order_id: str, quantity: int = 1) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload(provider, order=order_id, quantity=quantity)).encode()
    return body, sign(provider, body)


async def buyer_keys(api: Api, pid: str) -> int:
    n: int = await api.store.redis.scard(keyspace.buyer_index(pid))
    return n


def retry_after(status: int, text: str, headers: Any) -> int:
    """The seconds of a rate-limit answer's Retry-After."""
    assert status == 429, (status, text[:200])
    assert json.loads(text) == {"detail": "Too many requests"}
    seconds = int(headers["Retry-After"])
    assert 1 <= seconds <= WINDOW
    return seconds


async def dashboard_csrf(api: Api) -> str:
    """Signs in to the dashboard through its form; the session's CSRF token."""
    token = re.compile(r'name="csrf" value="([^"]+)"')
    form = await (await api.client.get("/dashboard/signin")).text()
    found = token.search(form)
    assert found
    data = {"csrf": found.group(1), "api_key": api.api_key}
    resp = await api.client.post("/dashboard/signin", data=data, allow_redirects=False)
    assert resp.status == 303
    found = token.search(await (await api.client.get("/dashboard/settings")).text())
    assert found
    return found.group(1)


async def post_hook(
    api: Api, integration: dict[str, Any], body: bytes, headers: dict[str, str]
) -> tuple[int, str, Any]:
    resp = await api.client.post(
        "/api/hooks/" + integration["integration_id"],
        data=body,
        headers={"Content-Type": "application/json", **headers},
    )
    return resp.status, await resp.text(), resp.headers


# ---- defect 3: one key-generation budget per vendor -------------------------------------------


async def test_a_burst_of_big_orders_stops_at_the_budget_and_each_order_lands_once_later(
    api_with: ApiWith, app_redis: "Redis | RedisCluster", clock: Clock
) -> None:
    api = await api_with(app_redis, rate_keygen=30)  # the default: 30 a minute
    clock.freeze()  # one window for the whole burst
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, "sellix")
    orders = [order("sellix", f"burst-{n}", quantity=1000) for n in range(45)]
    answers = await asyncio.gather(*(post_hook(api, made, b, h) for b, h in orders))
    ok = [n for n, (status, _, _) in enumerate(answers) if status == 200]
    refused = [n for n, (status, _, _) in enumerate(answers) if status != 200]
    assert len(ok) == 30 and len(refused) == 15
    for n in refused:
        retry_after(*answers[n])
    # Nothing beyond the budget was written: 30 orders of 1000 keys, no trace of the others.
    assert await buyer_keys(api, pid) == 30_000
    listed = {o["order_id"] for o in await api.call("GET", f"/api/vendor/orders?project_id={pid}")}
    assert listed == {f"burst-{n}" for n in ok}

    # The store retries: in the next window every refused order lands, exactly once.
    clock.advance(WINDOW)
    for n in refused:
        status, text, _ = await post_hook(api, made, *orders[n])
        assert status == 200 and len(set(text.split("\n"))) == 1000
        assert (await post_hook(api, made, *orders[n]))[:2] == (200, text)
    assert await buyer_keys(api, pid) == 45_000
    assert len(await api.call("GET", f"/api/vendor/orders?project_id={pid}")) == 45


async def test_one_budget_for_the_api_the_dashboard_import_and_stores(
    api_with: ApiWith, app_redis: "Redis | RedisCluster", clock: Clock
) -> None:
    api = await api_with(app_redis, rate_keygen=4)
    clock.freeze()
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, "stripe")
    token = await dashboard_csrf(api)
    dash = {"X-CSRF-Token": token, "HX-Request": "true"}
    form = {"amount": "2", "key_days": "1"}
    imported = {"project_id": pid, "keys": [{"key_id": "imported-0001"}]}

    # Four generations of any kind use the budget up: a store order is one of them.
    await api.keys(pid)
    resp = await api.client.post(f"/dashboard/projects/{pid}/keys", data=form, headers=dash)
    assert resp.status == 200
    await api.call("POST", "/api/vendor/keys/import", imported)
    first_body, first_headers = order("stripe", "cs_first", quantity=3)
    status, first, _ = await post_hook(api, made, first_body, first_headers)
    assert status == 200 and len(first.split("\n")) == 3
    before = await data_keys(api)

    # Every way of minting keys is refused now, a store's new order included (429 with
    # Retry-After, nothing written).
    await api.call("POST", "/api/vendor/keys/buyer", {"project_id": pid}, status=429)
    resp = await api.client.post(f"/dashboard/projects/{pid}/keys", data=form, headers=dash)
    assert resp.status == 429
    imported["keys"] = [{"key_id": "imported-0002"}]
    await api.call("POST", "/api/vendor/keys/import", imported, status=429)
    second = order("stripe", "cs_second", quantity=2)
    retry_after(*await post_hook(api, made, *second))
    # A retry of the order already delivered spends nothing and still gets its keys.
    assert (await post_hook(api, made, first_body, sign("stripe", first_body)))[:2] == (200, first)
    assert await data_keys(api) == before

    # The next window: the refused order lands once, and is not made twice by a retry.
    clock.advance(WINDOW)
    status, text, _ = await post_hook(api, made, *second)
    assert status == 200 and len(text.split("\n")) == 2
    again = second[0], sign("stripe", second[0])
    assert (await post_hook(api, made, *again))[:2] == (200, text)
    assert await buyer_keys(api, pid) == 1 + 2 + 1 + 3 + 2
    # It spent one unit of the new window: three are left.
    for _ in range(3):
        await api.keys(pid)
    await api.call("POST", "/api/vendor/keys/buyer", {"project_id": pid}, status=429)


# ---- defect 5: only signed bytes decide -------------------------------------------------------


async def test_an_unsigned_event_header_cannot_turn_a_signed_event_into_a_payment(
    api: Api,
) -> None:
    pid = (await api.project())["project_id"]
    sellix = await integrate(api, pid, "sellix")
    shoppy = await integrate(api, pid, "shoppy")
    before = await data_keys(api)
    # Sellix: the body is signed as order:created (not paid); the header says order:paid.
    body = json.dumps(payload("sellix", order="unpaid-1") | {"event": "order:created"}).encode()
    headers = sign("sellix", body) | {"X-Sellix-Event": "order:paid"}
    assert await deliver(api, sellix, body, headers) == (200, "")
    # Shoppy: a signed body without an event, a header naming the payment.
    p = payload("shoppy", order="unpaid-2")
    del p["event"]
    body = json.dumps(p).encode()
    headers = sign("shoppy", body) | {"X-Shoppy-Event": "order:paid"}
    assert await deliver(api, shoppy, body, headers) == (200, "")
    assert await data_keys(api) == before
    assert await buyer_keys(api, pid) == 0
    # The paid event in the signed body still sells, whatever the header says.
    body = json.dumps(payload("sellix", order="paid-1")).encode()
    headers = sign("sellix", body) | {"X-Sellix-Event": "order:created"}
    status, text = await deliver(api, sellix, body, headers)
    assert status == 200 and len(text) == 32


async def test_a_secret_shorter_than_16_characters_is_refused(api: Api) -> None:
    pid = (await api.project())["project_id"]
    path = f"/api/vendor/projects/{pid}/integrations"
    for secret in ("x", "s" * 15):
        body = {"provider": "sellix", "secret": secret, "products": {"a": {}}}
        refused = await api.call("POST", path, body, status=422)
        assert "secret" in refused["detail"] and "16" in refused["detail"]
    made = await api.call(
        "POST", path, {"provider": "sellix", "secret": "s" * 16, "products": {"a": {}}}, status=201
    )
    change = f"/api/vendor/integrations/{made['integration_id']}"
    refused = await api.call("PATCH", change, {"secret": "s" * 15}, status=422)
    assert "secret" in refused["detail"] and "16" in refused["detail"]
    assert await api.call("GET", f"/api/vendor/orders?project_id={pid}") == []


async def test_failed_signatures_are_limited_but_the_real_store_gets_through(
    api: Api, clock: Clock
) -> None:
    clock.freeze()
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, "sellapp")
    other = await integrate(api, pid, "sellapp")
    forged = json.dumps(payload("sellapp", order="forged")).encode()
    bad = sign("sellapp", forged, "not the store's secret!")
    for _ in range(HOOK_BAD_SIGNATURES):
        assert (await deliver(api, made, forged, bad))[0] == 401
    for _ in range(3):
        retry_after(*await post_hook(api, made, forged, bad))
        retry_after(*await post_hook(api, made, forged, {}))  # unsigned: the same
    # The store's genuine call is never refused by it, even mid-spam.
    body, headers = order("sellapp", "real-1", quantity=2)
    status, text, _ = await post_hook(api, made, body, headers)
    assert status == 200 and len(text.split("\n")) == 2
    # Counted per integration: another one of the project is not affected.
    assert (await deliver(api, other, forged, bad))[0] == 401
    assert await buyer_keys(api, pid) == 2
    [sold] = await api.call("GET", f"/api/vendor/orders?project_id={pid}")
    assert sold["order_id"] == "real-1"
    # The window ends: a bad signature is a plain 401 again.
    clock.advance(HOOK_BAD_SIGNATURE_WINDOW)
    assert (await deliver(api, made, forged, bad))[0] == 401
