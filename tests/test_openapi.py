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
        if path in ("/", "/favicon.ico") or path.startswith(("/dashboard", "/getkey/")):
            continue  # the dashboard's and get-key HTML pages and icon, not the API
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
    """/docs is the vendored Swagger UI over /openapi.json: every file from this server (no
    CDN), under the dashboard's CSP (no 'unsafe-inline'); tests/test_explorer_browser.py runs
    it in Chromium."""
    resp = await app_client.get("/docs")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    page = await resp.text()
    assert "http://" not in page and "https://" not in page
    scripts = re.findall(r'<script src="([^"]+)"', page)
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert "/dashboard/static/explorer/swagger-ui-bundle.js" in scripts
    assert len(re.findall(r"<script", page)) == len(scripts)  # no inline script
    assert "<style" not in page and " style=" not in page
    for url in scripts + styles:
        asset = await app_client.get(url)
        assert asset.status == 200, url
        assert "unsafe-inline" not in asset.headers["Content-Security-Policy"]
    init = await (await app_client.get("/dashboard/static/explorer/explorer.js")).text()
    assert 'url: "/openapi.json"' in init and "validatorUrl: null" in init
    assert (await app_client.get("/docs/")).status == 200


async def test_favicon(app_client: TestClient[Any, Any]) -> None:
    resp = await app_client.get("/favicon.ico")
    assert resp.status == 200
    assert resp.content_type == "image/x-icon"
    body = await resp.read()
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO file
    svg = await app_client.get("/dashboard/static/favicon.svg")
    assert svg.status == 200 and svg.content_type == "image/svg+xml"
    for page in ("/docs", "/dashboard/signin"):
        text = await (await app_client.get(page)).text()
        assert '<link rel="icon" href="/dashboard/static/favicon.svg"' in text, page
        assert '<link rel="icon" href="/favicon.ico"' in text, page


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
