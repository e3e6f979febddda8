"""The dashboard's free-keys page (handlers/dashboard/freekeys.py, docs/free-keys.md): the form
writes what the API reads, secrets are never rendered, each checkpoint's URLs to paste are
shown, CSRF and ownership as on every page, and the funnel is the API's. The browser side is
in tests/test_free_keys_browser.py."""

import html
import json
import re

from store.freekeys import day_of
from tests.support.api import Api
from tests.support.dashboard import sign_in

LV_TOKEN = "lv-secret-publisher-token-7f3a"
TS_SECRET = "ts-secret-key-9c1b"


def form(**changes: str) -> dict[str, str]:
    """The form as a browser posts it: three checkpoints, Turnstile on."""
    data = {
        "enabled": "on",
        "key_hours": "12",
        "keys_per_day": "2",
        "min_seconds": "15",
        "allow_extend": "on",
        "max_extends": "3",
        "cp0_provider": "workink",
        "cp0_link": "https://work.ink/abc/my-script",
        "cp0_link_id": "4242",
        "cp0_token": "",
        "cp1_provider": "linkvertise",
        "cp1_link": "https://link-target.net/123/my-script",
        "cp1_link_id": "",
        "cp1_token": LV_TOKEN,
        "cp2_provider": "lootlabs",
        "cp2_link": "https://loot-link.com/s?abcd",
        "cp3_provider": "",
        "cp3_link": "",
        "cp4_provider": "",
        "turnstile": "on",
        "turnstile_site_key": "0x4AAAsite",
        "turnstile_secret": TS_SECRET,
    }
    data.update(changes)
    return data


def inputs(page: str) -> dict[str, str]:
    """Every input's value by id (the readonly URL fields and the rest)."""
    found = {}
    for tag in re.findall(r"<input [^>]*>", page):
        i = re.search(r'id="([^"]+)"', tag)
        v = re.search(r'value="([^"]*)"', tag)
        if i:
            found[i.group(1)] = html.unescape(v.group(1)) if v else ""
    return found


