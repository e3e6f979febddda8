"""Project routes."""

from aiohttp import web

from handlers import obfuscation, schemas
from handlers.appkeys import SETTINGS, SIGNER, store
from handlers.auth import vendor_operations
from handlers.body import SUCCESS, json_response, read_json
from handlers.errors import ApiError
from handlers.loader import loader_response
from handlers.luagen import used_macros
from handlers.openapi import Param
from handlers.params import project_id_param
from handlers.targets import url_refusal
from store import ProjectNotFound
from store.models import Project, Signing, iso

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
    return json_response(await obfuscation.update(request, vendor_id, project_id, changes))


@route("Delete a project and every key of it", {200: schemas.Status})
async def delete(request: web.Request, vendor_id: str) -> web.Response:
    project_id = project_id_param(request.match_info["project_id"])
    await store(request).projects.delete(vendor_id, project_id)
    return json_response(SUCCESS)


@route(
    "Upload the hosted script (version optional: default bumps the patch number)",
    {200: Project, 202: Project},
    body=lambda settings: schemas.source_update_type(settings.max_source),
    description="202 when the project obfuscates: the upload is obfuscated in the background "
    "and served once `obfuscation_status` is `done` (the previous revision until then; "
    "`failed` keeps it, with `obfuscation_error`).",
)
async def set_source(request: web.Request, vendor_id: str) -> web.Response:
    project_id = project_id_param(request.match_info["project_id"])
    limit = request.app[SETTINGS].max_source
    body = await read_json(request, schemas.source_update_decoder(limit), limit=limit)
    project, started = await obfuscation.upload(
        request, vendor_id, project_id, body.source, body.version, used_macros(body.source)
    )
    return json_response(project, status=202 if started else 200)


def _signing_info(request: web.Request, project_id: str, state: Signing) -> schemas.SigningInfo:
    signer = request.app[SIGNER]
    current, previous = state.current, state.previous
    assert current is not None  # made by signing_key when missing
    return schemas.SigningInfo(
        signed_verdicts=state.enabled,
        kid=current.kid,
        public_key=signer.public_key(project_id, current.kid).hex(),
        created_at=iso(current.created_at),
        previous=None
        if previous is None
        else schemas.SigningPrevious(
            kid=previous.kid,
            public_key=signer.public_key(project_id, previous.kid).hex(),
            created_at=iso(previous.created_at),
            accepted_until=iso(previous.accepted_until),
        ),
    )


@route(
    "The project's verdict-signing key (and the previous one in its grace period)",
    {200: schemas.SigningInfo},
)
async def signing(request: web.Request, vendor_id: str) -> web.Response:
    project_id = project_id_param(request.match_info["project_id"])
    state = await store(request).projects.signing_key(vendor_id, project_id)
    return json_response(_signing_info(request, project_id, state))


@route(
    "Start a new verdict-signing key; the previous one stays accepted for LEAF7_SIGNING_GRACE",
    {200: schemas.SigningInfo},
)
async def rotate_signing(request: web.Request, vendor_id: str) -> web.Response:
    project_id = project_id_param(request.match_info["project_id"])
    grace = request.app[SETTINGS].signing_grace
    state = await store(request).projects.signing_key(
        vendor_id, project_id, rotate=True, grace=grace
    )
    return json_response(_signing_info(request, project_id, state))


PINNED = Param(
    "pinned",
    {"type": "string", "enum": ["0", "1"]},
    "1: the loader to distribute as a file (signed verdicts only: 409 when they are off)",
    errors=(409, 422),
)


@route(
    "The project's loader.lua (pinned=1: as a file to distribute, with its keys inside)",
    {200: str},
    media_type="text/plain",
    query=(PINNED,),
)
async def loader(request: web.Request, vendor_id: str) -> web.Response:
    project_id = project_id_param(request.match_info["project_id"])
    pinned = request.query.get("pinned", "0")
    if pinned not in ("0", "1"):
        raise ApiError(422, "pinned: must be 0 or 1")
    s = store(request)
    await s.projects.get(vendor_id, project_id)  # the vendor's, or 404
    state = await s.projects.signing(project_id)
    if state is None:
        raise ProjectNotFound
    if pinned == "0":
        return loader_response(request, project_id, state)
    if not state.enabled or state.current is None:
        raise ApiError(409, "signed_verdicts is off: a pinned loader needs signed verdicts")
    disposition = f'attachment; filename="leaf7-loader-{project_id}.lua"'
    return loader_response(request, project_id, state, **{"Content-Disposition": disposition})
