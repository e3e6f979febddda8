"""Store integrations: storefronts (Sellix, SellAuth, SellApp, Shoppy, Stripe) that call a
project's hook URL when an order is paid, and the orders they delivered keys for.

An integration is four fields of the project's integrations hash (``keyspace.integrations``);
a bare integration id (the hook URL) resolves to its project through
``keyspace.integration_ref``. A paid order is recorded exactly once: one script
(store/lua/record_order.lua) looks the order (and the store's idempotency key) up and either
returns the keys it delivered before or writes the new keys, the order record and the
``KEY_SOLD`` event together, so a retried, replayed or concurrent delivery never makes more
keys. Orders are kept (``keyspace.orders``) and listed in creation order
(``keyspace.order_index``).
"""

import asyncio
import base64
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence

import msgspec

from store import keyspace, paging
from store.domain import ProjectDomain
from store.errors import (
    IntegrationNotFound,
    InvalidCursor,
    OrderTooLarge,
    UnmappedProduct,
)
from store.licences import new_key_id
from store.models import RateLimit, iso

PROVIDERS = ("sellix", "sellauth", "sellapp", "shoppy", "stripe")
MAX_INTEGRATIONS = 20  # per project
MAX_ORDER_KEYS = 1000  # keys one order may make (like one buyer-key request)
# Script calls of one orders page at most (a filtered page may end short, with a cursor).
_PAGE_CALLS = 64


class Duration(msgspec.Struct, kw_only=True):
    """What one unit of a store product buys: a buyer key of this duration (all 0: lifetime)."""

    key_days: int = 30
    key_hours: int = 0
    key_minutes: int = 0


class Integration(msgspec.Struct, kw_only=True):
    """An integration as the vendor sees it: never its secret."""

    integration_id: str
    project_id: str
    provider: str
    products: dict[str, Duration]
    created_at: str | None


class Hook(msgspec.Struct, kw_only=True):
    """What a hook call needs: the integration, its secret included (never handed out), and
    the vendor whose key-generation budget its orders spend."""

    integration_id: str
    project_id: str
    vendor_id: str
    provider: str
    secret: str
    products: dict[str, Duration]


class Order(msgspec.Struct, kw_only=True):
    order_id: str
    provider: str
    product: str  # the mapped store product ids of the order, comma-separated
    email: str | None
    keys: list[str]
    created_at: str | None
    project_id: str
    integration_id: str


class _Record(msgspec.Struct, kw_only=True):
    """An order as stored (JSON in the orders hash)."""

    order_id: str
    provider: str
    product: str
    email: str
    keys: list[str]
    created_at: int
    integration_id: str


_products_encode = msgspec.json.Encoder().encode
_products_decode = msgspec.json.Decoder(dict[str, Duration]).decode
_record_encode = msgspec.json.Encoder().encode
_record_decode = msgspec.json.Decoder(_Record).decode
_cursor_decode = msgspec.json.Decoder(tuple[int, str, str]).decode
_PROJECT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def new_integration_id() -> str:
    return secrets.token_hex(16)  # 128 bits: the hook URL is not guessable


def _order(project_id: str, raw: str | bytes) -> Order:
    r = _record_decode(raw)
    return Order(
        order_id=r.order_id,
        provider=r.provider,
        product=r.product,
        email=r.email or None,
        keys=r.keys,
        created_at=iso(r.created_at),
        project_id=project_id,
        integration_id=r.integration_id,
    )


def _stored(
    integration_id: str, project_id: str, provider: str, products: str | None, created_at: str
) -> Integration:
    """An integration from its fields in the project's hash (``products`` as stored: JSON)."""
    return Integration(
        integration_id=integration_id,
        project_id=project_id,
        provider=provider,
        products=_products_decode(products or "{}"),
        created_at=iso(created_at),
    )


def _fields(integration_id: str) -> list[str]:
    return [f"{integration_id}:{f}" for f in ("provider", "secret", "products", "created_at")]


