"""Store integrations (handlers/integrations.py, docs/stores.md)."""

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from handlers.schemas.base import Days, Hours, Minutes, StrictBody

Provider = Literal["sellix", "sellauth", "sellapp", "shoppy", "stripe"]
StoreProductId = Annotated[str, Meta(min_length=1, max_length=128)]
# At least 16 characters: a short secret could be guessed by anyone who knows the hook URL
# (stores generate long random ones). Secrets saved before this rule keep working.
StoreSecret = Annotated[
    str,
    Meta(
        min_length=16,
        max_length=512,
        description="The store's webhook signing secret (16 to 512 characters)",
    ),
]


class KeyDuration(StrictBody):
    """The buyer key one unit of a store product buys (all 0: a lifetime key)."""

    key_days: Days = 30
    key_hours: Hours = 0
    key_minutes: Minutes = 0


Products = Annotated[dict[StoreProductId, KeyDuration], Meta(min_length=1, max_length=100)]


class IntegrationCreate(StrictBody):
    provider: Provider
    secret: StoreSecret
    products: Products


class IntegrationUpdate(StrictBody):
    secret: StoreSecret | UnsetType = UNSET
    products: Products | UnsetType = UNSET


class IntegrationOut(msgspec.Struct):
    """An integration (never its secret) and the URL to paste into the store."""

    integration_id: str
    project_id: str
    provider: str
    products: dict[str, KeyDuration]
    url: str
    created_at: str | None


integration_create = msgspec.json.Decoder(IntegrationCreate)
integration_update = msgspec.json.Decoder(IntegrationUpdate)
