"""The ad-checkpoint providers of the get-key page, one module each behind one interface
(``base.Provider``): a change in a provider's API is a change of its module alone. Outbound
calls go only to the bases the operator configured (LEAF7_WORKINK_API, LEAF7_LINKVERTISE_API,
LEAF7_TURNSTILE_API), through ``base.Http``: short timeouts, and an outage is
``ProviderDown`` (the page says so), never a 500."""

from handlers.freekeys.providers import linkvertise, lootlabs, workink
from handlers.freekeys.providers.base import Http, Provider, ProviderDown

PROVIDERS: dict[str, Provider] = {p.NAME: p.PROVIDER for p in (workink, linkvertise, lootlabs)}

__all__ = ["PROVIDERS", "Http", "Provider", "ProviderDown"]
