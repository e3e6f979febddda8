"""LootLabs: the player is sent to the vendor's link with ``click_id`` (this checkpoint
start's id); when they complete it, LootLabs' server calls the checkpoint's secret postback
URL with ``click_id``, ``ip`` and ``unique_id`` (handlers/freekeys/page.py records it once per
``unique_id``), and sends the player to the return URL. The return is confirmed by that
postback (in the completion script): no call is made from here."""

from collections.abc import Mapping
from urllib.parse import urlencode

from handlers.freekeys.providers.base import Checkpoint, Defaults, Http

NAME = "lootlabs"


class LootLabs(Defaults):
    name = NAME
    title = "LootLabs"
    needs_postback = True

    def link_url(self, checkpoint: Checkpoint, click: str) -> str:
        sep = "&" if "?" in checkpoint.link else "?"
        return checkpoint.link + sep + urlencode({"click_id": click})

    def token_of(self, query: Mapping[str, str]) -> str | None:
        return ""  # nothing to read: the postback confirms

    async def verify(self, http: Http, checkpoint: Checkpoint, token: str, ip: str) -> str | None:
        return None


PROVIDER = LootLabs()
