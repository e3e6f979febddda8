"""The dashboard's empty states say what to do next: no project (create one, then keys, the
script and the loader snippet), no keys (generate), no script (upload), and the loader snippet
to paste into an executor."""

from tests.support.api import Api
from tests.support.dashboard import sign_in


async def test_empty_states_say_what_to_do_next(api: Api) -> None:
    c = api.client
    await sign_in(c, api.api_key)
    overview = await (await c.get("/dashboard/")).text()
    assert 'id="getting-started"' in overview
    assert '<a href="/dashboard/projects">Create a project</a>' in overview
    assert "link your Discord account" not in overview  # this vendor has one
    assert "paste it into an executor" in overview.replace("\n", " ")
    projects = await (await c.get("/dashboard/projects")).text()
    assert "No project yet: create one below" in projects

    pid = (await api.project(name="First"))["project_id"]
    overview = await (await c.get("/dashboard/")).text()
    assert 'id="getting-started"' not in overview
    assert "No project yet" not in await (await c.get("/dashboard/projects")).text()

    keys = await (await c.get(f"/dashboard/projects/{pid}/keys")).text()
    assert "No buyer keys yet: generate some above" in keys
    active = await (await c.get(f"/dashboard/projects/{pid}/keys?tab=active")).text()
    assert "No active keys yet" in active
    script = await (await c.get(f"/dashboard/projects/{pid}/script")).text()
    assert "No script uploaded yet" in script
    assert "Paste this into an executor" in script
    assert f"/api/loader/{pid}/loader.lua" in script

    await api.keys(pid, amount=1)
    keys = await (await c.get(f"/dashboard/projects/{pid}/keys")).text()
    assert "No buyer keys yet" not in keys
    searched = await (await c.get(f"/dashboard/projects/{pid}/keys?q=nothing-like-it")).text()
    assert "No keys match." in searched and "No buyer keys yet" not in searched
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": "print(1)"})
    script = await (await c.get(f"/dashboard/projects/{pid}/script")).text()
    assert "No script uploaded yet" not in script


async def test_getting_started_asks_for_discord_when_unlinked(api: Api) -> None:
    other = await api.as_other("unlinked", discord_id=None)
    await sign_in(other.client, other.api_key)
    overview = await (await other.client.get("/dashboard/")).text()
    assert '<a href="/dashboard/settings">link your Discord account</a>' in overview
