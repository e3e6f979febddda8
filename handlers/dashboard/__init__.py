"""The vendor dashboard: server-rendered pages (Jinja2, autoescaped) with htmx for partial
updates, served by the same aiohttp app under ``/dashboard/``. Its JavaScript and CSS are
files of this package (static/, with their licences in static/LICENSES/): no CDN, no build.
"""

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from handlers.dashboard import (
    blacklist,
    events,
    freekeys,
    insights,
    keys,
    leaks,
    oauth,
    overview,
    projects,
    script,
    settings,
    signin,
)
from handlers.dashboard.base import security_headers

HERE = Path(__file__).parent


def setup(app: web.Application) -> None:
    """Templates (autoescape on for every template) and the security headers."""
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("handlers.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app.on_response_prepare.append(security_headers)


async def favicon(request: web.Request) -> web.StreamResponse:
    """GET /favicon.ico: the leaf (browsers ask for it on every site; pages link the SVG)."""
    return web.FileResponse(HERE / "static" / "favicon.ico", headers=ICON_HEADERS)


ICON_HEADERS = {"Content-Type": "image/x-icon", "Cache-Control": "public, max-age=86400"}


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_P = "/dashboard/projects/{project_id}"

# Each path with its GET handler and its POST handler (None: not that method).
_ROUTES: tuple[tuple[str, _Handler | None, _Handler | None], ...] = (
    ("/", signin.root, None),
    ("/favicon.ico", favicon, None),
    ("/dashboard", signin.root, None),
    ("/dashboard/", overview.overview, None),
    ("/dashboard/overview/banned", overview.overview_banned, None),
    ("/dashboard/overview/insights", insights.overview_insights, None),
    ("/dashboard/signin", signin.signin_form, signin.signin),
    ("/dashboard/signout", None, signin.signout),
    ("/dashboard/projects", projects.projects, projects.project_create),
    (_P, projects.project_page, projects.project_update),
    (_P + "/delete", None, projects.project_delete),
    (_P + "/webhook_test", None, projects.project_webhook_test),
    (_P + "/keys", keys.keys, keys.keys_generate),
    (_P + "/keys/bulk", None, keys.keys_bulk),
    (_P + "/keys/batch.{fmt:txt|csv}", keys.keys_batch, None),
    (_P + "/script", script.script_page, script.script_upload),
    (_P + "/loader.lua", script.pinned_loader, None),
    (
        "/dashboard/keys/{key_id}/{action:ban|unban|reset_hwid|set_hwid|delete|note}",
        None,
        keys.key_action,
    ),
    ("/dashboard/users", keys.users, None),
    ("/dashboard/blacklist", blacklist.blacklist, blacklist.blacklist_add),
    ("/dashboard/blacklist/{entry_id}/delete", None, blacklist.blacklist_delete),
    ("/dashboard/leaks", leaks.leaks_page, leaks.leaks_identify),
    ("/dashboard/leaks/ban", None, leaks.leaks_ban),
    ("/dashboard/events", events.events, None),
    ("/dashboard/events/feed", events.events_feed, None),
    ("/dashboard/settings", settings.settings, None),
    ("/dashboard/settings/rotate", None, settings.rotate),
    ("/dashboard/settings/signout_all", None, settings.signout_all),
)


def add_routes(router: web.UrlDispatcher) -> None:
    for path, get, post in _ROUTES:
        if get is not None:
            router.add_get(path, get)
        if post is not None:
            router.add_post(path, post)
    router.add_static("/dashboard/static/", HERE / "static", name="dashboard_static")
    oauth.add_routes(router)  # Sign in with Discord
    freekeys.add_routes(router)  # .../free_keys: free keys and their funnel
