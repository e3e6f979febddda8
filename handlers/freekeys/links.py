"""The get-key page's address of a machine: ``/getkey/<project_id>?id=<machine id>``, where
the id is an HMAC of the project and the HWID under a key derived from the server secret:
it names the machine without revealing its HWID, and no one without the secret can make the
id of another machine. The HWID itself is kept server-side under that id
(``store.freekeys.FreeKeys.remember``)."""

import asyncio
import hashlib
import hmac
import re

import msgspec
from aiohttp import web

from handlers import schemas
from handlers.appkeys import SETTINGS, STORE
from handlers.clientip import base_url
from handlers.freekeys.providers.base import HTTP, Http

MACHINE_ID = re.compile(r"[0-9a-f]{32}")


def machine_id(secret: bytes, project_id: str, hwid: str) -> str:
    key = hmac.new(secret, b"leaf7-getkey-machine", hashlib.sha256).digest()
    mac = hmac.new(key, f"{project_id}\n{hwid}".encode("utf-8", "surrogatepass"), "sha256")
    return mac.hexdigest()[:32]


def getkey_url(request: web.Request, project_id: str, hwid: str) -> tuple[str, str]:
    """(the page's URL, the machine id) for ``hwid``."""
    mid = machine_id(request.app[STORE].vendors.secret, project_id, hwid)
    return f"{base_url(request)}/getkey/{project_id}?id={mid}", mid


def setup(app: web.Application) -> None:
    """The providers' outbound client, closed with the app."""
    s = app[SETTINGS]
    app[HTTP] = Http(
        workink=s.workink_api,
        linkvertise=s.linkvertise_api,
        turnstile=s.turnstile_api,
        timeout=s.free_keys_timeout,
    )

    async def close(app: web.Application) -> None:
        await app[HTTP].close()

    app.on_cleanup.append(close)


_encoder = msgspec.json.Encoder()


def key_required(request: web.Request, project_id: str, hwid: str) -> bytes:
    """The KEY_REQUIRED verdict with the machine's get-key URL. The machine's HWID is stored
    under its id off the response path (the check stays one round trip; the player opens the
    page seconds later); ``POST /api/loader/getkey`` stores it before it answers."""
    url, mid = getkey_url(request, project_id, hwid)
    task = asyncio.ensure_future(request.app[STORE].freekeys.remember(project_id, mid, hwid))
    task.add_done_callback(_ignore_result)
    code = "KEY_REQUIRED"
    verdict = schemas.ExecuteVerdict(
        valid=False, code=code, message=schemas.VERDICTS[code], getkey_url=url
    )
    return _encoder.encode(verdict)


def _ignore_result(fut: "asyncio.Future[None]") -> None:
    if not fut.cancelled():
        fut.exception()
