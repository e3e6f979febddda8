"""Store integrations: a storefront's signed call to the hook URL delivers buyer keys, exactly
once per order; the vendor's integration and order routes.

Each provider's payload is built in its documented shape (docs/stores.md names the sources and
the assumptions) and signed the way that provider signs it (tests/support/stores.py).
"""

import asyncio
import json
from typing import Any

import pytest

from store import keyspace
from tests.support.api import Api, Clock, keys_matching
from tests.support.stores import (
    NEW_SECRET,
    PROVIDERS,
    SECRET,
    data_keys,
    deliver,
    integrate,
    payload,
    sign,
)


async def buyer_count(api: Api, pid: str) -> int:
    return len(await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}"))


# ---- the vendor's routes ----------------------------------------------------------------------


async def test_create_get_patch_delete_and_the_secret_is_never_returned(api: Api) -> None:
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, "sellix")
    assert set(made) == {"integration_id", "project_id", "provider", "products", "url"} | {
        "created_at"
    }
    assert made["provider"] == "sellix" and made["project_id"] == pid
    assert made["products"]["prod-1"] == {"key_days": 7, "key_hours": 0, "key_minutes": 0}
    assert made["products"]["prod-2"] == {"key_days": 30, "key_hours": 5, "key_minutes": 0}
    host = api.client.make_url("/").host
    assert made["url"].endswith(f"/api/hooks/{made['integration_id']}") and host in made["url"]
    path = f"/api/vendor/integrations/{made['integration_id']}"
    got = await api.call("GET", path)
    assert got == made and SECRET not in json.dumps(got)

    patched = await api.call("PATCH", path, {"secret": NEW_SECRET})
    assert "secret" not in patched and NEW_SECRET not in json.dumps(patched)
    assert patched["products"] == made["products"]
    patched = await api.call("PATCH", path, {"products": {"p9": {"key_days": 1}}})
    assert list(patched["products"]) == ["p9"]
    assert await api.call("GET", path) == patched

    # The old secret no longer signs; the new one does.
    body = json.dumps(payload("sellix", product="p9")).encode()
    assert (await deliver(api, made, body, sign("sellix", body)))[0] == 401
    status, text = await deliver(api, made, body, sign("sellix", body, NEW_SECRET))
    assert status == 200 and len(text.split("\n")) == 1

    assert await api.call("DELETE", path) == {"status": "success"}
    await api.call("GET", path, status=404)
    await api.call("DELETE", path, status=404)
    assert (await deliver(api, made, body, sign("sellix", body, NEW_SECRET)))[0] == 404
    # The order is kept.
    [order] = await api.call("GET", "/api/vendor/orders")
    assert order["order_id"] == "ord-1"


async def test_foreign_vendor_sees_nothing(api: Api) -> None:
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, "stripe")
    other = await api.as_other()
    path = f"/api/vendor/integrations/{made['integration_id']}"
    await other.call("GET", path, status=404)
    await other.call("PATCH", path, {"secret": NEW_SECRET}, status=404)
    await other.call("DELETE", path, status=404)
    body = {"provider": "sellix", "secret": SECRET, "products": {"a": {}}}
    await other.call("POST", f"/api/vendor/projects/{pid}/integrations", body, status=404)
    await other.call("GET", f"/api/vendor/orders?project_id={pid}", status=404)
    assert await other.call("GET", "/api/vendor/orders") == []
    assert (await api.call("GET", path))["provider"] == "stripe"  # untouched


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "paypal", "secret": SECRET, "products": {"a": {}}},
        {"provider": "sellix", "secret": "", "products": {"a": {}}},
        {"provider": "sellix", "secret": "s", "products": {"a": {}}},
        {"provider": "sellix", "secret": "s" * 15, "products": {"a": {}}},
        {"provider": "sellix", "secret": "s" * 513, "products": {"a": {}}},
        {"provider": "sellix", "secret": SECRET, "products": {}},
        {"provider": "sellix", "secret": SECRET, "products": {f"p{i}": {} for i in range(101)}},
        {"provider": "sellix", "secret": SECRET, "products": {"x" * 129: {}}},
        {"provider": "sellix", "secret": SECRET, "products": {"a": {"key_days": 36501}}},
        {"provider": "sellix", "secret": SECRET, "products": {"a": {"key_minutes": -1}}},
        {"provider": "sellix", "secret": SECRET, "products": {"a": {"days": 1}}},
        {"provider": "sellix", "secret": SECRET, "products": {"a": {}}, "extra": 1},
    ],
)
async def test_create_validates_like_buyer_keys(api: Api, body: dict[str, Any]) -> None:
    pid = (await api.project())["project_id"]
    detail = await api.call("POST", f"/api/vendor/projects/{pid}/integrations", body, status=422)
    assert set(detail) == {"detail"}


