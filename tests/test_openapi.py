"""GET /openapi.json (generated from the routes and structs) and GET /docs."""

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.api import Api

UUID = "00000000-0000-4000-8000-000000000000"


async def _doc(client: TestClient[Any, Any]) -> dict[str, Any]:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    doc: dict[str, Any] = await resp.json()
    return doc


async def test_every_route_is_documented(app_client: TestClient[Any, Any]) -> None:
    doc = await _doc(app_client)
    assert doc["openapi"] == "3.1.0"
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    routes = set()
    for route in app_client.app.router.routes():
        path = route.resource.canonical  # type: ignore[union-attr]
        if path == "/" or path.startswith("/dashboard"):
            continue  # the dashboard's HTML pages (docs/dashboard.md), not the API
        if path.endswith("/"):
            assert (route.method, path[:-1]) in documented or path == "/"
            continue
        routes.add((route.method, path))
    assert routes == documented
    assert ("POST", "/api/vendor/api_key/rotate") in documented
    assert ("GET", "/docs") in documented and ("GET", "/openapi.json") in documented


async def test_operations(app_client: TestClient[Any, Any]) -> None:
    doc = await _doc(app_client)
    schemas = doc["components"]["schemas"]
    bodies = {"/api/vendor/projects": "post", "/api/vendor/keys/active/{key_id}/hwid": "patch"}
    for path, method in bodies.items():
        assert "requestBody" in doc["paths"][path][method]
    assert "requestBody" not in doc["paths"]["/api/vendor/api_key/rotate"]["post"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    ids = set()
    for path, item in doc["paths"].items():
        for op in item.values():
            ids.add(op["operationId"])
            responses = op["responses"]
            vendor = path.startswith("/api/vendor/")
            assert (op.get("security") == [{"bearerAuth": []}]) is vendor, path
            if vendor or path == "/api/loader/execute":
                if vendor:
                    assert {"401", "429"} <= set(responses)
                    assert responses["401"]["headers"]["WWW-Authenticate"]["required"]
                too_many = responses["429"]
                assert too_many["headers"]["Retry-After"]["required"] is True
                assert set(too_many["headers"]) >= {
                    "X-RateLimit-Limit",
                    "X-RateLimit-Remaining",
                    "X-RateLimit-Reset",
                }
            for name in re.findall(r"\{(\w+)\}", path):
                params = {p["name"]: p for p in op["parameters"] if p["in"] == "path"}
                assert params[name]["required"] is True
                assert "404" in responses
            for status, resp in responses.items():
                if int(status) >= 400:
                    schema = resp["content"]["application/json"]["schema"]
                    # Every error is {"detail"}; a cooldown 429 adds retry_after.
                    assert schema in (
                        {"$ref": "#/components/schemas/ErrorDetail"},
                        {"$ref": "#/components/schemas/CooldownDetail"},
                    )
            for resp in responses.values():
                for content in resp.get("content", {}).values():
                    for ref in re.findall(r"#/components/schemas/(\w+)", str(content)):
                        assert ref in schemas
            if "requestBody" in op:
                assert "400" in responses
    assert len(ids) == sum(len(item) for item in doc["paths"].values())
    assert schemas["ErrorDetail"]["required"] == ["detail"]


async def test_schemas_come_from_the_structs(app_client: TestClient[Any, Any]) -> None:
    doc = await _doc(app_client)
    schemas = doc["components"]["schemas"]
    project = schemas["ProjectCreate"]
    assert project["properties"]["name"] == {"type": "string", "minLength": 1, "maxLength": 100}
    assert project["additionalProperties"] is False
    buyer = schemas["BuyerKeyCreate"]["properties"]
    assert buyer["amount"]["minimum"] == 1 and buyer["amount"]["maximum"] == 1000
    # The source's bound is the configured LEAF7_MAX_SOURCE.
    assert schemas["SourceUpdate"]["properties"]["source"]["maxLength"] == 8 * 1024 * 1024
    verdict = schemas["ExecuteVerdict"]
    assert set(verdict["required"]) == {"valid", "code", "message"}
    assert "KEY_INCORRECT" in verdict["properties"]["code"]["enum"]
    rotate = doc["paths"]["/api/vendor/api_key/rotate"]["post"]["responses"]["200"]
    assert rotate["content"]["application/json"]["schema"]["$ref"].endswith("/RotatedApiKey")
    assert set(schemas["RotatedApiKey"]["required"]) == {"api_key", "previous_key_expires_at"}
    listing = doc["paths"]["/api/vendor/keys/active"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names == {"project_id", "discord_id", "limit", "cursor"}
    assert "X-Next-Cursor" in listing["responses"]["200"]["headers"]
    ok = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"type": "array", "items": {"$ref": "#/components/schemas/ActiveKey"}}
    lua = doc["paths"]["/api/loader/{project_id}/loader.lua"]["get"]["responses"]["200"]
    assert "text/plain" in lua["content"]


async def test_docs_page(app_client: TestClient[Any, Any]) -> None:
    resp = await app_client.get("/docs")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    page = await resp.text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    doc = await _doc(app_client)
    for path, item in doc["paths"].items():
        for method in item:
            assert f"<span class=m>{method.upper()}</span> {path}</h3>" in page
    for name in doc["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    assert (await app_client.get("/docs/")).status == 200


async def test_integral_floats_are_integers(api: Api) -> None:
    """JSON Schema's integer includes 140.0 (found by schemathesis); 1.5 and "5" are not."""
    project = await api.call(
        "POST", "/api/vendor/projects", {"name": "x", "hwid_reset_cooldown": 60.0}, status=201
    )
    assert project["hwid_reset_cooldown"] == 60
    pid = project["project_id"]
    keys = await api.call("POST", "/api/vendor/keys/buyer", {"project_id": pid, "amount": 2.0})
    assert len(keys) == 2
    for bad in (1.5, "2", True):
        body = await api.call(
            "POST", "/api/vendor/keys/buyer", {"project_id": pid, "amount": bad}, status=422
        )
        assert "$.amount" in body["detail"]
    body = await api.call("PATCH", f"/api/vendor/projects/{pid}", {"name": 5.0}, status=422)
    assert "$.name" in body["detail"]


@pytest.mark.parametrize("bad", ["x" * 21, "12a"])
async def test_bad_discord_query_is_422(api: Api, bad: str) -> None:
    await api.call("GET", f"/api/vendor/keys/active?discord_id={bad}", status=422)


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("https://hooks.example/x?y=1#z", 201),
        ("http://ex\u00e4mple.test/\u00e4", 201),
        ("https://example.test/\x1f", 422),  # whitespace to Python's \s, not to ECMA-262's
        ("https://exa\x1cmple.test", 422),
        ("https://example.test/a b", 422),
        ("https://example.test/\x7f", 422),
    ],
)
async def test_webhook_url_pattern_means_the_same_to_clients(
    api: Api, url: str, status: int
) -> None:
    """The pattern uses explicit ASCII ranges, which Python's re (the server) and ECMA-262
    (JSON Schema validators) read alike (found by schemathesis)."""
    body = {"name": "x", "webhook_url": url}
    await api.call("POST", "/api/vendor/projects", body, status=status)
