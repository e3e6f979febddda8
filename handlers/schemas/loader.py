"""The loader check (handlers/loader.py): the request, the verdicts and their codes, the
signature of a signed verdict."""

from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from handlers.schemas.base import Body


class ExecuteRequest(Body):
    project_id: Annotated[str, Meta(max_length=64)]
    script_key: Annotated[str, Meta(max_length=128)] = ""
    hwid: Annotated[str, Meta(max_length=512)] | None = None
    # Signed verdicts (docs/loader-security.md): the loader's fresh nonce (hex, 128 to 512
    # bits) and the key id it prefers (one it embeds); without a nonce the answer is unsigned.
    nonce: Annotated[str, Meta(pattern=r"^[0-9a-f]{32,128}$", max_length=128)] | None = None
    kid: Annotated[str, Meta(pattern=r"^[0-9a-f]{16}$", max_length=16)] | None = None
    # The executor's name and version, as the loader found them (identifyexecutor()).
    executor: Annotated[str, Meta(max_length=100)] | None = None


execute_request = msgspec.json.Decoder(ExecuteRequest)


class KeyInfo(msgspec.Struct):
    expires_at: str | None
    seconds_left: int | None
    total_executions: int
    discord_id: str | None
    note: str | None


class Verdict(msgspec.Struct):
    valid: bool
    code: str
    message: str


class ValidVerdict(msgspec.Struct):
    valid: bool
    code: str
    message: str
    script: str
    key: KeyInfo


# Every verdict code of the loader check and its message, declared once (the Lua script
# store/lua/execute.lua returns the codes).
VERDICTS: dict[str, str] = {
    "KEY_VALID": "Key is valid",
    "KEY_INCORRECT": "Key is invalid",
    "KEY_EXPIRED": "Key has expired",
    "KEY_BANNED": "Key is banned",
    "KEY_HWID_LOCKED": "Key is locked to another HWID; ask for a HWID reset",
    "HWID_BANNED": "This HWID is banned",
    "PROJECT_NOT_FOUND": "Project not found",
    "PROJECT_INACTIVE": "Project is inactive",
    "HWID_MISSING": "No HWID was provided",
    "KEY_REQUIRED": "A key is required: open getkey_url (copied to your clipboard) to get one",
}
Code = Annotated[str, Meta(extra_json_schema={"enum": list(VERDICTS)})]


class VerdictSignature(msgspec.Struct):
    """The signature of a valid verdict (signed verdicts, a request with a ``nonce``): what it
    covers, byte for byte, is in docs/loader-security.md. Hashes are SHA-256 in hex."""

    v: int
    kid: str
    nonce: str
    iat: int
    exp: int
    hwid: str
    split: int
    chunk: str
    path: list[str]
    sig: str


class ExecuteVerdict(msgspec.Struct):
    """A verdict (documentation of ``Verdict`` and ``ValidVerdict``): ``script`` and ``key``
    only when ``valid``; ``signature`` only when valid on a project with signed verdicts."""

    valid: bool
    code: Code
    message: str
    script: str | UnsetType = UNSET
    key: KeyInfo | UnsetType = UNSET
    signature: VerdictSignature | UnsetType = UNSET
    # KEY_REQUIRED (a project with free keys): the get-key page of this machine.
    getkey_url: str | UnsetType = UNSET