async def test_the_form_writes_what_the_api_reads(api: Api) -> None:
    c = api.client
    token = await sign_in(c, api.api_key)
    pid = (await api.project())["project_id"]
    path = f"/dashboard/projects/{pid}/free_keys"
    # The project's page links it.
    assert f'href="{path}"' in await (await c.get(f"/dashboard/projects/{pid}")).text()
    page = await c.get(path)
    assert page.status == 200
    text = await page.text()
    assert "Free keys" in text and 'name="cp0_provider"' in text and "<script>" not in text

    resp = await c.post(path, data={**form(), "csrf": token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"{path}?saved=1"
    out = await api.call("GET", f"/api/vendor/projects/{pid}/free_keys")
    assert (out["enabled"], out["key_hours"], out["keys_per_day"]) == (True, 12, 2)
    assert (out["min_seconds"], out["allow_extend"], out["max_extends"]) == (15, True, 3)
    assert [x["provider"] for x in out["checkpoints"]] == ["workink", "linkvertise", "lootlabs"]
    assert out["checkpoints"][0]["link_id"] == "4242" and out["checkpoints"][1]["has_token"]
    assert out["turnstile"] == {"site_key": "0x4AAAsite"}
    # The secrets reached the store (the key page reads them there).
    state = await api.store.freekeys.state(pid)
    assert state.secrets["secret:1"] == LV_TOKEN and state.secrets["turnstile"] == TS_SECRET

    # The page: the URLs to paste, each with its copy button; the secrets only as "set".
    text = await (await c.get(f"{path}?saved=1")).text()
    assert "Saved." in text
    assert LV_TOKEN not in text and TS_SECRET not in text
    assert 'id="cp1-token-set"' in text and 'id="fk-ts-secret-set"' in text
    values = inputs(text)
    assert values["cp1-token"] == "" and values["fk-ts-secret"] == ""
    for k, x in enumerate(out["checkpoints"]):
        assert values[f"cp{k}-return"] == x["return_url"]
        assert f'data-copy="cp{k}-return"' in text
    assert values["cp0-return"].endswith(f"/getkey/{pid}/return/0?token={{TOKEN}}")
    assert values["cp2-postback"] == out["checkpoints"][2]["postback_url"]
    assert 'data-copy="cp2-postback"' in text and "cp0-postback" not in values
    assert values["cp0-link-id"] == "4242" and values["fk-key-hours"] == "12"

    # Saved again with the secret fields empty (htmx): the stored secrets are kept, the
    # postback URL does not move, and the answer is the form again.
    resp = await c.post(
        path,
        data=form(cp1_token="", turnstile_secret="", key_hours="48"),
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert resp.status == 200
    fragment = await resp.text()
    assert "Saved." in fragment and LV_TOKEN not in fragment and "<html" not in fragment
    again = await api.call("GET", f"/api/vendor/projects/{pid}/free_keys")
    assert again["key_hours"] == 48 and again["checkpoints"] == out["checkpoints"]
    assert (await api.store.freekeys.state(pid)).secrets == state.secrets

    # Off again, one checkpoint, no Turnstile: what the API reads.
    off = {k: v for k, v in form().items() if k not in ("enabled", "turnstile")}
    off.update(cp1_provider="", cp2_provider="")
    resp = await c.post(path, data=off, headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert resp.status == 200
    out = await api.call("GET", f"/api/vendor/projects/{pid}/free_keys")
    assert out["enabled"] is False and out["turnstile"] is None
    assert [x["provider"] for x in out["checkpoints"]] == ["workink"]
    assert "turnstile" not in (await api.store.freekeys.state(pid)).secrets


async def test_the_apis_rules_and_messages(api: Api) -> None:
    c = api.client
    token = await sign_in(c, api.api_key)
    pid = (await api.project())["project_id"]
    path = f"/dashboard/projects/{pid}/free_keys"
    h = {"X-CSRF-Token": token, "HX-Request": "true"}
    before = await api.call("GET", f"/api/vendor/projects/{pid}/free_keys")
    for data, status, detail in (
        # a Linkvertise checkpoint and no token stored: the API's 409
        (form(cp1_token=""), 409, "checkpoints[1].token: required"),
        (form(turnstile_secret=""), 409, "turnstile.secret: required"),
        # the decoder's own messages
        (form(key_hours="0"), 422, "at `$.key_hours`"),
        (form(min_seconds="soon"), 422, "at `$.min_seconds`"),
        (form(cp0_link_id=""), 422, "at `$.checkpoints[0].link_id`"),
        (form(cp0_link="javascript:alert(1)"), 422, "at `$.checkpoints[0].link`"),
        (form(cp0_provider="bitly"), 422, "checkpoints[0]"),
        (form(cp0_provider="", cp1_provider="", cp2_provider=""), 422, "at `$.checkpoints`"),
    ):
        resp = await c.post(path, data=data, headers=h)
        assert resp.status == status, (data, await resp.text())
        assert resp.headers["HX-Retarget"] == "#flash"
        assert detail in html.unescape(await resp.text()), detail
    assert await api.call("GET", f"/api/vendor/projects/{pid}/free_keys") == before
    assert (await api.store.freekeys.state(pid)).secrets == {}


async def test_csrf_and_another_vendors_project(api: Api) -> None:
    c = api.client
    token = await sign_in(c, api.api_key)
    pid = (await api.project())["project_id"]
    path = f"/dashboard/projects/{pid}/free_keys"
    for data, headers in ((form(), {}), ({**form(), "csrf": "wrong"}, {"X-CSRF-Token": "x"})):
        resp = await c.post(path, data=data, headers=headers)
        assert resp.status == 403
    assert (await api.call("GET", f"/api/vendor/projects/{pid}/free_keys"))["checkpoints"] == []
    # Another vendor's project (with free keys): 404, like every page of it.
    other = await api.as_other()
    theirs = (await other.project())["project_id"]
    await other.call(
        "PUT",
        f"/api/vendor/projects/{theirs}/free_keys",
        {"enabled": True, "checkpoints": [{"provider": "lootlabs", "link": "https://l.example/x"}]},
    )
    for method, data in (("GET", None), ("POST", {**form(), "csrf": token})):
        resp = await c.request(method, f"/dashboard/projects/{theirs}/free_keys", data=data)
        assert resp.status == 404, method
        assert "Project not found" in await resp.text()
    mine = await other.call("GET", f"/api/vendor/projects/{theirs}/free_keys")
    assert [x["provider"] for x in mine["checkpoints"]] == ["lootlabs"]
    assert "postback" not in await (await c.get(f"/dashboard/projects/{theirs}/free_keys")).text()
    resp = await c.get("/dashboard/projects/not-a-uuid/free_keys")
    assert resp.status == 404
    resp = await c.get(f"{path}?days=91")
    assert resp.status == 422 and "days: must be an integer from 1 to 90" in await resp.text()


async def test_the_funnel_is_the_apis(api: Api) -> None:
    c = api.client
    await sign_in(c, api.api_key)
    pid = (await api.project())["project_id"]
    await api.call(
        "PUT",
        f"/api/vendor/projects/{pid}/free_keys",
        {
            "enabled": True,
            "checkpoints": [
                {"provider": "workink", "link": "https://work.ink/a", "link_id": "1"},
                {"provider": "lootlabs", "link": "https://loot-link.com/s?a"},
            ],
        },
    )
    path = f"/dashboard/projects/{pid}/free_keys"
    text = await (await c.get(path)).text()
    assert 'id="no-refusals"' in text and 'id="funnel-chart"' in text
    # What the key page counts (store.freekeys.count, the funnel hash's fields).
    fk = api.store.freekeys
    for field, times in (("views", 5), ("start:0", 3), ("done:0", 2), ("start:1", 2)):
        for _ in range(times):
            await fk.count(pid, field)
    for field, times in (("done:1", 1), ("issued", 1), ("refused:TOO_FAST", 2)):
        for _ in range(times):
            await fk.count(pid, field)
    await fk.count(pid, "refused:DAILY_LIMIT")
    api_days = await api.call("GET", f"/api/vendor/analytics/free_keys?project_id={pid}&days=30")
    text = await (await c.get(f"{path}?days=30")).text()
    chart = json.loads(html.unescape(re.search(r'data-series="([^"]*)"', text).group(1)))  # type: ignore[union-attr]
    assert len(chart["x"]) == 30 == len(api_days)
    assert chart["x"][-1] == day_of(api.store.core.now()) * 86400
    series = {s["label"]: s["values"] for s in chart["series"]}
    today = api_days[-1]
    assert series["Page views"][-1] == today["page_views"] == 5
    assert series["Checkpoint 1 started"][-1] == 3 and series["Checkpoint 1 completed"][-1] == 2
    assert series["Checkpoint 2 started"][-1] == 2 and series["Checkpoint 2 completed"][-1] == 1
    assert series["Keys issued"][-1] == 1 and series["Refusals"][-1] == 3
    assert all(v == 0 for v in series["Page views"][:-1])
    # The refusals by reason, most first, with what the player was told.
    rows = re.findall(r"<tr><td><code>(\w+)</code></td><td>(\d+)</td><td>([^<]*)", text)
    assert [(r, n) for r, n, _ in rows] == [("TOO_FAST", "2"), ("DAILY_LIMIT", "1")]
    assert "came back too quickly" in rows[0][2]
    assert 'id="funnel-issued">1<' in text and 'id="funnel-views">5<' in text
    assert '<script src="/dashboard/static/freekeys.js" defer></script>' in text
    js = await c.get("/dashboard/static/freekeys.js")
    assert js.status == 200 and "uPlot" in await js.text()