async def test_limits_and_unknown_ids(api: Api) -> None:
    pid = (await api.project())["project_id"]
    for _ in range(20):
        await integrate(api, pid, "shoppy")
    body = {"provider": "sellix", "secret": SECRET, "products": {"a": {}}}
    path = f"/api/vendor/projects/{pid}/integrations"
    await api.call("POST", path, body, status=409)
    missing = "/api/vendor/projects/00000000-0000-4000-8000-000000000000/integrations"
    await api.call("POST", missing, body, status=404)
    await api.call("POST", "/api/vendor/projects/nope/integrations", body, status=404)
    await api.call("GET", "/api/vendor/integrations/" + "0" * 32, status=404)
    await api.call("GET", "/api/vendor/integrations/not-an-id", status=404)
    await api.call("PATCH", "/api/vendor/integrations/" + "0" * 32, {}, status=404)


# ---- the hook ---------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_each_store_delivers_its_keys_once(api: Api, provider: str) -> None:
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, provider)
    body = json.dumps(payload(provider, order="A-100", product="prod-1", quantity=3)).encode()
    status, text = await deliver(api, made, body, sign(provider, body))
    assert status == 200, text
    keys = text.split("\n")
    assert len(keys) == 3 and len(set(keys)) == 3
    order_id = "A-100:1" if provider == "sellauth" else "A-100"  # SellAuth: per invoice item
    for key_id in keys:
        key = await api.call("GET", f"/api/vendor/keys/buyer/{key_id}")
        assert (key["project_id"], key["key_days"], key["key_hours"]) == (pid, 7, 0)
        assert key["note"] == f"{provider} order {order_id}"
    # A retry (or a replay of the same call) answers the same keys and makes none.
    again = await deliver(api, made, body, sign(provider, body))
    assert again == (200, text)
    assert await buyer_count(api, pid) == 3
    [order] = await api.call("GET", "/api/vendor/orders")
    assert order["provider"] == provider and order["keys"] == keys
    assert order["order_id"] == order_id
    assert order["email"] == "buyer@example.com" and order["product"] == "prod-1"
    assert order["project_id"] == pid and order["integration_id"] == made["integration_id"]


async def test_a_second_product_and_order_make_their_own_keys(api: Api) -> None:
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, "sellix")
    one = json.dumps(payload("sellix", order="o1", product="prod-1")).encode()
    two = json.dumps(payload("sellix", order="o2", product="prod-2", quantity=2)).encode()
    first = (await deliver(api, made, one, sign("sellix", one)))[1].split("\n")
    second = (await deliver(api, made, two, sign("sellix", two)))[1].split("\n")
    assert len(first) == 1 and len(second) == 2 and not set(first) & set(second)
    key = await api.call("GET", f"/api/vendor/keys/buyer/{second[0]}")
    assert (key["key_days"], key["key_hours"]) == (30, 5)
    assert await buyer_count(api, pid) == 3


async def test_sellix_cart_sells_its_mapped_lines(api: Api) -> None:
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, "sellix")
    p = payload("sellix", order="cart-1")
    p["data"]["type"] = "SHOPPING_CART"
    p["data"]["cart"] = {
        "products": [
            {"uniqid": "prod-1", "unit_quantity": 2},
            {"uniqid": "not-ours", "unit_quantity": 5},
            {"uniqid": "prod-2", "unit_quantity": 1},
        ]
    }
    body = json.dumps(p).encode()
    status, text = await deliver(api, made, body, sign("sellix", body))
    assert status == 200 and len(text.split("\n")) == 3
    [order] = await api.call("GET", "/api/vendor/orders")
    assert order["product"] == "prod-1,prod-2"


