"""/metrics (Prometheus text), request ids and JSON access logs."""

import json
import logging
import re
from typing import Any

import pytest

from handlers.observability import REQUEST_ID_RE
from service.app import create_app
from service.config import Settings
from tests.support.api import Api
from tests.support.metrics import scrape, value

EXECUTE = "/api/loader/execute"


async def test_metrics_by_route_template_status_and_verdict(api: Api) -> None:
    client = api.client
    project = await api.project()
    pid = project["project_id"]
    k1, k2 = await api.keys(pid, amount=2)
    await api.call("GET", f"/api/vendor/projects/{pid}")
    await api.call("GET", f"/api/vendor/projects/{pid}/")  # same route, trailing slash
    await api.call("GET", "/api/vendor/projects/00000000-0000-4000-8000-000000000000", status=404)
    await api.call("POST", f"/api/vendor/keys/active/{k1['key_id']}/ban", status=404)
    await client.get(f"/no/such/{k2['key_id']}")
    runs = [
        {"project_id": pid, "script_key": k2["key_id"], "hwid": "A"},  # KEY_VALID
        {"project_id": pid, "script_key": k2["key_id"], "hwid": "A"},  # KEY_VALID
        {"project_id": pid, "script_key": k2["key_id"], "hwid": "B"},  # KEY_HWID_LOCKED
        {"project_id": pid, "script_key": "nope", "hwid": "A"},  # KEY_INCORRECT
        {"project_id": pid, "script_key": "nope"},  # HWID_MISSING
        {"project_id": "not-a-uuid", "script_key": "x", "hwid": "A"},  # PROJECT_NOT_FOUND
    ]
    for run in runs:
        assert (await client.post(EXECUTE, json=run)).status == 200

    m = await scrape(client)
    route = "/api/vendor/projects/{project_id}"
    assert value(m, "leaf7_http_requests_total", route=route, method="GET", status="200") == 2
    assert value(m, "leaf7_http_requests_total", route=route, method="GET", status="404") == 1
    ban = "/api/vendor/keys/active/{key_id}/ban"
    assert value(m, "leaf7_http_requests_total", route=ban, method="POST", status="404") == 1
    assert value(m, "leaf7_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert value(m, "leaf7_http_requests_total", route=EXECUTE, method="POST", status="200") == 6
    assert value(m, "leaf7_http_requests_total", route="/api/vendor/projects", method="POST",
                 status="201") == 1  # fmt: skip
    hist = "leaf7_http_request_duration_seconds"
    assert value(m, hist + "_count", route=EXECUTE, method="POST", status="200") == 6
    assert value(m, hist + "_bucket", route=EXECUTE, method="POST", status="200", le="+Inf") == 6
    assert value(m, hist + "_sum", route=EXECUTE, method="POST", status="200") > 0
    verdicts = {
        code: value(m, "leaf7_execute_verdicts_total", code=code)
        for code in ("KEY_VALID", "KEY_HWID_LOCKED", "KEY_INCORRECT", "HWID_MISSING",
                     "PROJECT_NOT_FOUND", "KEY_BANNED")
    }  # fmt: skip
    assert verdicts == {
        "KEY_VALID": 2,
        "KEY_HWID_LOCKED": 1,
        "KEY_INCORRECT": 1,
        "HWID_MISSING": 1,
        "PROJECT_NOT_FOUND": 1,
        "KEY_BANNED": 0,
    }
    assert value(m, "leaf7_autopipe_batches_total") >= 1
    assert value(m, "leaf7_autopipe_commands_total") >= value(m, "leaf7_autopipe_batches_total")
    assert value(m, "leaf7_redis_errors_total", kind="connection") == 0
    # No label anywhere carries an id (project, key) or anything but a template.
    for (_, labels), _v in m.items():
        for _k, v in labels:
            assert pid not in v and k1["key_id"] not in v and k2["key_id"] not in v
    # The scrape itself is counted on the next one.
    m2 = await scrape(client)
    assert value(m2, "leaf7_http_requests_total", route="/metrics", method="GET", status="200") == 1


async def test_fsync_counter_on_real_server(valkey_api: Api) -> None:
    real_api = valkey_api
    project = await real_api.project()
    await real_api.keys(project["project_id"], amount=3)
    m = await scrape(real_api.client)
    assert value(m, "leaf7_fsync_waits_total", result="fsynced") >= 2
    assert value(m, "leaf7_fsync_waits_total", result="timeout") == 0


@pytest.mark.parametrize("path", ["/healthz", "/nowhere", "/api/vendor/projects", EXECUTE])
async def test_request_id_generated_and_echoed(api: Api, path: str) -> None:
    resp = await api.client.get(path)  # 200, 404, 401, 405
    rid = resp.headers["X-Request-ID"]
    assert REQUEST_ID_RE.fullmatch(rid) and len(rid) >= 18
    resp2 = await api.client.get(path)
    assert resp2.headers["X-Request-ID"] != rid


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("abc-123_x.y", True),
        ("A" * 128, True),
        ("A" * 129, False),
        ("has space", False),
        ("semi;colon", False),
        ("", False),
        ("é", False),
    ],
)
async def test_request_id_accepted_only_when_valid(api: Api, sent: str, echoed: bool) -> None:
    resp = await api.client.get("/healthz", headers={"X-Request-ID": sent})
    got = resp.headers["X-Request-ID"]
    assert (got == sent) is echoed
    assert REQUEST_ID_RE.fullmatch(got)


