"""What each storefront sends to a hook URL: how it signs the call, and where a paid order's
id, products, quantities and buyer email are in its payload (docs/stores.md gives the
sources, and says which parts are assumptions).

``verify`` checks the signature over the raw body (constant time); ``parse`` turns a verified
payload into a ``Sale``, or None when the event is not a payment.

Only signed bytes decide: every store signs the body (Stripe: its timestamp and the body), so
the event, order id, products and quantities are read from the body alone, never from a
header beside it (an unsigned ``X-Sellix-Event`` or ``Idempotency-Key`` is anyone's to write).
"""

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from handlers.body import check_depth
from handlers.errors import ApiError, malformed_json

STRIPE_TOLERANCE = 300  # seconds a Stripe signature's timestamp may be off
MAX_ID = 128  # characters of an order id or a product id
MAX_EMAIL = 320
MAX_QUANTITY = 1000

BAD_SIGNATURE = "Invalid or missing signature"


@dataclass(frozen=True, slots=True)
class Sale:
    order_id: str
    lines: list[tuple[list[str], int]]  # (candidate product ids, most specific first; quantity)
    email: str | None


# ---- signatures -------------------------------------------------------------------------------


def _hex_hmac(secret: str, body: bytes, digest: Callable[[], Any]) -> bytes:
    return hmac.new(secret.encode(), body, digest).hexdigest().encode()


