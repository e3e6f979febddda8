"""The vendor dashboard over HTTP: sign-in and sessions, CSRF, headers, escaping, ownership
(another vendor's ids are 404), the one code path with the API. The browser tests are in
tests/test_dashboard_browser.py."""

import dataclasses
from typing import Any

import pytest

from handlers.dashboard import overview
from handlers.dashboard.base import CSP, IDLE, LIFETIME
from service.app import create_app
from service.config import Settings
from service.webhooks import embed
from store import keyspace
from store.models import pairs
from store.webhooks import Notification
from tests.support.api import Api, Clock, store_of
from tests.support.dashboard import csrf_of, sign_in

XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"


async def test_root_redirects_and_pages_need_a_session(api: Api) -> None:
    c = api.client
    resp = await c.get("/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/dashboard/"
    resp = await c.get("/dashboard/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/dashboard/signin"
    resp = await c.post("/dashboard/projects", data={"name": "x"}, allow_redirects=False)
    assert resp.status == 401
    assert await store_of(c).projects.list(api.vendor_id) == []


async def test_sign_in_cookie_and_headers(api: Api) -> None:
    c = api.client
    form = await c.get("/dashboard/signin")
    for name, value in {
        "Content-Security-Policy": CSP,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }.items():
        assert form.headers[name] == value
    assert "unsafe-inline" not in CSP and "script-src 'self'" in CSP
    assert "<script>" not in await form.text()  # no inline script: only <script src=...>
    token = csrf_of(await form.text())
    resp = await c.post(
        "/dashboard/signin", data={"csrf": token, "api_key": api.api_key}, allow_redirects=False
    )
    assert resp.status == 303
    cookie = next(h for h in resp.headers.getall("Set-Cookie") if h.startswith("l7_session="))
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= attrs and "secure" not in attrs
    assert "SameSite=Lax" in cookie and "Path=/dashboard" in cookie
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert len(session_id) >= 43  # 256 bits, url-safe base64
    page = await c.get("/dashboard/")
    assert page.status == 200
    assert "Overview" in await page.text()
    for name in ("Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"):
        assert name in page.headers
    # The session id itself is not stored (only its SHA-256).
    s = store_of(c)
    assert await s.sessions.resume(session_id, IDLE) is not None
    assert not await s.core.call("EXISTS", f"l7:session:{{{session_id}}}")


async def test_secure_cookie_when_public_url_is_https(
    aiohttp_client: Any, app_redis: Any, clock: Clock, settings: Settings
) -> None:
    https = dataclasses.replace(settings, public_url="https://keys.example.com")
    client = await aiohttp_client(create_app(https, redis=app_redis, clock=clock))
    _vendor_id, api_key = await store_of(client).vendors.create("v", "1")
    form = await client.get("/dashboard/signin")
    assert "Secure" in form.headers["Set-Cookie"]
    token = csrf_of(await form.text())
    # (A Secure cookie is not sent back over http by the client: sent by hand.)
    resp = await client.post(
        "/dashboard/signin",
        data={"csrf": token, "api_key": api_key},
        headers={"Cookie": f"l7_signin={token}"},
        allow_redirects=False,
    )
    cookie = next(h for h in resp.headers.getall("Set-Cookie") if h.startswith("l7_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie


async def test_wrong_key_and_sign_in_brute_force(
    aiohttp_client: Any, app_redis: Any, clock: Clock, settings: Settings
) -> None:
    limited = dataclasses.replace(settings, brute_force_limit=5, brute_force_window=600)
    client = await aiohttp_client(create_app(limited, redis=app_redis, clock=clock))
    _, api_key = await store_of(client).vendors.create("v", "1")
    for _ in range(5):
        await sign_in(client, "l7_wrong", status=401)
    await sign_in(client, "l7_wrong", status=429)
    await sign_in(client, api_key, status=429)  # the right key too, until the window ends
    clock.advance(601)
    await sign_in(client, api_key)


async def test_sign_in_form_needs_its_csrf_token(api: Api) -> None:
    resp = await api.client.post(
        "/dashboard/signin", data={"api_key": api.api_key}, allow_redirects=False
    )
    assert resp.status == 403


async def test_csrf_missing_or_wrong_is_403_and_changes_nothing(api: Api) -> None:
    c = api.client
    token = await sign_in(c, api.api_key)
    s = store_of(c)
    for data, headers in (
        ({"name": "P"}, {}),
        ({"name": "P", "csrf": "wrong"}, {}),
        ({"name": "P"}, {"X-CSRF-Token": "wrong"}),
    ):
        resp = await c.post("/dashboard/projects", data=data, headers=headers)
        assert resp.status == 403
    assert await s.projects.list(api.vendor_id) == []
    project = await api.project()
    resp = await c.post(
        f"/dashboard/projects/{project['project_id']}/delete", data={"confirm": "Script Hub"}
    )
    assert resp.status == 403
    assert (await s.projects.get(api.vendor_id, project["project_id"])).name == "Script Hub"
    resp = await c.post("/dashboard/settings/rotate", headers={"X-CSRF-Token": token + "x"})
    assert resp.status == 403
    # The right token, in the header (htmx) or the form: done.
    resp = await c.post("/dashboard/projects", data={"name": "P"}, headers={"X-CSRF-Token": token})
    assert resp.status == 200
    assert [p.name for p in await s.projects.list(api.vendor_id)] == ["Script Hub", "P"] or [
        p.name for p in await s.projects.list(api.vendor_id)
    ] == ["P", "Script Hub"]


async def test_vendor_text_is_escaped(api: Api) -> None:
    c = api.client
    await sign_in(c, api.api_key)
    project = await api.project(name="x" + XSS[:40], description=XSS)
    pid = project["project_id"]
    await api.keys(pid, amount=1, note=XSS)
    for path in (
        f"/dashboard/projects/{pid}",
        f"/dashboard/projects/{pid}/keys",
        "/dashboard/projects",
    ):
        html = await (await c.get(path)).text()
        assert "<script>alert" not in html and "<img src=x" not in html
    html = await (await c.get(f"/dashboard/projects/{pid}/keys")).text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html


async def test_another_vendors_ids_are_404(api: Api) -> None:
    other = await api.as_other()
    theirs = await other.project()
    pid = theirs["project_id"]
    [key] = await other.keys(pid, amount=1)
    await other.redeem(key["key_id"])
    c = api.client
    token = await sign_in(c, api.api_key)
    h = {"X-CSRF-Token": token}
    for path in ("", "/keys", "/script", "/keys/batch.txt"):
        resp = await c.get(f"/dashboard/projects/{pid}{path}")
        assert resp.status == 404, path
        assert "Project not found" in await resp.text()
    for action in ("ban", "unban", "reset_hwid", "delete"):
        resp = await c.post(f"/dashboard/keys/{key['key_id']}/{action}", headers=h)
        assert resp.status in (400, 404), action
    resp = await c.post(f"/dashboard/keys/{key['key_id']}/ban", headers=h)
    assert resp.status == 404 and "Key not found" in await resp.text()
    resp = await c.post(
        f"/dashboard/projects/{pid}/delete", data={"confirm": "Script Hub"}, headers=h
    )
    assert resp.status == 404
    resp = await c.post(f"/dashboard/projects/{pid}", data={"name": "mine now"}, headers=h)
    assert resp.status == 404
    assert (await other.store.projects.get(other.vendor_id, pid)).name == "Script Hub"
    assert not (await other.store.licences.get_active(other.vendor_id, key["key_id"])).banned
    resp = await c.get("/dashboard/projects/not-a-uuid/keys")
    assert resp.status == 404


async def test_errors_show_the_apis_detail(api: Api) -> None:
    c = api.client
    token = await sign_in(c, api.api_key)
    project = await api.project()
    pid = project["project_id"]
    h = {"X-CSRF-Token": token, "HX-Request": "true"}
    resp = await c.post(f"/dashboard/projects/{pid}/keys", data={"amount": "0"}, headers=h)
    assert resp.status == 422
    assert resp.headers["HX-Retarget"] == "#flash"
    assert "Expected `int` &gt;= 1 - at `$.amount`" in await resp.text()
    [key] = await api.keys(pid, amount=1)
    await api.redeem(key["key_id"])
    resp = await c.post(f"/dashboard/keys/{key['key_id']}/delete", headers=h)
    assert resp.status == 400 and "Cannot delete a redeemed key" in await resp.text()
    resp = await c.post(f"/dashboard/projects/{pid}/delete", data={"confirm": "nope"}, headers=h)
    assert resp.status == 422
    assert await store_of(c).projects.get(api.vendor_id, pid)


async def test_actions_use_the_store_like_the_api(api: Api) -> None:
    c = api.client
    token = await sign_in(c, api.api_key)
    h = {"X-CSRF-Token": token, "HX-Request": "true"}
    project = await api.project()
    pid = project["project_id"]
    resp = await c.post(
        f"/dashboard/projects/{pid}/keys",
        data={"amount": "3", "key_days": "1", "key_hours": "2", "key_minutes": "3", "note": "n1"},
        headers=h,
    )
    assert resp.status == 200
    made = await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")
    assert len(made) == 3 and {k["note"] for k in made} == {"n1"}
    txt = await (await c.get(f"/dashboard/projects/{pid}/keys/batch.txt")).text()
    assert sorted(txt.split()) == sorted(k["key_id"] for k in made)
    csv_text = await (await c.get(f"/dashboard/projects/{pid}/keys/batch.csv")).text()
    assert csv_text.splitlines()[0].startswith("key_id,") and len(csv_text.splitlines()) == 4
    key_id = made[0]["key_id"]
    await api.redeem(key_id)
    for action, check in (
        ("ban", lambda k: k["banned"]),
        ("unban", lambda k: not k["banned"]),
    ):
        resp = await c.post(f"/dashboard/keys/{key_id}/{action}", headers=h)
        assert resp.status == 200
        assert check(await api.active(key_id))
    resp = await c.post(f"/dashboard/keys/{key_id}/set_hwid", data={"hwid": "HW-1"}, headers=h)
    assert resp.status == 200 and (await api.active(key_id))["hwid"] == "HW-1"
    resp = await c.post(f"/dashboard/keys/{key_id}/reset_hwid", headers=h)
    assert resp.status == 200 and (await api.active(key_id))["hwid"] is None
    # Search: exact key id, Discord ID (the per-user index), note (a bounded scan).
    for q, tab in ((key_id, "active"), ("555", "active"), ("n1", "buyer")):
        html = await (await c.get(f"/dashboard/projects/{pid}/keys?tab={tab}&q={q}")).text()
        assert key_id in html, q
    resp = await c.post(
        f"/dashboard/projects/{pid}/script",
        data={"source": "print(L7_ScriptVersion)", "version": "2.0.0"},
        headers={"X-CSRF-Token": token},
    )
    assert resp.status == 200 and "L7_ScriptVersion" in await resp.text()
    assert (await api.call("GET", f"/api/vendor/projects/{pid}"))["version"] == "2.0.0"
    resp = await c.post(
        "/dashboard/blacklist", data={"ip": "10.0.0.1/8", "reason": "abuse"}, headers=h
    )
    entries = await api.call("GET", "/api/vendor/blacklist")
    assert [e["ip"] for e in entries] == ["10.0.0.0/8"]


async def test_sessions_end(api: Api, clock: Clock) -> None:
    c = api.client
    token = await sign_in(c, api.api_key)
    s = store_of(c)
    session_id = c.session.cookie_jar.filter_cookies(c.make_url("/dashboard/"))["l7_session"].value
    # Idle timeout: renewed on use.
    clock.advance(IDLE - 10)
    assert await s.sessions.resume(session_id, IDLE) is not None
    # Rotating the key through the API ends the session.
    await api.call("POST", "/api/vendor/api_key/rotate")
    assert await s.sessions.resume(session_id, IDLE) is None
    resp = await c.get("/dashboard/", allow_redirects=False)
    assert resp.status == 303
    # Absolute lifetime.
    sid, _ = await s.sessions.create(api.vendor_id, "d" * 64, IDLE, LIFETIME)
    assert await s.sessions.resume(sid, IDLE) is None  # not the vendor's current key
    del token


async def test_sign_out_and_sign_out_everywhere(api: Api) -> None:
    c = api.client
    token = await sign_in(c, api.api_key)
    resp = await c.post("/dashboard/signout", data={"csrf": token}, allow_redirects=False)
    assert resp.status == 303
    assert (await c.get("/dashboard/", allow_redirects=False)).status == 303
    token = await sign_in(c, api.api_key)
    s = store_of(c)
    digest = s.vendors.api_key_digest(api.api_key)
    other, _ = await s.sessions.create(api.vendor_id, digest, IDLE, LIFETIME)
    assert await s.sessions.resume(other, IDLE) is not None
    resp = await c.post(
        "/dashboard/settings/signout_all", data={"csrf": token}, allow_redirects=False
    )
    assert resp.status == 303
    assert await s.sessions.resume(other, IDLE) is None
    assert (await c.get("/dashboard/", allow_redirects=False)).status == 303


async def test_a_key_in_its_grace_period_cannot_sign_in(api: Api) -> None:
    old = api.api_key
    await api.call("POST", "/api/vendor/api_key/rotate")
    await sign_in(api.client, old, status=403)


async def test_static_files_are_served_with_licences(api: Api) -> None:
    for path in (
        "/dashboard/static/htmx.min.js",
        "/dashboard/static/uPlot.iife.min.js",
        "/dashboard/static/dashboard.js",
        "/dashboard/static/LICENSES/htmx.org-2.0.11.LICENSE",
        "/dashboard/static/LICENSES/uplot-1.6.32.LICENSE",
    ):
        resp = await api.client.get(path)
        assert resp.status == 200, path


async def test_edit_a_note_on_both_tabs(api: Api) -> None:
    c = api.client
    token = await sign_in(c, api.api_key)
    h = {"X-CSRF-Token": token, "HX-Request": "true"}
    pid = (await api.project())["project_id"]
    unredeemed, redeemed = await api.keys(pid, amount=2, note="old")
    await api.redeem(redeemed["key_id"])
    # Without the CSRF token (or with a wrong one): 403, the note unchanged.
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        resp = await c.post(
            f"/dashboard/keys/{unredeemed['key_id']}/note",
            data={"note": "new", "tab": "buyer"},
            headers=headers,
        )
        assert resp.status == 403
    buyer = await api.call("GET", f"/api/vendor/keys/buyer/{unredeemed['key_id']}")
    assert buyer["note"] == "old"
    # Buyer tab (set_buyer_note, as PATCH /api/vendor/keys/buyer/{key_id}).
    resp = await c.post(
        f"/dashboard/keys/{unredeemed['key_id']}/note",
        data={"note": "for " + XSS, "tab": "buyer"},
        headers=h,
    )
    assert resp.status == 200
    html = await resp.text()
    assert html.startswith(f'<tr id="key-{unredeemed["key_id"]}">') and "<script>alert" not in html
    buyer = await api.call("GET", f"/api/vendor/keys/buyer/{unredeemed['key_id']}")
    assert buyer["note"] == "for " + XSS
    # Active tab (set_active_note): an unredeemed key there is the API's 404.
    resp = await c.post(
        f"/dashboard/keys/{unredeemed['key_id']}/note",
        data={"note": "x", "tab": "active"},
        headers=h,
    )
    assert resp.status == 404 and "Key not found" in await resp.text()
    resp = await c.post(
        f"/dashboard/keys/{redeemed['key_id']}/note",
        data={"note": "vip", "tab": "active"},
        headers=h,
    )
    assert resp.status == 200 and "vip" in await resp.text()
    assert (await api.active(redeemed["key_id"]))["note"] == "vip"
    # Empty removes the note; too long is the API's 422.
    resp = await c.post(
        f"/dashboard/keys/{redeemed['key_id']}/note", data={"note": " ", "tab": "active"}, headers=h
    )
    assert resp.status == 200 and (await api.active(redeemed["key_id"])).get("note") is None
    resp = await c.post(
        f"/dashboard/keys/{redeemed['key_id']}/note",
        data={"note": "n" * 5000, "tab": "active"},
        headers=h,
    )
    assert resp.status == 422 and resp.headers["HX-Retarget"] == "#flash"
    assert (await api.active(redeemed["key_id"])).get("note") is None


async def test_bulk_actions_on_a_selection(api: Api) -> None:
    c = api.client
    token = await sign_in(c, api.api_key)
    h = {"X-CSRF-Token": token, "HX-Request": "true"}
    pid = (await api.project())["project_id"]
    made = await api.keys(pid, amount=5)
    ids = [k["key_id"] for k in made]
    for key_id in ids[:3]:
        await api.redeem(key_id)
    await c.post(f"/dashboard/keys/{ids[0]}/set_hwid", data={"hwid": "HW-A"}, headers=h)
    other = await api.as_other()
    opid = (await other.project())["project_id"]
    [foreign] = await other.keys(opid, amount=1)
    await other.redeem(foreign["key_id"])
    bulk = f"/dashboard/projects/{pid}/keys/bulk"

    async def banned() -> set[str]:
        return {k for k in ids[:3] if (await api.active(k))["banned"]}

    # CSRF: without the token (form or header), 403 and nothing banned.
    for headers in ({"HX-Request": "true"}, {"X-CSRF-Token": "wrong"}):
        resp = await c.post(
            f"{bulk}?tab=active",
            data=[("action", "ban"), ("key_id", ids[0]), ("key_id", ids[1])],
            headers=headers,
        )
        assert resp.status == 403
    assert await banned() == set()
    # Ban two keys (and another vendor's key, and a bogus id: their failures, per key, in the
    # API's words; the other vendor's key untouched).
    resp = await c.post(
        f"{bulk}?tab=active&status=all",
        data=[
            ("action", "ban"),
            ("key_id", ids[0]),
            ("key_id", ids[1]),
            ("key_id", foreign["key_id"]),
            ("key_id", "not a key"),
        ],
        headers=h,
    )
    assert resp.status == 200
    html = await resp.text()
    assert "Banned: 2 keys; 2 failed." in html
    assert f"<code>{foreign['key_id']}</code>: Key not found" in html
    assert "<code>not a key</code>: Key not found" in html
    assert html.count('<strong class="bad">banned</strong>') == 2  # the table, again
    assert await banned() == {ids[0], ids[1]}
    assert not (await other.store.licences.get_active(other.vendor_id, foreign["key_id"])).banned
    # Unban one, reset the HWID of one.
    resp = await c.post(
        f"{bulk}?tab=active", data=[("action", "unban"), ("key_id", ids[1])], headers=h
    )
    assert resp.status == 200 and await banned() == {ids[0]}
    resp = await c.post(
        f"{bulk}?tab=active", data=[("action", "reset_hwid"), ("key_id", ids[0])], headers=h
    )
    assert resp.status == 200 and (await api.active(ids[0]))["hwid"] is None
    # Delete on the buyer tab: unredeemed keys go; a redeemed one is the API's 400 detail.
    resp = await c.post(
        f"{bulk}?tab=buyer",
        data=[("action", "delete"), ("key_id", ids[3]), ("key_id", ids[2])],
        headers=h,
    )
    html = await resp.text()
    assert resp.status == 200 and "Deleted: 1 key; 1 failed." in html
    assert f"<code>{ids[2]}</code>: Cannot delete a redeemed key" in html
    left = {k["key_id"] for k in await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")}
    assert left == set(ids) - {ids[3]}
    # An action the tab does not offer, or nothing selected: 422, nothing done.
    for tab, data in (
        ("buyer", [("action", "ban"), ("key_id", ids[4])]),
        ("active", [("action", "delete"), ("key_id", ids[1])]),
        ("active", [("action", "ban")]),
    ):
        resp = await c.post(f"{bulk}?tab={tab}", data=data, headers=h)
        assert resp.status == 422, (tab, data)
    assert await banned() == {ids[0]}


async def test_bulk_is_bounded_to_100_keys(api: Api) -> None:
    c = api.client
    token = await sign_in(c, api.api_key)
    pid = (await api.project())["project_id"]
    [key] = await api.keys(pid, amount=1)
    await api.redeem(key["key_id"])
    data = [("action", "ban"), ("key_id", key["key_id"])]
    data += [("key_id", f"{i:032d}") for i in range(100)]
    resp = await c.post(
        f"/dashboard/projects/{pid}/keys/bulk?tab=active",
        data=data,
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert resp.status == 422
    assert "at most 100 keys per request" in await resp.text()
    assert not (await api.active(key["key_id"]))["banned"]
    # 100 (duplicates counted once): done, one by one.
    resp = await c.post(
        f"/dashboard/projects/{pid}/keys/bulk?tab=active",
        data=[*data[:100], ("key_id", key["key_id"])],
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert resp.status == 200 and "Banned: 1 key; 98 failed." in await resp.text()
    assert (await api.active(key["key_id"]))["banned"]


async def test_send_a_test_event(api: Api) -> None:
    c = api.client
    token = await sign_in(c, api.api_key)
    h = {"X-CSRF-Token": token, "HX-Request": "true"}
    s = store_of(c)
    bare = (await api.project(name="No hook"))["project_id"]
    quiet = (await api.project(webhook_url="https://hooks.example.com/q", notify_enabled=False))[
        "project_id"
    ]
    pid = (await api.project(webhook_url="https://hooks.example.com/leaf7"))["project_id"]
    page = await (await c.get(f"/dashboard/projects/{pid}")).text()
    assert "Send test event" in page
    resp = await c.post(f"/dashboard/projects/{pid}/webhook_test")
    assert resp.status == 403
    resp = await c.post(f"/dashboard/projects/{pid}/webhook_test", data={"csrf": "wrong"})
    assert resp.status == 403
    assert await s.core.call("XLEN", keyspace.notify(pid)) == 0
    for project_id in (bare, quiet):
        resp = await c.post(f"/dashboard/projects/{project_id}/webhook_test", headers=h)
        assert resp.status == 409
        assert "no webhook URL with notifications on" in await resp.text()
        assert await s.core.call("XLEN", keyspace.notify(project_id)) == 0
    resp = await c.post(f"/dashboard/projects/{pid}/webhook_test", headers=h)
    assert resp.status == 200 and "Test event queued" in await resp.text()
    [(_entry, fields)] = await s.core.call("XRANGE", keyspace.notify(pid), "-", "+")
    f = pairs(fields)
    assert f["kind"] == "TEST" and f["type"] == "Success"
    n = Notification(pid, "1-0", 1, f)
    assert embed(n)["embeds"][0]["title"] == "Test notification"
    # In the project's event feed too; another vendor's project: 404.
    events, _ = await s.analytics.recent_events(api.vendor_id, 10)
    assert [
        e.project_id for e in events if e.message == "Test notification from the dashboard"
    ] == [pid]
    other = await api.as_other()
    theirs = (await other.project(webhook_url="https://hooks.example.com/o"))["project_id"]
    resp = await c.post(f"/dashboard/projects/{theirs}/webhook_test", headers=h)
    assert resp.status == 404
    assert await s.core.call("XLEN", keyspace.notify(theirs)) == 0


async def test_overview_counts_banned_keys_and_settings_show_discord(
    api: Api, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = api.client
    await sign_in(c, api.api_key)
    pid = (await api.project())["project_id"]
    made = await api.keys(pid, amount=4)
    for k in made:
        await api.redeem(k["key_id"])
    await api.call("POST", f"/api/vendor/keys/active/{made[0]['key_id']}/ban")
    await api.call("POST", f"/api/vendor/keys/active/{made[1]['key_id']}/ban")
    await api.call("POST", f"/api/vendor/keys/active/{made[2]['key_id']}/ban", {"duration": 60})
    await api.call("POST", f"/api/vendor/keys/active/{made[1]['key_id']}/unban")
    html = await (await c.get("/dashboard/")).text()
    assert 'hx-get="/dashboard/overview/banned"' in html  # loaded after the page
    html = await (await c.get("/dashboard/overview/banned")).text()
    assert '<span class="num" id="stat-banned">2</span>' in html
    assert "banned keys (1 for good, 1 timed)" in html
    clock.advance(61)  # the timed ban ends by itself
    html = await (await c.get("/dashboard/overview/banned")).text()
    assert '<span class="num" id="stat-banned">1</span>' in html
    assert "banned keys (1 for good, 0 timed)" in html
    # Past the scan's budget: the count so far, marked as such.
    monkeypatch.setattr(overview, "SCAN_BUDGET", 2)
    html = await (await c.get("/dashboard/overview/banned")).text()
    assert "+</span>" in html and "in the first 2 active keys" in html
    monkeypatch.undo()
    html = await (await c.get("/dashboard/settings")).text()
    assert "Discord: linked to <code>1234567890</code>" in html
    unlinked = await api.as_other(discord_id=None)
    await sign_in(c, unlinked.api_key)
    html = await (await c.get("/dashboard/settings")).text()
    assert 'Discord: <strong class="bad">not linked</strong>' in html
