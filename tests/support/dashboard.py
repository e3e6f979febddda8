"""The dashboard's sign-in form, as a browser without JavaScript uses it."""

import re
from typing import Any

from aiohttp.test_utils import TestClient

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