async def test_request_id_on_errors_and_writes(api: Api) -> None:
    headers = {**api.auth, "X-Request-ID": "req-1"}
    bad = await api.client.post("/api/vendor/projects", data=b"{nope", headers=headers)
    assert bad.status == 400 and bad.headers["X-Request-ID"] == "req-1"
    invalid = await api.client.post("/api/vendor/projects", json={"name": 5}, headers=headers)
    assert invalid.status == 422 and invalid.headers["X-Request-ID"] == "req-1"
    ok = await api.client.post("/api/vendor/projects", json={"name": "x"}, headers=headers)
    assert ok.status == 201 and ok.headers["X-Request-ID"] == "req-1"
    unauth = await api.client.get("/api/vendor/projects", headers={"X-Request-ID": "req-2"})
    assert unauth.status == 401 and unauth.headers["X-Request-ID"] == "req-2"


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "leaf7.access"]


async def test_access_log_one_json_line_per_request(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    project = await api.project()
    pid = project["project_id"]
    [key] = await api.keys(pid)
    kid = key["key_id"]
    caplog.clear()
    caplog.set_level(logging.INFO)
    await api.client.post(
        EXECUTE,
        json={"project_id": pid, "script_key": kid, "hwid": "PC-1"},
        headers={"X-Request-ID": "trace-7"},
    )
    await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
    await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")
    await api.client.get("/healthz")
    lines = _access_lines(caplog)
    assert [(x["method"], x["route"], x["status"]) for x in lines] == [
        ("POST", EXECUTE, 200),
        ("POST", "/api/vendor/keys/active/{key_id}/ban", 200),
        ("GET", "/api/vendor/keys/buyer", 200),
        ("GET", "/healthz", 200),
    ]
    first = lines[0]
    assert set(first) == {"time", "method", "route", "status", "duration_ms", "client_ip",
                          "request_id"}  # fmt: skip
    assert first["request_id"] == "trace-7"
    assert first["client_ip"] == "127.0.0.1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert 0 <= first["duration_ms"] < 5000
    assert all(REQUEST_ID_RE.fullmatch(x["request_id"]) for x in lines)
    # Nothing secret in any log line of any logger: keys, API key, script_key, Authorization.
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for secret in (kid, api.api_key, "Bearer", "script_key", pid):
        assert secret not in text


async def test_access_log_switched_off(
    aiohttp_client: Any, redis_client: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    caplog.set_level(logging.INFO)
    app = create_app(replace(settings, access_log=False), redis=redis_client)
    client = await aiohttp_client(app)
    resp = await client.get("/healthz")
    assert resp.status == 200 and "X-Request-ID" in resp.headers
    assert _access_lines(caplog) == []


def test_access_log_timestamp_formatting() -> None:
    from handlers.observability import _timestamp

    assert _timestamp(1700000000.0456) == "2023-11-14T22:13:20.045Z"
    assert _timestamp(1700000000.999) == "2023-11-14T22:13:20.999Z"
    assert _timestamp(1700000001.0) == "2023-11-14T22:13:21.000Z"  # next second re-formatted
    assert _timestamp(1600000000.5) == "2020-09-13T12:26:40.500Z"  # and back
