"""Store hook calls as each storefront makes them, for tests: its payload of a paid order in
the documented shape (docs/stores.md names the sources and the assumptions), signed the way
that provider signs it, and the vendor's integration to send it to."""

import hashlib
import hmac
import json
import time
from typing import Any

from tests.support.api import Api, keys_matching

SECRET = "whsec_test_secret_123"
NEW_SECRET = "new-secret-0123456789"  # 16 characters at least (a shorter one is 422)


def _hex(secret: str, body: bytes, digest: Any) -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def payload(
    provider: str,
    order: str = "ord-1",
    product: str = "prod-1",
    quantity: int = 1,
    email: str = "buyer@example.com",
) -> dict[str, Any]:
    """A paid order for ``quantity`` units of ``product``, as ``provider`` sends it."""
    if provider == "sellix":  # docs.sellix.io/api-reference/webhooks (order:paid)
        return {
            "event": "order:paid",
            "data": {
                "uniqid": order,
                "type": "PRODUCT",
                "product_id": product,
                "quantity": quantity,
                "customer_email": email,
                "status": "COMPLETED",
            },
        }
    if provider == "shoppy":
        return {
            "event": "order:paid",
            "data": {
                "order": {"id": order, "product_id": product, "quantity": quantity, "email": email},
                "product": {"id": product},
            },
        }
    if provider == "sellapp":  # the dynamic webhook: the completed order itself
        return {
            "id": order,
            "status": "COMPLETED",
            "customer_information": {"email": email},
            "products": [{"product_variant_id": product, "quantity": quantity}],
        }
    if provider == "sellauth":  # docs.sellauth.com/guides/dynamic-delivery
        return {
            "event": "INVOICE.ITEM.DELIVER-DYNAMIC",
            "id": order,
            "unique_id": f"8e32b8f24c4a0-{order}",
            "status": "partially_completed",
            "email": email,
            "customer": {"id": 501, "email": email},
            "item": {"id": 1, "product_id": 762, "variant_id": product, "quantity": quantity},
        }
    assert provider == "stripe"  # an Event wrapping a Checkout Session
    return {
        "id": f"evt_{order}",
        "object": "event",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": order,
                "object": "checkout.session",
                "mode": "payment",
                "payment_status": "paid",
                "customer_details": {"email": email},
                "payment_link": product,
                "metadata": {"leaf7_quantity": str(quantity)},
            }
        },
    }


def sign(
    provider: str, body: bytes, secret: str = SECRET, now: float | None = None
) -> dict[str, str]:
    """The headers ``provider`` sends with ``body``."""
    if provider == "sellix":
        try:
            event = json.loads(body).get("event", "")
        except (ValueError, AttributeError):
            event = "order:paid"
        return {"X-Sellix-Signature": _hex(secret, body, hashlib.sha512), "X-Sellix-Event": event}
    if provider == "shoppy":
        return {"X-Shoppy-Signature": _hex(secret, body, hashlib.sha512)}
    if provider == "sellapp":
        return {"Signature": _hex(secret, body, hashlib.sha256)}
    if provider == "sellauth":
        return {
            "X-Signature": _hex(secret, body, hashlib.sha256),
            "X-Timestamp": str(int(time.time())),
            "Idempotency-Key": hashlib.sha256(body).hexdigest(),
        }
    t = str(int(time.time() if now is None else now))
    v1 = _hex(secret, t.encode() + b"." + body, hashlib.sha256)
    return {"Stripe-Signature": f"t={t},v1={v1}"}


PROVIDERS = ["sellix", "sellauth", "sellapp", "shoppy", "stripe"]


async def integrate(
    api: Api, project_id: str, provider: str, products: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = {
        "provider": provider,
        "secret": SECRET,
        "products": products or {"prod-1": {"key_days": 7}, "prod-2": {"key_hours": 5}},
    }
    path = f"/api/vendor/projects/{project_id}/integrations"
    return await api.call("POST", path, body, status=201)  # type: ignore[no-any-return]


def hook_path(integration: dict[str, Any]) -> str:
    return "/api/hooks/" + integration["integration_id"]


async def deliver(
    api: Api, integration: dict[str, Any], body: bytes, headers: dict[str, str]
) -> tuple[int, str]:
    resp = await api.client.post(
        hook_path(integration),
        data=body,
        headers={"Content-Type": "application/json", **headers},
    )
    return resp.status, await resp.text()


async def data_keys(api: Api) -> set[str]:
    """Every Redis key but rate-limit bookkeeping."""
    names = await keys_matching(api.store.redis, "l7:*")
    return {n for n in names if ":rl" not in n}
