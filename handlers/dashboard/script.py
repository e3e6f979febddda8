"""A project's hosted script: the upload, the loader snippet, the pinned loader."""

from typing import Any

from aiohttp import web

from handlers import obfuscation, schemas
from handlers.appkeys import SETTINGS, store
from handlers.clientip import base_url
from handlers.dashboard.base import Ctx, decode, field, page, render
from handlers.dashboard.shared import url_project
from handlers.errors import ApiError
from handlers.loader import loader_response
from handlers.luagen import MACROS, used_macros
from store import errors
from store.models import Project


@page
async def script_page(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    project = await url_project(request, ctx)
    return await _script(request, ctx, project)


@page
async def pinned_loader(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """GET .../loader.lua: the pinned loader as a file (signed verdicts on: else 409)."""
    project = await url_project(request, ctx)
    state = await store(request).projects.signing(project.project_id)
    if state is None:
        raise errors.ProjectNotFound
    if not state.enabled or state.current is None:
        raise ApiError(409, "signed_verdicts is off: a pinned loader needs signed verdicts")
    disposition = f'attachment; filename="leaf7-loader-{project.project_id}.lua"'
    return loader_response(
        request, project.project_id, state, **{"Content-Disposition": disposition}
    )


async def _script(
    request: web.Request, ctx: Ctx, project: Project, saved: bool = False
) -> web.StreamResponse:
    # The vendor's own upload (what loaders receive is its obfuscated revision when on).
    source = await store(request).projects.original_source(ctx.vendor_id, project.project_id)
    loader_url = f"{base_url(request)}/api/loader/{project.project_id}/loader.lua"
    snippet = f'script_key = "YOUR_KEY"\nloadstring(game:HttpGet("{loader_url}"))()'
    return render(
        request,
        "script.html",
        {
            "project": project,
            "source": source,
            "macros": [m for m in used_macros(source).split(",") if m],
            "all_macros": MACROS,
            "snippet": snippet,
            "saved": saved,
        },
        ctx=ctx,
    )


@page
async def script_upload(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    project = await url_project(request, ctx)
    f = ctx.form
    upload = f.get("file")
    source = field(f, "source")
    if isinstance(upload, web.FileField):
        source = upload.file.read().decode("utf-8", errors="replace")
    limit = request.app[SETTINGS].max_source
    data: dict[str, Any] = {"source": source}
    if field(f, "version").strip():
        data["version"] = field(f, "version").strip()
    body = decode(schemas.source_update_decoder(limit), data)
    updated, _ = await obfuscation.upload(
        request,
        ctx.vendor_id,
        project.project_id,
        body.source,
        body.version,
        used_macros(body.source),
    )
    return await _script(request, ctx, updated, saved=True)
