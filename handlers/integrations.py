"""Store integrations: the vendor's routes (an integration per storefront, the orders it
delivered) and the public hook URL the storefront calls when an order is paid."""

from collections.abc import Awaitable

from aiohttp import web

from handlers import ids, listing, ratelimit, schemas, storefronts
from handlers.appkeys import SETTINGS, store
from handlers.auth import vendor_operations
from handlers.body import SUCCESS, json_response, read_body, read_json
from handlers.clientip import base_url
from handlers.errors import ApiError
from handlers.openapi import Param, operation
from handlers.params import PROJECT_QUERY, project_id_param, project_query
from store.errors import IntegrationNotFound
from store.integrations import Duration, Integration, Order

# The most a store's hook call may carry (their order payloads are a few KiB).
MAX_HOOK_BODY = 256 * 1024
# Failed signatures one integration's hook takes per window before further bad ones are
# 429: a correctly signed call is never counted nor refused by it, so whoever spams bad
# signatures cannot hold the real store's deliveries up (docs/stores.md).
HOOK_BAD_SIGNATURES = 10
HOOK_BAD_SIGNATURE_WINDOW = 60  # seconds

route = vendor_operations("integrations")

EMAIL_QUERY = Param(
    "email",
    {"type": "string", "minLength": 1, "maxLength": storefronts.MAX_EMAIL},
    "Only the orders of this buyer email (case-insensitive)",
)
ORDER_QUERY = Param(
    "order_id",
    {"type": "string", "minLength": 1, "maxLength": storefronts.MAX_ID},
    "Only this store order id (one page, no cursor)",
)


def _integration_id(request: web.Request) -> str:
    value = request.match_info["integration_id"]
    if not ids.INTEGRATION_ID.valid(value):
        raise IntegrationNotFound
    return value


def _hook_url(request: web.Request, integration_id: str) -> str:
    return f"{base_url(request)}/api/hooks/{integration_id}"


def _out(request: web.Request, i: Integration) -> schemas.IntegrationOut:
    products = {
        p: schemas.KeyDuration(
            key_days=d.key_days, key_hours=d.key_hours, key_minutes=d.key_minutes
        )
        for p, d in i.products.items()
    }
    return schemas.IntegrationOut(
        integration_id=i.integration_id,
        project_id=i.project_id,
        provider=i.provider,
        products=products,
        url=_hook_url(request, i.integration_id),
        created_at=i.created_at,
    )


def _durations(products: dict[str, schemas.KeyDuration]) -> dict[str, Duration]:
    return {
        p: Duration(key_days=d.key_days, key_hours=d.key_hours, key_minutes=d.key_minutes)
        for p, d in products.items()
    }


@route(
    "Connect a storefront: keys delivered on purchase",
    {201: schemas.IntegrationOut},
    body=schemas.IntegrationCreate,
    errors=(400, 409),
    description="Paste `url` and the same secret into the store (docs/stores.md). The "
    "secret is never returned again. At most 20 integrations per project.",
)
async def create(request: web.Request, vendor_id: str) -> web.Response:
    project_id = project_id_param(request.match_info["project_id"])
    body = await read_json(request, schemas.integration_create)
    made = await store(request).integrations.create(
        vendor_id, project_id, body.provider, body.secret, _durations(body.products)
    )
    return json_response(_out(request, made), status=201)


@route("A store integration", {200: schemas.IntegrationOut})
async def get(request: web.Request, vendor_id: str) -> web.Response:
    found = await store(request).integrations.get(vendor_id, _integration_id(request))
    return json_response(_out(request, found))


@route(
    "Change a store integration's secret or products",
    {200: schemas.IntegrationOut},
    body=schemas.IntegrationUpdate,
)
async def update(request: web.Request, vendor_id: str) -> web.Response:
    integration_id = _integration_id(request)
    body = await read_json(request, schemas.integration_update)
    secret = body.secret if isinstance(body.secret, str) else None
    products = _durations(body.products) if isinstance(body.products, dict) else None
    changed = await store(request).integrations.update(vendor_id, integration_id, secret, products)
    return json_response(_out(request, changed))


