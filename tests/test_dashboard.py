"""The vendor dashboard over HTTP: sign-in and sessions, CSRF, headers, escaping, ownership
(another vendor's ids are 404), the one code path with the API. The browser tests are in
tests/test_dashboard_browser.py."""

import dataclasses
import re
from typing import Any

from aiohttp.test_utils import TestClient

from handlers.dashboard.base import CSP, IDLE, LIFETIME
from service.app import create_app
from service.config import Settings
from tests.support.api import Api, Clock, store_of

XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, html[:500]
    return found.group(1)


async def sign_in(client: TestClient[Any, Any], api_key: str, status: int = 303) -> str:
    """Signs in through the form; returns the session's CSRF token ('' when refused)."""
    form = await client.get("/dashboard/signin")
    assert form.status == 200
    token = csrf_of(await form.text())
    resp = await client.post(
        "/dashboard/signin",
        data={"csrf": token, "api_key": api_key},
        allow_redirects=False,
    )
    assert resp.status == status, (resp.status, await resp.text())
    if status != 303:
        return ""
    page = await client.get("/dashboard/settings")
    assert page.status == 200
    return csrf_of(await page.text())


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
