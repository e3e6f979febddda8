"""A small client of leaf7's own HTTP API: everything the Discord bot does goes through it,
so the bot holds no Redis connection and no business rules of its own."""

from types import TracebackType
from typing import Any, Self

import aiohttp
import msgspec

from store.models import ActiveKey
from store.roles import RoleChange


class ApiError(Exception):
    """A non-2xx answer; ``detail`` is the API's message, fit to show a user."""

    def __init__(self, status: int, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class _ErrorBody(msgspec.Struct):
    detail: str = "Unexpected error"
    retry_after: int | None = None


class _ResetBody(msgspec.Struct):
    keys_reset: int


class _AckBody(msgspec.Struct):
    acked: int


_error_decoder = msgspec.json.Decoder(_ErrorBody)
_key_decoder = msgspec.json.Decoder(ActiveKey)
_keys_decoder = msgspec.json.Decoder(list[ActiveKey])
_reset_decoder = msgspec.json.Decoder(_ResetBody)
_changes_decoder = msgspec.json.Decoder(list[RoleChange])
_ack_decoder = msgspec.json.Decoder(_AckBody)


class SessionClient:
    """A client that owns one aiohttp session; ``async with`` (or ``close``) closes it."""

    _session: aiohttp.ClientSession

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()


class Leaf7Client(SessionClient):
    def __init__(
        self,
        api_url: str,
        api_key: str,
        project_id: str,
        *,
        timeout: float = 10.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.project_id = project_id
        self.timeout = timeout
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    async def _call(
        self, method: str, path: str, json: Any = None, seconds: float | None = None
    ) -> bytes:
        limit = aiohttp.ClientTimeout(total=self.timeout if seconds is None else seconds)
        try:
            async with self._session.request(
                method, self.api_url + path, json=json, timeout=limit
            ) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    try:
                        err = _error_decoder.decode(body)
                    except msgspec.MsgspecError:
                        err = _ErrorBody(f"The key server answered HTTP {resp.status}")
                    raise ApiError(resp.status, err.detail, err.retry_after)
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(503, "The key server is unreachable; try again later") from exc

    async def redeem(self, key_id: str, discord_id: str) -> ActiveKey:
        body = {"key_id": key_id, "discord_id": discord_id}
        return _key_decoder.decode(await self._call("POST", "/api/vendor/keys/redeem", body))

    async def user_keys(self, discord_id: str) -> list[ActiveKey]:
        path = f"/api/vendor/users/{discord_id}/keys?project_id={self.project_id}"
        return _keys_decoder.decode(await self._call("GET", path))

    async def reset_hwid(self, discord_id: str) -> int:
        """Self-service reset; returns how many keys were reset (0: no HWID was bound)."""
        path = f"/api/vendor/users/{discord_id}/reset_hwid"
        body = await self._call("POST", path, {"project_id": self.project_id})
        return _reset_decoder.decode(body).keys_reset

    async def role_changes(self, wait: float, limit: int) -> list[RoleChange]:
        """The vendor's role changes to apply (role sync), waiting up to ``wait`` seconds for
        one (a long poll: the request's timeout is that much longer)."""
        path = f"/api/vendor/role_sync/changes?wait={wait:g}&limit={limit}"
        body = await self._call("GET", path, seconds=wait + self.timeout)
        return _changes_decoder.decode(body)

    async def role_ack(self, change_ids: list[str]) -> int:
        """Acknowledges applied role changes; returns how many the server acknowledged."""
        body = await self._call("POST", "/api/vendor/role_sync/ack", {"change_ids": change_ids})
        return _ack_decoder.decode(body).acked

    def loader_url(self) -> str:
        return f"{self.api_url}/api/loader/{self.project_id}/loader.lua"

    def loader_line(self, key_id: str) -> str:
        """The two lines a user pastes into their executor."""
        return f'script_key = "{key_id}"\nloadstring(game:HttpGet("{self.loader_url()}"))()'