@route("Remove a store integration (its orders are kept)", {200: schemas.Status})
async def delete(request: web.Request, vendor_id: str) -> web.Response:
    await store(request).integrations.delete(vendor_id, _integration_id(request))
    return json_response(SUCCESS)


@route(
    "Orders delivered by store integrations",
    {200: list[Order]},
    query=(PROJECT_QUERY, EMAIL_QUERY, ORDER_QUERY, *listing.PARAMS),
    headers=listing.NEXT_CURSOR_HEADER,
    description="Paged with limit and cursor (the next page's cursor in X-Next-Cursor, "
    "absent on the last page; a filtered page may hold fewer than limit items); each "
    "project's orders in creation order, projects in id order. Without limit the whole "
    "list is streamed.",
)
async def orders(request: web.Request, vendor_id: str) -> web.StreamResponse:
    q = request.query
    project_id = project_query(request)
    email = q.get("email")
    if email is not None and not 0 < len(email) <= storefronts.MAX_EMAIL:
        raise ApiError(422, f"email: must be 1 to {storefronts.MAX_EMAIL} characters")
    order_id = q.get("order_id")
    if order_id is not None and not 0 < len(order_id) <= storefronts.MAX_ID:
        raise ApiError(422, f"order_id: must be 1 to {storefronts.MAX_ID} characters")
    integrations = store(request).integrations

    def fetch(cursor: str | None, limit: int) -> Awaitable[tuple[list[Order], str | None]]:
        return integrations.orders_page(vendor_id, project_id, email, order_id, cursor, limit)

    return await listing.respond(request, fetch)


@operation(
    "The hook a storefront calls when an order is paid",
    {200: str},
    media_type="text/plain",
    errors=(400, 401, 404, 422, 429),
    description="Public: the store's signature over the raw body is the authentication "
    "(docs/stores.md); only the signed body decides (event, order, products, quantities). A "
    "paid order answers its buyer keys, one key id per line; the same order delivered again "
    "(a retry, a replay) answers the same keys and makes no more. An event that is not a "
    "payment answers an empty 200. 422: no product of the order is mapped. 429 (with "
    "Retry-After, nothing written): a new order while the vendor's key-generation limit "
    f"(LEAF7_RATE_KEYGEN) is used up, or more than {HOOK_BAD_SIGNATURES} failed signatures "
    f"in {HOOK_BAD_SIGNATURE_WINDOW} s on this integration (a valid signature still passes).",
    tags=("integrations",),
)
async def hook(request: web.Request) -> web.Response:
    integration_id = _integration_id(request)
    s = store(request)
    settings = request.app[SETTINGS]
    target = await s.integrations.hook(integration_id)
    limit = min(MAX_HOOK_BODY, settings.max_body)
    body = await read_body(request, limit)
    try:
        storefronts.verify(target.provider, target.secret, request.headers, body, s.now())
    except ApiError:
        # Only failures are counted (a valid call costs no round trip), and only failures
        # are refused once over: the real store's signed calls always get through.
        rl = await s.integrations.hit_bad_signature(
            target, HOOK_BAD_SIGNATURES, HOOK_BAD_SIGNATURE_WINDOW
        )
        if not rl.allowed:
            raise ratelimit.too_many(rl.limit, rl.reset, rl.retry_after) from None
        raise
    sale = storefronts.parse(target.provider, body)
    if sale is None:
        return web.Response(text="", content_type="text/plain")

    async def admit() -> None:
        # The vendor's one key-generation budget (the API, the dashboard, import, stores),
        # counted per order like a generation request per call. Over it: 429 + Retry-After,
        # nothing written; every supported store retries, and the order is new then.
        if settings.rate_keygen > 0:
            rl = await s.vendors.hit_keygen(
                target.vendor_id, settings.rate_keygen, settings.rate_window
            )
            ratelimit.check(request, rl)

    order = await s.integrations.sell(target, sale.order_id, sale.lines, sale.email, admit=admit)
    return web.Response(text="\n".join(order.keys), content_type="text/plain")