def _same(expected: bytes, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(expected, given.strip().lower().encode())


def _stripe(secret: str, body: bytes, header: str | None, now: int) -> bool:
    if not header:
        return False
    t = ""
    signatures = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            t = value
        elif name == "v1":
            signatures.append(value)
    if not (t.isascii() and t.isdigit() and len(t) <= 12) or abs(now - int(t)) > STRIPE_TOLERANCE:
        return False
    expected = _hex_hmac(secret, t.encode() + b"." + body, hashlib.sha256)
    # Every v1 is compared (no early exit on the first match: same work either way).
    return sum(_same(expected, s) for s in signatures[:8]) > 0


def verify(provider: str, secret: str, headers: Mapping[str, str], body: bytes, now: int) -> None:
    """401 unless ``body`` carries the store's valid signature made with ``secret``."""
    if provider == "sellix":
        ok = _same(_hex_hmac(secret, body, hashlib.sha512), headers.get("X-Sellix-Signature"))
    elif provider == "shoppy":
        ok = _same(_hex_hmac(secret, body, hashlib.sha512), headers.get("X-Shoppy-Signature"))
    elif provider == "sellapp":
        ok = _same(_hex_hmac(secret, body, hashlib.sha256), headers.get("Signature"))
    elif provider == "sellauth":
        ok = _same(_hex_hmac(secret, body, hashlib.sha256), headers.get("X-Signature"))
    elif provider == "stripe":
        ok = _stripe(secret, body, headers.get("Stripe-Signature"), now)
    else:
        ok = False
    if not ok:
        # 401 carries a challenge (RFC 9110): the store's signature header is the credential.
        raise ApiError(
            401, BAD_SIGNATURE, {"WWW-Authenticate": 'Signature realm="leaf7 store hook"'}
        )


# ---- payloads ---------------------------------------------------------------------------------


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(value: Any, name: str) -> str:
    """An id: a non-empty string or an integer (stores send both), at most MAX_ID chars."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > MAX_ID:
        raise ApiError(422, f"{name}: must be an id (a string or integer, 1 to {MAX_ID} chars)")
    return value


def _ids(*values: Any) -> list[str]:
    """The product ids a line names (missing ones skipped)."""
    out = []
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if isinstance(v, str) and 0 < len(v) <= MAX_ID:
            out.append(v)
    return out


def _quantity(value: Any) -> int:
    if value is None:
        return 1
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 6:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_QUANTITY:
        raise ApiError(422, f"quantity: must be an integer from 1 to {MAX_QUANTITY}")
    return value


def _email(*values: Any) -> str | None:
    for v in values:
        if isinstance(v, str) and v:
            return v[:MAX_EMAIL]
    return None


def _sellix(p: dict[str, Any]) -> Sale | None:
    # docs.sellix.io/api-reference/webhooks: the body is {"event", "data": <the order>} (the
    # X-Sellix-Event header repeats the event, unsigned: ignored); dynamic products:
    # data.quantity, or for a cart (type SHOPPING_CART) data.cart[].unit_quantity.
    if p.get("event") != "order:paid":
        return None
    data = _obj(p.get("data"))
    order_id = _id(data.get("uniqid"), "uniqid")
    cart = data.get("cart")
    items = _obj(cart).get("products") if isinstance(cart, dict) else cart
    if data.get("type") == "SHOPPING_CART" and isinstance(items, list):
        lines = [
            (
                _ids(_obj(i).get("uniqid"), _obj(i).get("product_id")),
                _quantity(_obj(i).get("unit_quantity")),
            )
            for i in items[:100]
        ]
    else:
        lines = [(_ids(data.get("product_id")), _quantity(data.get("quantity")))]
    return Sale(order_id, lines, _email(data.get("customer_email")))


def _shoppy(p: dict[str, Any]) -> Sale | None:
    # Assumption (Shoppy's own docs were not found): Sellix's shape, {"event": "order:paid",
    # "data": {"order": {...}, "product": {...}}} or the order as "data" itself.
    if p.get("event") != "order:paid":
        return None
    data = _obj(p.get("data"))
    order = _obj(data.get("order")) or data
    order_id = _id(order.get("id") or order.get("uniqid"), "order id")
    product = order.get("product_id") or _obj(data.get("product")).get("id")
    return Sale(
        order_id,
        [(_ids(product), _quantity(order.get("quantity")))],
        _email(order.get("email"), order.get("customer_email")),
    )


def _sellapp(p: dict[str, Any]) -> Sale | None:
    # sell.app docs: webhooks are {"event": "order.completed", "data": <the order>}; the
    # dynamic webhook posts the order itself once its payment completed. Assumption: the
    # order's lines are in "products"/"items" (or the order is one line), each naming its
    # product_variant_id and/or product_id and a quantity.
    if "event" in p:
        if p.get("event") != "order.completed":
            return None
        order = _obj(p.get("data"))
    else:
        order = p
    order_id = _id(order.get("id") or order.get("invoice_id"), "order id")
    items = order.get("products") or order.get("items")
    rows = [_obj(i) for i in items[:100]] if isinstance(items, list) else [order]
    lines = [
        (
            _ids(r.get("product_variant_id"), r.get("variant_id"), r.get("product_id")),
            _quantity(r.get("quantity")),
        )
        for r in rows
    ]
    email = _email(
        _obj(order.get("customer_information")).get("email"),
        order.get("email"),
        order.get("customer_email"),
    )
    return Sale(order_id, lines, email)


def _sellauth(p: dict[str, Any]) -> Sale | None:
    # docs.sellauth.com/guides/dynamic-delivery: one POST per invoice item, event
    # INVOICE.ITEM.DELIVER-DYNAMIC, the invoice's "id", "email" / customer.email. Its
    # Idempotency-Key header is not signed, so it decides nothing: the signed invoice and item
    # ids already name the delivery. Assumption: the item is "item": {id, product_id,
    # variant_id, quantity} (else the same fields on the invoice itself).
    if p.get("event") != "INVOICE.ITEM.DELIVER-DYNAMIC":
        return None
    invoice = _id(p.get("id") or p.get("unique_id"), "invoice id")
    item = _obj(p.get("item")) or p
    item_id = item.get("id") if item is not p else None
    order_id = f"{invoice}:{_id(item_id, 'item id')}" if item_id is not None else invoice
    line = (
        _ids(
            item.get("variant_id"),
            _obj(item.get("variant")).get("id"),
            item.get("product_id"),
            _obj(item.get("product")).get("id"),
        ),
        _quantity(item.get("quantity")),
    )
    return Sale(order_id, [line], _email(p.get("email"), _obj(p.get("customer")).get("email")))


_STRIPE_PAID = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


def _stripe_sale(p: dict[str, Any]) -> Sale | None:
    # docs.stripe.com: an Event {"type", "data": {"object": <Checkout Session>}}; the session
    # has id (cs_...), payment_status, customer_details.email, payment_link, metadata; its
    # line_items only when expanded. A session paid later (async methods) is paid at
    # checkout.session.async_payment_succeeded.
    kind = p.get("type")
    if kind not in _STRIPE_PAID:
        return None
    s = _obj(_obj(p.get("data")).get("object"))
    if kind == _STRIPE_PAID[0] and s.get("payment_status") not in ("paid", "no_payment_required"):
        return None
    order_id = _id(s.get("id"), "session id")
    meta = _obj(s.get("metadata"))
    items = _obj(s.get("line_items")).get("data")
    if isinstance(items, list) and items:
        lines = [
            (
                _ids(
                    _obj(_obj(i).get("price")).get("id"), _obj(_obj(i).get("price")).get("product")
                ),
                _quantity(_obj(i).get("quantity")),
            )
            for i in items[:100]
        ]
    else:
        lines = [
            (
                _ids(meta.get("leaf7_product"), s.get("payment_link")),
                _quantity(meta.get("leaf7_quantity")),
            )
        ]
    email = _email(_obj(s.get("customer_details")).get("email"), s.get("customer_email"))
    return Sale(order_id, lines, email)


# A parser sees the verified body only (no headers): only signed bytes decide.
_PARSERS: dict[str, Callable[[dict[str, Any]], Sale | None]] = {
    "sellix": _sellix,
    "shoppy": _shoppy,
    "sellapp": _sellapp,
    "sellauth": _sellauth,
    "stripe": _stripe_sale,
}


def parse(provider: str, body: bytes) -> Sale | None:
    """The sale a verified payload reports, or None when it is not a payment event."""
    check_depth(body)
    try:
        payload = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise malformed_json(exc) from None
    if not isinstance(payload, dict):
        raise ApiError(422, "body: must be a JSON object")
    return _PARSERS[provider](payload)
