"""Work.ink: the vendor's link sends the player to the return URL with ``{TOKEN}`` filled in;
``GET {LEAF7_WORKINK_API}/token/isValid/<token>?deleteToken=1`` answers whether it is valid
(and deletes it: single use at Work.ink too), for which link and from which IP."""

from collections.abc import Mapping
from urllib.parse import quote

from handlers.freekeys.providers.base import Checkpoint, Defaults, Http, json_of, plain_token

NAME = "workink"


class WorkInk(Defaults):
    name = NAME
    title = "Work.ink"
    needs_link_id = True

    def return_query(self) -> str:
        return "?token={TOKEN}"

    def token_of(self, query: Mapping[str, str]) -> str | None:
        return plain_token(query.get("token"))

    async def verify(self, http: Http, checkpoint: Checkpoint, token: str, ip: str) -> str | None:
        url = f"{http.workink}/token/isValid/{quote(token, safe='')}"
        status, body = await http.request("GET", url, params={"deleteToken": "1"})
        data = json_of(body) if status == 200 else None
        if not isinstance(data, dict) or data.get("valid") is not True:
            return "FORGED"
        info = data.get("info")
        if not isinstance(info, dict):
            return "FORGED"
        if str(info.get("linkId")) != str(checkpoint.link_id):
            return "WRONG_LINK"
        if info.get("byIp") != ip:
            return "OTHER_IP"
        return None


PROVIDER = WorkInk()
