"""The dashboard's free-keys page of a project (docs/free-keys.md): the settings form, the URLs
to paste at each provider, and the get-key funnel. The form is validated by the API's own
body decoder and written by the API's own ``save_settings``; the funnel is the API's
``funnel_days``: no rule of the API is repeated here."""

import calendar
import time
from typing import Any

import msgspec
from aiohttp import web

from handlers import schemas
from handlers.dashboard.base import Ctx, checked, decode, field, is_htmx, page, render
from handlers.dashboard.shared import url_project
from handlers.freekeys.api import funnel_days, parse_days, read_settings, save_settings
from handlers.freekeys.page import REFUSALS
from handlers.freekeys.providers import PROVIDERS
from store.models import Project

SLOTS = 5  # checkpoints a project may have (FreeKeysSettings.checkpoints)
RANGES = (7, 30, 90)  # the funnel's day ranges offered


def _int(value: str) -> int | str:
    """A number field: an int when it is one, else the text (the decoder then says why)."""
    value = value.strip()
    return int(value) if value.isdigit() else value


def _settings_form(ctx: Ctx) -> dict[str, Any]:
    """The form as the API's PUT body: a slot without a provider is no checkpoint; a secret
    field left empty is left out (the stored secret is kept, as with the API)."""
    f = ctx.form
    checkpoints: list[dict[str, Any]] = []
    for k in range(SLOTS):
        name = field(f, f"cp{k}_provider")
        provider = PROVIDERS.get(name)
        if provider is None:
            if name:
                checkpoints.append({"provider": name})  # the decoder names what is wrong
            continue
        c: dict[str, Any] = {"provider": name, "link": field(f, f"cp{k}_link").strip()}
        if provider.needs_link_id:
            c["link_id"] = field(f, f"cp{k}_link_id").strip()
        if provider.needs_secret and field(f, f"cp{k}_token").strip():
            c["token"] = field(f, f"cp{k}_token").strip()
        checkpoints.append(c)
    data: dict[str, Any] = {
        "enabled": checked(f, "enabled"),
        "key_hours": _int(field(f, "key_hours", "24")),
        "keys_per_day": _int(field(f, "keys_per_day", "1")),
        "min_seconds": _int(field(f, "min_seconds", "10")),
        "allow_extend": checked(f, "allow_extend"),
        "max_extends": _int(field(f, "max_extends", "1")),
        "checkpoints": checkpoints,
        "turnstile": None,
    }
    if checked(f, "turnstile"):
        turnstile: dict[str, Any] = {"site_key": field(f, "turnstile_site_key").strip()}
        if field(f, "turnstile_secret").strip():
            turnstile["secret"] = field(f, "turnstile_secret").strip()
        data["turnstile"] = turnstile
    return data


def _slots(settings: schemas.FreeKeysOut) -> list[schemas.FreeCheckpointOut | None]:
    """The form's checkpoint slots: the saved checkpoints, then empty ones up to SLOTS."""
    saved: list[schemas.FreeCheckpointOut | None] = list(settings.checkpoints)
    return saved + [None] * (SLOTS - len(saved))


def _day_start(day: str) -> int:
    return calendar.timegm(time.strptime(day, "%Y-%m-%d"))


def _funnel(days: list[schemas.FreeKeysDay]) -> dict[str, Any]:
    """The chart's series (JSON for static/freekeys.js), the table's rows and the refusals
    of the range by reason."""
    n = max((len(d.started) for d in days), default=0)
    series: list[dict[str, Any]] = [{"label": "Page views", "values": [d.page_views for d in days]}]
    for k in range(n):
        series.append(
            {"label": f"Checkpoint {k + 1} started", "values": [d.started[k] for d in days]}
        )
        series.append(
            {"label": f"Checkpoint {k + 1} completed", "values": [d.completed[k] for d in days]}
        )
    series.append({"label": "Keys issued", "values": [d.keys_issued for d in days]})
    series.append({"label": "Refusals", "values": [sum(d.refusals.values()) for d in days]})
    refusals: dict[str, int] = {}
    for d in days:
        for reason, count in d.refusals.items():
            refusals[reason] = refusals.get(reason, 0) + count
    return {
        "chart_json": msgspec.json.encode(
            {"x": [_day_start(d.day) for d in days], "series": series}
        ).decode(),
        "days": days,
        "steps": n,
        "refusals": [
            (reason, count, REFUSALS.get(reason, (0, ""))[1])
            for reason, count in sorted(refusals.items(), key=lambda r: (-r[1], r[0]))
        ],
        "totals": {
            "views": sum(d.page_views for d in days),
            "issued": sum(d.keys_issued for d in days),
            "extended": sum(d.keys_extended for d in days),
        },
    }


def _form_context(
    project: Project, settings: schemas.FreeKeysOut, saved: bool = False
) -> dict[str, Any]:
    def having(flag: str) -> tuple[str, str]:
        # (the providers whose checkpoints have this field, their titles): static/freekeys.js
        # shows the field for those only.
        names = [n for n, p in PROVIDERS.items() if getattr(p, flag)]
        return " ".join(names), ", ".join(PROVIDERS[n].title for n in names)

    return {
        "project": project,
        "fk": settings,
        "slots": _slots(settings),
        "shown": max(1, len(settings.checkpoints)),  # the slots shown open; the rest folded
        "providers": PROVIDERS,
        "link_id_for": having("needs_link_id"),
        "token_for": having("needs_secret"),
        "saved": saved,
    }


@page
async def free_keys_page(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """GET /dashboard/projects/{project_id}/free_keys?days=: the settings and the funnel."""
    project = await url_project(request, ctx)
    days = parse_days(request.query.get("days", "7"))
    settings = await read_settings(request, ctx.vendor_id, project.project_id)
    funnel = await funnel_days(request, ctx.vendor_id, project.project_id, days)
    context = _form_context(project, settings, request.query.get("saved") == "1")
    context.update(_funnel(funnel), span=days, spans=RANGES)
    return render(request, "free_keys.html", context, ctx=ctx)


@page
async def free_keys_save(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """POST /dashboard/projects/{project_id}/free_keys: the whole settings, as the API's PUT
    (the same decoder, the same store call, the same 409 for a missing secret)."""
    project = await url_project(request, ctx)
    body = decode(schemas.free_keys_settings, _settings_form(ctx))
    settings = await save_settings(request, ctx.vendor_id, project.project_id, body)
    if is_htmx(request):
        return render(
            request, "_free_keys_form.html", _form_context(project, settings, True), ctx=ctx
        )
    raise web.HTTPSeeOther(f"/dashboard/projects/{project.project_id}/free_keys?saved=1")


def add_routes(router: web.UrlDispatcher) -> None:
    p = "/dashboard/projects/{project_id}/free_keys"
    router.add_get(p, free_keys_page)
    router.add_post(p, free_keys_save)
