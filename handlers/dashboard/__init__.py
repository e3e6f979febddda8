"""The vendor dashboard: server-rendered pages (Jinja2, autoescaped) with htmx for partial
updates, served by the same aiohttp app under ``/dashboard/``. Its JavaScript and CSS are
files of this package (static/, with their licences in static/LICENSES/): no CDN, no build.
"""

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


def add_routes(router: web.UrlDispatcher) -> None:
    r = router
    r.add_get("/", signin.root)
    r.add_get("/favicon.ico", favicon)
    r.add_get("/dashboard", signin.root)
    r.add_static("/dashboard/static/", HERE / "static", name="dashboard_static")
    r.add_get("/dashboard/", overview.overview)
    r.add_get("/dashboard/overview/banned", overview.overview_banned)
    r.add_get("/dashboard/overview/insights", insights.overview_insights)
    r.add_get("/dashboard/signin", signin.signin_form)
    r.add_post("/dashboard/signin", signin.signin)
    r.add_post("/dashboard/signout", signin.signout)
    oauth.add_routes(r)  # Sign in with Discord
    r.add_get("/dashboard/projects", projects.projects)
    r.add_post("/dashboard/projects", projects.project_create)
    p = "/dashboard/projects/{project_id}"
    r.add_get(p, projects.project_page)
    r.add_post(p, projects.project_update)
    r.add_post(p + "/delete", projects.project_delete)
    r.add_post(p + "/webhook_test", projects.project_webhook_test)
    r.add_get(p + "/keys", keys.keys)
    r.add_post(p + "/keys", keys.keys_generate)
    r.add_post(p + "/keys/bulk", keys.keys_bulk)
    r.add_get(p + "/keys/batch.{fmt:txt|csv}", keys.keys_batch)
    r.add_get(p + "/script", script.script_page)
    r.add_get(p + "/loader.lua", script.pinned_loader)
    r.add_post(p + "/script", script.script_upload)
    freekeys.add_routes(r)  # .../free_keys: free keys and their funnel
    r.add_post(
        "/dashboard/keys/{key_id}/{action:ban|unban|reset_hwid|set_hwid|delete|note}",
        keys.key_action,
    )
    r.add_get("/dashboard/users", keys.users)
    r.add_get("/dashboard/blacklist", blacklist.blacklist)
    r.add_post("/dashboard/blacklist", blacklist.blacklist_add)
    r.add_post("/dashboard/blacklist/{entry_id}/delete", blacklist.blacklist_delete)
    r.add_get("/dashboard/leaks", leaks.leaks_page)
    r.add_post("/dashboard/leaks", leaks.leaks_identify)
    r.add_post("/dashboard/leaks/ban", leaks.leaks_ban)
    r.add_get("/dashboard/events", events.events)
    r.add_get("/dashboard/events/feed", events.events_feed)
    r.add_get("/dashboard/settings", settings.settings)
    r.add_post("/dashboard/settings/rotate", settings.rotate)
    r.add_post("/dashboard/settings/signout_all", settings.signout_all)
