"""Path and query parameters every area shares: the ``project_id`` (path, query filter), a
key id, a required query parameter."""

from aiohttp import web

from handlers import ids
from handlers.errors import ApiError
from handlers.openapi import Param
from store import KeyNotFound, ProjectNotFound


def project_id_param(value: str | None) -> str:
    """A project_id from a path or query. Anything that is not a UUID cannot name a project."""
    if value is None or not ids.PROJECT_ID.valid(value):
        raise ProjectNotFound
    return value


# The optional ``project_id`` query parameter of the routes that list or count across projects.
PROJECT_QUERY = Param(
    "project_id",
    ids.PROJECT_ID.json_schema(),
    "Only this project (a UUID; any other value: 404)",
    errors=(404,),
)


def project_query(request: web.Request) -> str | None:
    """The optional ``project_id`` query parameter (PROJECT_QUERY): None when absent."""
    value = request.query.get("project_id")
    return None if value is None else project_id_param(value)


def required_query(request: web.Request, name: str) -> str:
    """A query parameter the route cannot do without: 422 when it is absent."""
    value = request.query.get(name)
    if value is None:
        raise ApiError(422, f"{name}: query parameter is required")
    return value


def key_id_param(request: web.Request) -> str:
    value = request.match_info["key_id"]
    if not ids.KEY_ID.valid(value):
        raise KeyNotFound
    return value