async def test_sellauth_idempotency_key_decides_nothing(api: Api) -> None:
    # The header is not signed: the signed invoice and item ids name the delivery.
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, "sellauth")
    body = json.dumps(payload("sellauth", order="inv-1")).encode()
    headers = sign("sellauth", body)
    status, first = await deliver(api, made, body, headers)
    assert status == 200
    # Another signed order sent with the first one's Idempotency-Key: its own keys.
    other = json.dumps(payload("sellauth", order="inv-2")).encode()
    again = sign("sellauth", other) | {"Idempotency-Key": headers["Idempotency-Key"]}
    status, second = await deliver(api, made, other, again)
    assert status == 200 and second != first and len(second.split("\n")) == 1
    # The first order again under a new Idempotency-Key: still its own keys, none made.
    fresh = headers | {"Idempotency-Key": "another-key"}
    assert await deliver(api, made, body, fresh) == (200, first)
    assert await buyer_count(api, pid) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_bad_or_missing_signature_is_401_and_writes_nothing(api: Api, provider: str) -> None:
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, provider)
    body = json.dumps(payload(provider)).encode()
    before = await data_keys(api)
    good = sign(provider, body)
    name = next(k for k in good if "Signature" in k)
    tampered = body.replace(b"prod-1", b"prod-2")
    cases = [
        {k: v for k, v in good.items() if k != name},  # missing
        good | {name: "0" * len(good[name])},  # wrong
        good | {name: ""},
        sign(provider, body, "another secret"),
    ]
    for headers in cases:
        status, text = await deliver(api, made, body, headers)
        assert status == 401 and json.loads(text) == {"detail": "Invalid or missing signature"}
    assert (await deliver(api, made, tampered, good))[0] == 401  # signed another body
    assert await data_keys(api) == before


async def test_stripe_timestamp_out_of_tolerance_is_401(api: Api, clock: Clock) -> None:
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, "stripe")
    body = json.dumps(payload("stripe")).encode()
    before = await data_keys(api)
    for off in (-301, 301, -10_000):
        status, _ = await deliver(api, made, body, sign("stripe", body, now=clock() + off))
        assert status == 401
    # Several v1 signatures (a secret being rolled): any one valid is enough.
    headers = sign("stripe", body, now=clock() - 299)
    headers["Stripe-Signature"] = headers["Stripe-Signature"].replace(",", ",v1=00,", 1)
    assert await data_keys(api) == before
    assert (await deliver(api, made, body, headers))[0] == 200


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unmapped_product_is_422_and_writes_nothing(api: Api, provider: str) -> None:
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, provider)
    body = json.dumps(payload(provider, product="something-else")).encode()
    before = await data_keys(api)
    status, text = await deliver(api, made, body, sign(provider, body))
    assert status == 422 and "product" in json.loads(text)["detail"]
    assert await data_keys(api) == before


@pytest.mark.parametrize(
    ("provider", "change"),
    [
        ("sellix", lambda p: p | {"event": "order:created"}),
        ("shoppy", lambda p: p | {"event": "order:cancelled"}),
        ("sellapp", lambda p: {"event": "order.created", "data": p}),
        ("sellauth", lambda p: p | {"event": "NOTIFICATION.SHOP_INVOICE_CREATED"}),
        ("stripe", lambda p: p | {"type": "checkout.session.expired"}),
        (
            "stripe",  # completed, but paid later (an async payment method)
            lambda p: p | {"data": {"object": p["data"]["object"] | {"payment_status": "unpaid"}}},
        ),
    ],
)
async def test_an_event_that_is_not_a_payment_is_200_and_writes_nothing(
    api: Api, provider: str, change: Any
) -> None:
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, provider)
    body = json.dumps(change(payload(provider))).encode()
    before = await data_keys(api)
    assert await deliver(api, made, body, sign(provider, body)) == (200, "")
    assert await data_keys(api) == before


async def test_unknown_integration_and_bad_bodies(api: Api) -> None:
    body = json.dumps(payload("sellix")).encode()
    for iid in ("0" * 32, "abc", "Z" * 32):
        resp = await api.client.post(f"/api/hooks/{iid}", data=body, headers=sign("sellix", body))
        assert resp.status == 404 and await resp.json() == {"detail": "Integration not found"}
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, "sellix")
    for bad, status in [
        (b"{not json", 400),
        (b"[1, 2]", 422),
        (b"x" * (65 * 1024), 400),  # over the body limit
        (json.dumps(payload("sellix", quantity=0)).encode(), 422),
        (json.dumps(payload("sellix", quantity=1001)).encode(), 422),
        (json.dumps({"event": "order:paid", "data": {"product_id": "prod-1"}}).encode(), 422),
    ]:
        assert (await deliver(api, made, bad, sign("sellix", bad)))[0] == status, bad[:40]
    assert await buyer_count(api, pid) == 0


async def test_store_sales_need_no_discord_link(api: Api) -> None:
    unlinked = await api.as_other("no-discord", None)
    pid = (await unlinked.project())["project_id"]
    made = await integrate(unlinked, pid, "stripe")
    body = json.dumps(payload("stripe")).encode()
    status, text = await deliver(unlinked, made, body, sign("stripe", body))
    assert status == 200 and len(text) == 32


