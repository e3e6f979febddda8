"""Project routes."""

from aiohttp import web

from handlers import schemas
from handlers.appkeys import SETTINGS
from handlers.common import (
    SUCCESS,
    json_response,
    project_id_param,
    read_json,
    store,
    vendor_operations,
)
from handlers.errors import ApiError
from handlers.luagen import used_macros
from handlers.targets import url_refusal
from store.models import Project

route = vendor_operations("projects")


def _check_webhook(
    request: web.Request, body: schemas.ProjectCreate | schemas.ProjectUpdate
) -> None:
    """A webhook may not target this server or its private network (handlers/targets.py)."""
    if isinstance(body.webhook_url, str):
        refusal = url_refusal(body.webhook_url, request.app[SETTINGS].webhook_allow)
        if refusal is not None:
            raise ApiError(422, f"webhook_url: {refusal}")


@route("Create a project", {201: Project}, body=schemas.ProjectCreate)
async def create(request: web.Request, vendor_id: str) -> web.Response:
    body = await read_json(request, schemas.project_create)
    _check_webhook(request, body)
    project = await store(request).projects.create(vendor_id, schemas.project_fields(body))
    return json_response(project, status=201)


@route("The caller's projects", {200: list[Project]})
async def list_(request: web.Request, vendor_id: str) -> web.Response:
    return json_response(await store(request).projects.list(vendor_id))


@route("One project", {200: Project})
async def get(request: web.Request, vendor_id: str) -> web.Response:
    project_id = project_id_param(request.match_info["project_id"])
    return json_response(await store(request).projects.get(vendor_id, project_id))


@route("Update some of a project's settings", {200: Project}, body=schemas.ProjectUpdate)
async def update(request: web.Request, vendor_id: str) -> web.Response:
    project_id = project_id_param(request.match_info["project_id"])
    body = await read_json(request, schemas.project_update)
    _check_webhook(request, body)
    changes = schemas.project_fields(body)
    return json_response(await store(request).projects.update(vendor_id, project_id, changes))


@route("Delete a project and every key of it", {200: schemas.Status})
async def delete(request: web.Request, vendor_id: str) -> web.Response:
    project_id = project_id_param(request.match_info["project_id"])
    await store(request).projects.delete(vendor_id, project_id)
    return json_response(SUCCESS)


@route(
    "Upload the hosted script (version optional: default bumps the patch number)",
    {200: Project},
    body=lambda settings: schemas.source_update_type(settings.max_source),
)
async def set_source(request: web.Request, vendor_id: str) -> web.Response:
    project_id = project_id_param(request.match_info["project_id"])
    limit = request.app[SETTINGS].max_source
    body = await read_json(request, schemas.source_update_decoder(limit), limit=limit)
    project = await store(request).projects.set_source(
        vendor_id, project_id, body.source, body.version, used_macros(body.source)
    )
    return json_response(project)
