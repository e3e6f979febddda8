"""Linkvertise: the vendor's link sends the player to the return URL with ``?hash=<64 hex>``;
``POST {LEAF7_LINKVERTISE_API}/anti_bypassing?token=<publisher token>&hash=<hash>`` answers
``TRUE`` when that hash is of a completed visit (once: Linkvertise forgets it then)."""

import re
from collections.abc import Mapping

from handlers.freekeys.providers.base import Checkpoint, Defaults, Http

NAME = "linkvertise"
_HASH = re.compile(r"[0-9a-fA-F]{64}")


class Linkvertise(Defaults):
    name = NAME
    title = "Linkvertise"
    needs_secret = True

    def token_of(self, query: Mapping[str, str]) -> str | None:
        value = query.get("hash") or ""
        return value.lower() if _HASH.fullmatch(value) else None

    async def verify(self, http: Http, checkpoint: Checkpoint, token: str, ip: str) -> str | None:
        status, body = await http.request(
            "POST",
            f"{http.linkvertise}/anti_bypassing",
            params={"token": checkpoint.secret or "", "hash": token},
        )
        if status == 200 and body.strip().upper() == b"TRUE":
            return None
        return "FORGED"


PROVIDER = Linkvertise()