async def test_key_sold_event_and_notification(api: Api) -> None:
    pid = (await api.project(webhook_url="https://example.com/hook"))["project_id"]
    made = await integrate(api, pid, "shoppy")
    body = json.dumps(payload("shoppy", order="S-1", quantity=2)).encode()
    keys = (await deliver(api, made, body, sign("shoppy", body)))[1].split("\n")
    await deliver(api, made, body, sign("shoppy", body))  # a replay adds no event
    redis = api.store.redis
    events = [f for _, f in await redis.xrange(keyspace.events(pid)) if f["kind"] == "KEY_SOLD"]
    assert len(events) == 1
    assert events[0]["message"] == "2 keys sold: shoppy order S-1"
    assert events[0]["key_id"] == keys[0]
    [(_, note)] = await redis.xrange(keyspace.notify(pid))
    assert (note["kind"], note["order_id"], note["provider"]) == ("KEY_SOLD", "S-1", "shoppy")
    assert note["email"] == "buyer@example.com"


async def test_orders_listing_pages_and_filters(api: Api, clock: Clock) -> None:
    p1 = (await api.project())["project_id"]
    p2 = (await api.project())["project_id"]
    i1 = await integrate(api, p1, "sellix")
    i2 = await integrate(api, p2, "stripe")
    for n in range(5):
        clock.advance(1)
        body = json.dumps(payload("sellix", order=f"x{n}", email=f"b{n % 2}@ex.com")).encode()
        assert (await deliver(api, i1, body, sign("sellix", body)))[0] == 200
    body = json.dumps(payload("stripe", order="cs_1", email="B0@ex.com")).encode()
    assert (await deliver(api, i2, body, sign("stripe", body)))[0] == 200

    everything = await api.call("GET", "/api/vendor/orders")
    assert len(everything) == 6
    assert [o["order_id"] for o in everything if o["project_id"] == p1] == [
        f"x{n}" for n in range(5)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        path = "/api/vendor/orders?limit=2" + (f"&cursor={cursor}" if cursor else "")
        resp = await api.client.get(path, headers=api.auth)
        assert resp.status == 200
        page = await resp.json()
        assert len(page) <= 2
        seen += [o["order_id"] for o in page]
        pages += 1
        cursor = resp.headers.get("X-Next-Cursor")
        if cursor is None:
            break
    assert sorted(seen) == sorted(o["order_id"] for o in everything) and pages >= 3

    mine = await api.call("GET", f"/api/vendor/orders?project_id={p1}&email=b0@ex.com")
    assert [o["order_id"] for o in mine] == ["x0", "x2", "x4"]
    both = await api.call("GET", "/api/vendor/orders?email=b0@EX.com")
    assert {o["order_id"] for o in both} == {"x0", "x2", "x4", "cs_1"}
    [one] = await api.call("GET", "/api/vendor/orders?order_id=cs_1")
    assert one["provider"] == "stripe" and one["project_id"] == p2
    assert await api.call("GET", f"/api/vendor/orders?order_id=cs_1&project_id={p1}") == []
    await api.call("GET", "/api/vendor/orders?cursor=garbage&limit=1", status=422)
    await api.call("GET", "/api/vendor/orders?limit=0", status=422)
    await api.call("GET", "/api/vendor/orders?email=" + "e" * 321, status=422)


async def test_deleting_the_project_removes_its_integrations_and_orders(api: Api) -> None:
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, "sellix")
    body = json.dumps(payload("sellix")).encode()
    assert (await deliver(api, made, body, sign("sellix", body)))[0] == 200
    await api.call("DELETE", f"/api/vendor/projects/{pid}")
    left = {k for k in await data_keys(api) if pid in k}
    assert left == set(), left
    assert (await deliver(api, made, body, sign("sellix", body)))[0] == 404


# ---- exactly once under concurrency (real servers) --------------------------------------------


async def test_concurrent_deliveries_make_one_set_of_keys(real_api: Api) -> None:
    api = real_api
    pid = (await api.project())["project_id"]
    made = await integrate(api, pid, "sellix")
    body = json.dumps(payload("sellix", order="race-1", quantity=4)).encode()
    headers = sign("sellix", body)
    answers = await asyncio.gather(*(deliver(api, made, body, headers) for _ in range(20)))
    assert {status for status, _ in answers} == {200}
    assert len({text for _, text in answers}) == 1
    keys = answers[0][1].split("\n")
    assert len(keys) == 4
    assert await buyer_count(api, pid) == 4
    [order] = await api.call("GET", "/api/vendor/orders")
    assert order["keys"] == keys
    # The losers' key refs were dropped: only the 4 delivered keys resolve.
    refs = await keys_matching(api.store.redis, "l7:kref:*")
    assert sorted(r.rsplit(":", 1)[1] for r in refs) == sorted(keys)
