"""Leaks: the watermark plan of an upload, and naming the key a leaked copy was served to.

The marks themselves are store/watermark.py's (docs/loader-security.md#leaks): keyed by the
server secret, so every instance that shares it marks and reads alike.
"""

import asyncio
import functools

import msgspec
from aiohttp import web

from handlers import schemas
from handlers.appkeys import store
from handlers.auth import vendor_operations
from handlers.body import json_response, read_body
from handlers.errors import ApiError
from store import KeyNotFound, ProjectNotFound, watermark
from store.models import Project

route = vendor_operations("leaks")

NOT_FOUND = "No watermark of yours found"
# The largest leak read (bytes): a whole script and then some.
MAX_LEAK = 4 * 1024 * 1024


@functools.lru_cache(maxsize=4)
def marks_keys(secret: bytes) -> watermark.Keys:
    return watermark.keys_from(secret)


def keys_of(request: web.Request) -> watermark.Keys:
    return marks_keys(store(request).vendors.secret)


async def plan(request: web.Request, source: str) -> str:
    """The watermark plan of ``source`` (once per revision; a thread, so a big upload does
    not hold up the event loop for long)."""
    return await asyncio.to_thread(watermark.plan, source, keys_of(request))


async def set_source(
    request: web.Request,
    vendor_id: str,
    project_id: str,
    source: str,
    version: str | None,
    macros: str,
) -> Project:
    """Stores an upload, with its watermark plan when the project marks its copies (the
    store says so: the plan is made only then)."""
    s = store(request)
    project = await s.projects.set_source(vendor_id, project_id, source, version, macros)
    if project is None:
        marks = await plan(request, source)
        project = await s.projects.set_source(vendor_id, project_id, source, version, macros, marks)
        assert project is not None
    return project


async def update(
    request: web.Request, vendor_id: str, project_id: str, changes: dict[str, str]
) -> Project:
    """A project update; turning ``watermark`` on makes the plan of the current source and
    stores both in one step (``turn_on``) before the other changes."""
    if changes.get("watermark") == "1":
        changes = {k: v for k, v in changes.items() if k != "watermark"}
        project = await turn_on(request, vendor_id, project_id)
        if not changes:
            return project
    return await store(request).projects.update(vendor_id, project_id, changes)


async def turn_on(request: web.Request, vendor_id: str, project_id: str) -> Project:
    """Turns the project's watermark on, with the plan of its current source."""
    s = store(request)
    for _ in range(5):
        source = await s.projects.source(vendor_id, project_id)
        project = await s.projects.mark_copies(
            vendor_id, project_id, source, await plan(request, source)
        )
        if project is not None:
            return project
    raise ApiError(409, "The source keeps changing: try again")


@route(
    "Name the key a leaked copy of a script was served to",
    {200: schemas.LeakMatch},
    body=str,
    errors=(404,),
    description="The body is the leaked text: raw (any content type but JSON) or a JSON string, "
    "at most 4 MiB. Every key of the caller's projects that ever ran a script is compared with "
    "the watermark read from the text (projects with the `watermark` setting mark each copy "
    "they serve); 404 when no key matches well enough (the text was not marked, was served by "
    "another vendor, or too little of it is left). Each answer is a LEAK event on the project.",
)
async def identify(request: web.Request, vendor_id: str) -> web.Response:
    body = await read_body(request, MAX_LEAK)
    if request.content_type == "application/json":
        text = await _json_text(body)
    else:
        text = body.decode("utf-8", "replace")
    found = await find(request, vendor_id, text)
    if found is None:
        raise ApiError(404, NOT_FOUND)
    return json_response(found)


async def find(request: web.Request, vendor_id: str, text: str) -> schemas.LeakMatch | None:
    """The vendor's key whose watermark ``text`` carries (an event on its project), or None."""
    s = store(request)
    keys = keys_of(request)
    reading = await asyncio.to_thread(watermark.read, text, keys)
    if not any(any(ones) or any(zeros) for ones, zeros in reading.votes):
        return None
    candidates: list[tuple[int, object]] = []
    for project in await s.projects.list(vendor_id):
        pid = project.project_id
        for kid in set(await s.projects.key_ids(pid)):
            candidates.append((watermark.tag(keys, pid, kid), (pid, kid)))
    match = await asyncio.to_thread(watermark.identify, reading, candidates)
    if match is None:
        return None
    assert isinstance(match.ident, tuple)
    project_id, key_id = str(match.ident[0]), str(match.ident[1])
    try:
        key = await s.licences.get_active(vendor_id, key_id)
    except (KeyNotFound, ProjectNotFound):
        return None  # deleted since
    await s.projects.leak_event(
        vendor_id,
        project_id,
        key_id,
        f"Leaked copy traced to this key ({match.agree}/{match.observed} mark bits)",
    )
    return schemas.LeakMatch(
        key_id=key_id,
        project_id=project_id,
        discord_id=key.discord_id,
        hwid=key.hwid,
        confidence=round(match.confidence, 4),
        observed_bits=match.observed,
        false_match=match.false_match,
    )


async def _json_text(body: bytes) -> str:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"Malformed JSON: {exc}") from None
    if not isinstance(value, str):
        raise ApiError(422, "Expected a JSON string (the leaked text)")
    return value
