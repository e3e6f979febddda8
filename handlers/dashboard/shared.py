"""What several of the dashboard's page modules use: the table sizes, the project a URL names,
the vendor's project names, the redirects that set or clear cookies."""

from aiohttp import web

from handlers.appkeys import store
from handlers.dashboard.base import COOKIE, LIFETIME, SIGNIN_COOKIE, Ctx, clear_cookie, set_cookie
from handlers.params import project_id_param
from store.models import Project

PAGE_SIZE = 50  # rows of a key table page
# Keys a search by HWID or note, a status filter or the overview's banned count reads per
# request at most (then it offers to continue from where it stopped): docs/dashboard.md.
SCAN_BUDGET = 5_000


def see_other(location: str) -> web.Response:
    """A 303 answer that cookies can be set on (and returned, not raised)."""
    return web.Response(status=303, headers={"Location": location})


def signed_in(request: web.Request, session_id: str) -> web.Response:
    """To the overview with the new session's cookie (the sign-in form's token cleared)."""
    response = see_other("/dashboard/")
    set_cookie(request, response, COOKIE, session_id, LIFETIME)
    clear_cookie(request, response, SIGNIN_COOKIE)
    return response


def signed_out(request: web.Request) -> web.Response:
    """To the sign-in page, the session's cookie cleared (its session ended by the caller)."""
    response = see_other("/dashboard/signin")
    clear_cookie(request, response, COOKIE)
    return response


async def url_project(request: web.Request, ctx: Ctx) -> Project:
    """The signed-in vendor's project of the URL's ``{project_id}``."""
    project_id = project_id_param(request.match_info["project_id"])
    return await store(request).projects.get(ctx.vendor_id, project_id)


async def project_names(request: web.Request, ctx: Ctx) -> dict[str, str]:
    return {p.project_id: p.name for p in await store(request).projects.list(ctx.vendor_id)}