def _encode_cursor(project_id: str, after: str) -> str:
    raw = msgspec.json.encode((1, project_id, after))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    if not 0 < len(cursor) <= paging.MAX_CURSOR:
        raise InvalidCursor
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, project_id, after = _cursor_decode(raw)
    except (ValueError, msgspec.DecodeError):
        raise InvalidCursor from None
    if version != 1 or not _PROJECT_ID.fullmatch(project_id) or len(after) > 1024:
        raise InvalidCursor
    return project_id, after


class Integrations(ProjectDomain):
    # ---- the vendor's integrations ----------------------------------------------------------

    async def create(
        self,
        vendor_id: str,
        project_id: str,
        provider: str,
        secret: str,
        products: dict[str, Duration],
    ) -> Integration:
        if provider not in PROVIDERS:
            raise ValueError("provider")
        integration_id = new_integration_id()
        now = self.core.now()
        # The ref first (like a key's): a hook never meets an integration it cannot resolve.
        ref = keyspace.integration_ref(integration_id)
        await self.core.call("SET", ref, project_id)
        try:
            await self.core.script(
                self.core.scripts.integration_create,
                [keyspace.project(project_id), keyspace.integrations(project_id)],
                [
                    vendor_id,
                    integration_id,
                    provider,
                    secret,
                    _products_encode(products),
                    now,
                    MAX_INTEGRATIONS,
                ],
                durable=True,
            )
        except BaseException:
            await asyncio.gather(self.core.call("DEL", ref), return_exceptions=True)
            raise
        return Integration(
            integration_id=integration_id,
            project_id=project_id,
            provider=provider,
            products=products,
            created_at=iso(now),
        )

    async def _project_of(self, integration_id: str) -> str:
        project_id: str | None = await self.core.call(
            "GET", keyspace.integration_ref(integration_id)
        )
        if project_id is None:
            raise IntegrationNotFound
        return project_id

    async def get(self, vendor_id: str, integration_id: str) -> Integration:
        project_id = await self._project_of(integration_id)
        owner, (provider, _, products, created_at) = await asyncio.gather(
            self.core.call("HGET", keyspace.project(project_id), "vendor_id"),
            self.core.call("HMGET", keyspace.integrations(project_id), *_fields(integration_id)),
        )
        if owner != vendor_id or provider is None:
            raise IntegrationNotFound
        return _stored(integration_id, project_id, provider, products, created_at)

    async def update(
        self,
        vendor_id: str,
        integration_id: str,
        secret: str | None,
        products: dict[str, Duration] | None,
    ) -> Integration:
        project_id = await self._project_of(integration_id)
        provider, stored, created_at = await self.core.script(
            self.core.scripts.integration_update,
            [keyspace.project(project_id), keyspace.integrations(project_id)],
            [
                vendor_id,
                integration_id,
                secret or "",
                "" if products is None else _products_encode(products),
            ],
            durable=True,
        )
        return _stored(integration_id, project_id, provider, stored, created_at)

    async def delete(self, vendor_id: str, integration_id: str) -> None:
        project_id = await self._project_of(integration_id)
        await self.core.script(
            self.core.scripts.integration_delete,
            [keyspace.project(project_id), keyspace.integrations(project_id)],
            [vendor_id, integration_id],
            durable=True,
        )
        await self.core.call("DEL", keyspace.integration_ref(integration_id))

    # ---- the public hook ---------------------------------------------------------------------

    async def hook(self, integration_id: str) -> Hook:
        """The integration a hook URL names, secret included (to verify the call with)."""
        project_id = await self._project_of(integration_id)
        # One round trip: both reads ride the same auto-pipeline batch.
        vendor_id, (provider, secret, products, _) = await asyncio.gather(
            self.core.call("HGET", keyspace.project(project_id), "vendor_id"),
            self.core.call("HMGET", keyspace.integrations(project_id), *_fields(integration_id)),
        )
        if vendor_id is None or provider is None or secret is None:
            raise IntegrationNotFound
        return Hook(
            integration_id=integration_id,
            project_id=project_id,
            vendor_id=vendor_id,
            provider=provider,
            secret=secret,
            products=_products_decode(products or "{}"),
        )

    async def hit_bad_signature(self, hook: Hook, limit: int, window: int) -> RateLimit:
        """One failed signature on the integration's hook (a fixed window in the project's
        slot); refused once ``limit`` failed in the window."""
        allowed, remaining, reset, retry = await self.core.script(
            self.core.scripts.rate_limit,
            [keyspace.hook_failures(hook.project_id, hook.integration_id)],
            [self.core.now(), window, limit],
        )
        return RateLimit(bool(int(allowed)), limit, int(remaining), int(reset), int(retry))

    async def _delivered(self, hook: Hook, field: str, idem: str) -> str | None:
        """The record of an order delivered before (by its field, or idempotency field)."""
        orders = keyspace.orders(hook.project_id)
        seen: str | None = await self.core.call("HGET", orders, field)
        if seen is None and idem:
            by_idem = keyspace.order_idempotency(hook.project_id)
            earlier = await self.core.call("HGET", by_idem, idem)
            if earlier is not None:
                seen = await self.core.call("HGET", orders, earlier)
        return seen

    async def sell(
        self,
        hook: Hook,
        order_id: str,
        lines: Sequence[tuple[Sequence[str], int]],
        email: str | None,
        idempotency_key: str | None = None,
        admit: Callable[[], Awaitable[None]] | None = None,
    ) -> Order:
        """The keys of a paid order, exactly once per order (and idempotency key).

        ``lines``: each line of the order as (its candidate store product ids, most specific
        first, e.g. a variant then its product; its quantity). A line is sold by the first of
        its ids the integration maps; lines none of whose ids are mapped are not ours (a store
        may sell other things too), and an order with no mapped line is ``UnmappedProduct``.
        Each unit makes one buyer key of the mapped duration. A delivery of an order seen
        before answers the keys it got then, whatever its payload says now.

        ``idempotency_key``: a store's own id of the delivery, only ever from signed material
        (none of today's stores signs one; SellAuth's header is not signed, so not used).

        ``admit`` (the vendor's key-generation budget) is awaited only for an order not
        delivered before, right before anything is written; it raises to refuse the order,
        which then writes nothing and can be delivered again later. It cannot share the
        script (the budget lives in the vendor's slot, the order in the project's), so it is
        taken first: a concurrent duplicate of a new order may spend one unit more than the
        keys it gets (harmless: the budget errs on refusing), but a retry or replay of a
        delivered order spends nothing and gets its keys even when the budget is used up."""
        sold: list[tuple[str, int]] = []
        for candidates, quantity in lines:
            product = next((c for c in candidates if c in hook.products), None)
            if product is not None and quantity > 0:
                sold.append((product, quantity))
        if not sold:
            raise UnmappedProduct
        if sum(q for _, q in sold) > MAX_ORDER_KEYS:
            raise OrderTooLarge
        project_id = hook.project_id
        now = self.core.now()
        ids: list[str] = []
        per_key: list[str | int] = []
        for product, quantity in sold:
            d = hook.products[product]
            for _ in range(quantity):
                key_id = new_key_id()
                ids.append(key_id)
                per_key += [key_id, d.key_days, d.key_hours, d.key_minutes]
        field = f"{hook.provider}:{order_id}"
        idem = f"{hook.provider}:{idempotency_key}" if idempotency_key else ""
        if admit is not None:
            seen = await self._delivered(hook, field, idem)
            if seen is not None:
                return _order(project_id, seen)
            await admit()
        record = _record_encode(
            _Record(
                order_id=order_id,
                provider=hook.provider,
                product=",".join(dict.fromkeys(p for p, _ in sold)),
                email=email or "",
                keys=ids,
                created_at=now,
                integration_id=hook.integration_id,
            )
        )
        key_names = [
            keyspace.project(project_id),
            keyspace.buyer_index(project_id),
            keyspace.integrations(project_id),
            keyspace.orders(project_id),
            keyspace.order_index(project_id),
            keyspace.order_idempotency(project_id),
            *(keyspace.key(project_id, i) for i in ids),
            *keyspace.event_streams(project_id),
        ]
        n = len(ids)
        message = f"{n} key{'s' if n != 1 else ''} sold: {hook.provider} order {order_id}"
        args: list[str | int | bytes] = [
            hook.integration_id,
            field,
            idem,
            now,
            f"{hook.provider} order {order_id}"[:255],
            record,
            f"{now:010d}|{field}",
            message,
            order_id,
            hook.provider,
            email or "",
            *per_key,
        ]
        # The key -> project refs are written before the script (like Licences.generate):
        # a key handed out always resolves. Refs of keys the script did not write (an order
        # seen before, or an error) are dropped after it.
        refs = [keyspace.key_ref(hook.vendor_id, i) for i in ids]
        await asyncio.gather(*(self.core.call("SET", r, project_id) for r in refs))
        try:
            written, raw = await self.core.script(
                self.core.scripts.record_order, key_names, args, durable=True
            )
        except BaseException:
            await asyncio.gather(*(self.core.call("DEL", r) for r in refs), return_exceptions=True)
            raise
        if not written:
            await asyncio.gather(*(self.core.call("DEL", r) for r in refs))
        return _order(project_id, raw)

    # ---- orders ------------------------------------------------------------------------------

    async def orders_page(
        self,
        vendor_id: str,
        project_id: str | None,
        email: str | None,
        order_id: str | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Order], str | None]:
        """One page of the vendor's orders (of one project, or of every project in id order),
        in creation order, optionally only those of one buyer email and/or one store order id,
        and the next page's cursor (None after the last). Each Redis call reads at most
        ``limit`` (<= 1000) orders; a filtered page may hold fewer than ``limit``."""
        if not 1 <= limit <= paging.MAX_LIMIT:
            raise ValueError("limit")
        at = _decode_cursor(cursor) if cursor else None
        if project_id:
            await self.projects.get(vendor_id, project_id)  # 404 for a foreign project
            if at is not None and at[0] != project_id:
                raise InvalidCursor
            project_ids = [project_id]
        else:
            project_ids = sorted(await self.vendors.project_ids(vendor_id))
        if order_id is not None:
            # One store order id: its record in each project, by field (no walk).
            return await self._by_order_id(vendor_id, project_ids, email, order_id), None
        i, after = 0, ""
        if at is not None:
            while i < len(project_ids) and project_ids[i] < at[0]:
                i += 1
            if i < len(project_ids) and project_ids[i] == at[0]:
                after = at[1]
        out: list[Order] = []
        calls = 0
        while i < len(project_ids) and len(out) < limit and calls < _PAGE_CALLS:
            p = project_ids[i]
            calls += 1
            want = limit - len(out)
            low = f"({after}" if after else "-"
            members: list[str] = await self.core.call(
                "ZRANGEBYLEX", keyspace.order_index(p), low, "+", "LIMIT", 0, want
            )
            if members:
                fields = [m.partition("|")[2] for m in members]
                owner, raws = await asyncio.gather(
                    self.core.call("HGET", keyspace.project(p), "vendor_id"),
                    self.core.call("HMGET", keyspace.orders(p), *fields),
                )
                if owner == vendor_id:  # else: deleted (or being deleted) meanwhile
                    for raw in raws:
                        if raw is None:
                            continue
                        o = _order(p, raw)
                        if email is not None and (o.email or "").lower() != email.lower():
                            continue
                        out.append(o)
                after = members[-1]
            if len(members) < want:
                i, after = i + 1, ""
        if i >= len(project_ids):
            return out, None
        return out, _encode_cursor(project_ids[i], after)

    async def _by_order_id(
        self, vendor_id: str, project_ids: list[str], email: str | None, order_id: str
    ) -> list[Order]:
        fields = [f"{provider}:{order_id}" for provider in PROVIDERS]
        found = await asyncio.gather(
            *(
                asyncio.gather(
                    self.core.call("HGET", keyspace.project(p), "vendor_id"),
                    self.core.call("HMGET", keyspace.orders(p), *fields),
                )
                for p in project_ids
            )
        )
        out = [
            _order(p, raw)
            for p, (owner, raws) in zip(project_ids, found, strict=True)
            if owner == vendor_id
            for raw in raws
            if raw is not None
        ]
        if email is not None:
            out = [o for o in out if (o.email or "").lower() == email.lower()]
        out.sort(key=lambda o: (o.created_at or "", o.project_id))
        return out
