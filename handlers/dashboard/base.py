"""The dashboard's plumbing: sessions in cookies, CSRF, security headers, rendering and
errors. Pages (handlers/dashboard/*.py, one module per area) are plain functions of
(request, ``Ctx``)."""

import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
import msgspec
from aiohttp import web

from handlers.appkeys import SETTINGS, store
from handlers.clientip import is_https
from handlers.errors import STORE_ERRORS, ApiError
from store import errors
from store.sessions import Session

COOKIE = "l7_session"
SIGNIN_COOKIE = "l7_signin"  # the sign-in form's CSRF token (double submit: no session yet)
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
IDLE = 12 * 3600  # a session ends 12 h after its last use
LIFETIME = 7 * 86400  # and 7 days after sign-in, however used

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every dashboard answer (pages, fragments, errors, static files),
    the API explorer (/docs) and the icon."""
    if request.path.startswith(("/dashboard", "/docs")) or request.path in ("/", "/favicon.ico"):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        discord = request.app[SETTINGS].discord_client_id
        if discord and response.headers["Content-Security-Policy"] == CSP:
            # Settings' "Link your Discord account" form is answered by a redirect to
            # Discord: form-action covers redirects, so Discord's origin (only) is allowed.
            base = request.app[SETTINGS].discord_oauth_base
            origin = "/".join(base.split("/", 3)[:3])
            response.headers["Content-Security-Policy"] = CSP.replace(
                "form-action 'self'", f"form-action 'self' {origin}"
            )
        if "Cache-Control" not in response.headers and not request.path.startswith(
            ("/dashboard/static/", "/favicon.ico")
        ):
            response.headers["Cache-Control"] = "no-store"


def secure(request: web.Request) -> bool:
    """Cookies get ``Secure`` when the request came over HTTPS (leaf7's own TLS, or a trusted
    proxy's ``X-Forwarded-Proto: https``) or the public URL is https."""
    public = request.app[SETTINGS].public_url or ""
    return is_https(request) or public.startswith("https://")


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/dashboard",
        httponly=True,
        samesite="Lax",
        secure=secure(request),
    )


def clear_cookie(request: web.Request, response: web.StreamResponse, name: str) -> None:
    response.del_cookie(
        name, path="/dashboard", httponly=True, samesite="Lax", secure=secure(request)
    )


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Ctx:
    """A signed-in request: the vendor, the session, its id (from the cookie)."""

    vendor_id: str
    session: Session
    session_id: str
    form: Mapping[str, Any]


def is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    ctx: Ctx | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    context.setdefault("csrf", ctx.session.csrf if ctx else "")
    context.setdefault("signed_in", ctx is not None)
    context.setdefault("path", request.path)
    context.setdefault("discord_oauth", bool(request.app[SETTINGS].discord_client_id))
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    if headers:
        response.headers.update(headers)
    return response


def store_error(exc: Exception) -> tuple[int, str] | None:
    """(status, the API's own detail) of a store or API error; None for anything else."""
    if isinstance(exc, ApiError):
        return exc.status, exc.detail
    if isinstance(exc, errors.StoreError) and type(exc) in STORE_ERRORS:
        return STORE_ERRORS[type(exc)]
    return None


def error_answer(request: web.Request, ctx: Ctx | None, status: int, detail: str) -> web.Response:
    """An error shown in the page's flash area (htmx) or as a page of its own."""
    if is_htmx(request):
        return render(
            request,
            "_flash.html",
            {"error": detail},
            ctx=ctx,
            status=status,
            headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
        )
    return render(
        request, "error.html", {"status": status, "error": detail}, ctx=ctx, status=status
    )


Page = Callable[[web.Request, Ctx], Awaitable[web.StreamResponse]]


async def _session(request: web.Request) -> tuple[str, Session] | None:
    session_id = request.cookies.get(COOKIE, "")
    if not session_id:
        return None
    found = await store(request).sessions.resume(session_id, IDLE)
    return None if found is None else (session_id, found)


def page(fn: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A signed-in page or action: no session -> the sign-in page (htmx: a full redirect);
    a state-changing request without the session's CSRF token -> 403, nothing done; store
    errors -> the API's own detail with its status."""

    async def handler(request: web.Request) -> web.StreamResponse:
        found = await _session(request)
        if found is None:
            if is_htmx(request):
                return web.Response(status=401, headers={"HX-Redirect": "/dashboard/signin"})
            if request.method == "GET":
                raise web.HTTPSeeOther("/dashboard/signin")
            return web.Response(status=401, text="Not signed in")
        session_id, session = found
        form: Mapping[str, Any] = {}
        if request.method != "GET":
            form = await request.post()
            token = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
            if not isinstance(token, str) or not hmac.compare_digest(
                token.encode(), session.csrf.encode()
            ):
                return web.Response(status=403, text="CSRF token missing or wrong")
        ctx = Ctx(session.vendor_id, session, session_id, form)
        try:
            return await fn(request, ctx)
        except (ApiError, errors.StoreError) as exc:
            known = store_error(exc)
            if known is None or isinstance(exc, errors.StoreUnavailable):
                raise
            return error_answer(request, ctx, *known)

    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    handler.__module__ = fn.__module__
    return handler


def field(form: Mapping[str, Any], name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value if isinstance(value, str) else default


def checked(form: Mapping[str, Any], name: str) -> bool:
    return field(form, name) in ("on", "1", "true")


def decode(decoder: msgspec.json.Decoder[Any], data: dict[str, Any]) -> Any:
    """Validates form data with the API's own body decoder (the same rules and messages)."""
    try:
        return decoder.decode(msgspec.json.encode(data))
    except msgspec.ValidationError as exc:
        raise ApiError(422, str(exc)) from None
