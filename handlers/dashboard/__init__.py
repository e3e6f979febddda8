"""The vendor dashboard: server-rendered pages (Jinja2, autoescaped) with htmx for partial
updates, served by the same aiohttp app under ``/dashboard/``. Its JavaScript and CSS are
files of this package (static/, with their licences in static/LICENSES/): no CDN, no build.
"""

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from handlers.dashboard import views
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


def add_routes(router: web.UrlDispatcher) -> None:
    r = router
    r.add_get("/", views.root)
    r.add_get("/dashboard", views.root)
    r.add_static("/dashboard/static/", HERE / "static", name="dashboard_static")
    r.add_get("/dashboard/", views.overview)
    r.add_get("/dashboard/overview/banned", views.overview_banned)
    r.add_get("/dashboard/signin", views.signin_form)
    r.add_post("/dashboard/signin", views.signin)
    r.add_post("/dashboard/signout", views.signout)
    r.add_get("/dashboard/projects", views.projects)
    r.add_post("/dashboard/projects", views.project_create)
    p = "/dashboard/projects/{project_id}"
    r.add_get(p, views.project_page)
    r.add_post(p, views.project_update)
    r.add_post(p + "/delete", views.project_delete)
    r.add_post(p + "/webhook_test", views.project_webhook_test)
    r.add_get(p + "/keys", views.keys)
    r.add_post(p + "/keys", views.keys_generate)
    r.add_post(p + "/keys/bulk", views.keys_bulk)
    r.add_get(p + "/keys/batch.{fmt:txt|csv}", views.keys_batch)
    r.add_get(p + "/script", views.script_page)
    r.add_post(p + "/script", views.script_upload)
    r.add_post(
        "/dashboard/keys/{key_id}/{action:ban|unban|reset_hwid|set_hwid|delete|note}",
        views.key_action,
    )
    r.add_get("/dashboard/users", views.users)
    r.add_get("/dashboard/blacklist", views.blacklist)
    r.add_post("/dashboard/blacklist", views.blacklist_add)
    r.add_post("/dashboard/blacklist/{entry_id}/delete", views.blacklist_delete)
    r.add_get("/dashboard/events", views.events)
    r.add_get("/dashboard/events/feed", views.events_feed)
    r.add_get("/dashboard/settings", views.settings)
    r.add_post("/dashboard/settings/rotate", views.rotate)
    r.add_post("/dashboard/settings/signout_all", views.signout_all)
