from typing import Any

from tests.support.api import Api


async def test_flow(api: Api) -> None:
    project = await api.project()
    keys = await api.keys(project["project_id"], amount=3)
    assert len(keys) == 3
    active = await api.redeem(keys[0]["key_id"])
    assert active["discord_id"] == "555"
    rows: Any = await api.call("GET", "/api/vendor/keys/buyer")
    assert len(rows) == 3
