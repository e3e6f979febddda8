"""The interface every provider module implements, and the one outbound HTTP client."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import web

# What the page may send to a provider as a token (a Work.ink token, a Linkvertise hash):
# anything else is refused before any call (nothing of the player's reaches a provider's URL
# path unchecked).
TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
TOKEN_MAX = 256


def plain_token(value: str | None) -> str | None:
    if not value or len(value) > TOKEN_MAX or not set(value) <= TOKEN_CHARS:
        return None
    return value


class ProviderDown(Exception):
    """A provider did not answer in time, or answered with an error: not the player's
    fault; the page asks them to try again in a minute."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One checkpoint of the vendor's settings, with its secret (never handed out)."""

    provider: str
    link: str
    link_id: str | None
    secret: str | None


class Http:
    """The outbound client of the free-key providers: one aiohttp session, made on first use
    and closed with the app, every call bounded by ``timeout`` seconds, no redirects
    followed. The bases are the operator's configuration."""

    def __init__(self, *, workink: str, linkvertise: str, turnstile: str, timeout: float) -> None:
        self.workink = workink
        self.linkvertise = linkvertise
        self.turnstile = turnstile
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "leaf7-free-keys"},
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """(status, body); ``ProviderDown`` for a timeout, a connection error or a 5xx."""
        try:
            async with self._client().request(
                method, url, params=params, data=data, allow_redirects=False
            ) as resp:
                body = await resp.content.read(64 * 1024)
                if resp.status >= 500:
                    raise ProviderDown(f"{url} answered {resp.status}")
                return resp.status, body
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ProviderDown(f"{url}: {exc!r}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


HTTP = web.AppKey("free_keys_http", Http)


class Provider(Protocol):
    """One ad-checkpoint provider."""

    name: str
    title: str  # as the page names it
    needs_secret: bool  # the checkpoint has a secret (a publisher token)
    needs_link_id: bool  # the checkpoint names the provider's link id
    needs_postback: bool  # completion is confirmed by the provider's postback

    def return_query(self) -> str:
        """What the return URL the vendor pastes at the provider ends with."""

    def link_url(self, checkpoint: Checkpoint, click: str) -> str:
        """Where the player is sent to pass the checkpoint (``click``: this start's id)."""

    def token_of(self, query: Mapping[str, str]) -> str | None:
        """The provider's token of the player's return (None: missing or malformed)."""

    async def verify(self, http: Http, checkpoint: Checkpoint, token: str, ip: str) -> str | None:
        """None when the provider confirms ``token`` for this checkpoint and the player's
        ``ip``, else the refusal (``FORGED``, ``WRONG_LINK``, ``OTHER_IP``);
        ``ProviderDown`` when it cannot tell."""


class Defaults:
    """A provider's defaults (each provider's class subclasses this and overrides what
    differs): no secret, link id or postback, nothing added to the return URL, the player
    sent to the checkpoint's link as it is."""

    needs_secret = False
    needs_link_id = False
    needs_postback = False

    def return_query(self) -> str:
        return ""

    def link_url(self, checkpoint: Checkpoint, click: str) -> str:
        return checkpoint.link


def json_of(body: bytes) -> Any:
    """The JSON of a provider's answer (None when it is not JSON)."""
    try:
        return json.loads(body)
    except ValueError:
        return None
