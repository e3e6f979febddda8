"""The OpenAPI contract fuzzed by schemathesis against the live service.

The app serves on a real port (loopback) with a real embedded Valkey; a vendor with a project,
keys and a hosted script exists, and schemathesis runs every check it has against every
operation with a valid API key: at most 50 examples per operation, deterministic generation.
No 5xx, and every response conforms to the document (status, headers, content type, body
schema).
"""

import asyncio
import dataclasses
import re
import sys
from pathlib import Path

from aiohttp import web
from redis.asyncio import Redis

from handlers.appkeys import STORE
from service.app import create_app
from service.config import Settings

# Redeeming a redeemed key and deleting a redeemed buyer key are 400 by the contract
# (api.md), which schemathesis' "valid data should be accepted" check has to be told; so are
# the two cross-field rules the structs' schemas cannot state: a blacklist entry needs an IP
# or a HWID, and an extension needs a positive duration (both 400). (No
# fixed ids for path parameters: the stateful phase follows links from the objects it
# creates, and a fixed id would be deleted by it and then look like a lost resource.)
CONFIG = """
# A blacklist entry's ip is an address or a CIDR network; any other string is 422
# (handlers/blacklist.py), and neither ip nor hwid 400.
[[operations]]
include-name = ["POST /api/vendor/blacklist"]
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 401, 404, 422, 429]

# A list's cursor is opaque: a string of the right shape that this listing did not hand out
# is 422 (handlers/listing.py).
[[operations]]
include-name = [
  "GET /api/vendor/keys/buyer",
  "GET /api/vendor/keys/active",
  "GET /api/vendor/users/{discord_id}/keys",
  "GET /api/vendor/blacklist",
  "GET /api/vendor/metrics/events",
  "GET /api/vendor/orders",
]
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 404, 422, 429]

[[operations]]
include-path = [
  "/api/vendor/keys/redeem",
  "/api/vendor/keys/buyer/{key_id}",
  "/api/vendor/blacklist",
  "/api/vendor/keys/active/extend",
]
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 401, 404, 429]

# An import entry with contradictions its schema cannot state (expires_at and durations,
# redeemed false with a HWID, a time before 1970, a key_id twice) is 422 (handlers/transfer.py).
[[operations]]
include-name = ["POST /api/vendor/keys/import"]
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 404, 422, 429]

# Only the current API key may rotate or revoke keys: once the fuzzer has rotated, the key it
# holds is in its grace period and gets 403 (handlers/vendor.py).
[[operations]]
include-name = ["POST /api/vendor/api_key/rotate", "POST /api/vendor/api_key/revoke_previous"]
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 403, 429]

# The role sync long poll holds a request up to `wait` seconds when there is no change: fuzzed
# without waiting (handlers/rolesync.py; its waiting is tested in tests/test_rolesync.py).
[[operations]]
include-name = ["GET /api/vendor/role_sync/changes"]
parameters = { "query.wait" = 0 }

# A webhook_url to a non-public address (handlers/targets.py) is 422 whatever its shape.
[[operations]]
include-name = ["POST /api/vendor/projects", "PATCH /api/vendor/projects/{project_id}"]
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 404, 422, 429]
"""

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
TIMEOUT = 150.0


async def test_schemathesis_finds_nothing(
    real_redis: Redis, settings: Settings, tmp_path: Path
) -> None:
    s = dataclasses.replace(settings, max_source=64 * 1024)
    app = create_app(s, redis=real_redis)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        store = app[STORE]
        vendor_id, api_key = await store.vendors.create("Fuzz", "1234")
        project = await store.projects.create(vendor_id, {"name": "Fuzzed"})
        pid = project.project_id
        await store.projects.set_source(
            vendor_id, pid, "print(L7_ScriptName)", "1.0.0", "L7_ScriptName"
        )
        made = await store.licences.generate(
            vendor_id, pid, amount=3, key_days=1, key_hours=0, key_minutes=0, note="n"
        )
        await store.licences.redeem(vendor_id, made[0].key_id, "555")
        config = tmp_path / "schemathesis.toml"
        config.write_text(CONFIG)
        proc = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            "--config-file",
            str(config),
            "run",
            f"{base}/openapi.json",
            "--url",
            base,
            "--checks",
            "all",
            "--max-examples",
            "50",
            "--generation-deterministic",
            "--header",
            f"Authorization: Bearer {api_key}",
            "--request-timeout",
            "10",
            "--no-color",
            "--workers",
            "1",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_COLOR": "1"},
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        text = out.decode(errors="replace")
        (tmp_path / "schemathesis.log").write_text(text)
        assert proc.returncode == 0, text[-20000:]
        # Not vacuous: every operation was tested, in every phase, with many cases.
        assert "Tested: 58" in text, text[-5000:]
        for phase in ("Coverage", "Fuzzing", "Stateful"):
            assert f"✅ {phase}" in text, (phase, text[-5000:])
        counts = re.search(r"(\d+) generated, (\d+) passed", text)
        assert counts is not None, text[-5000:]
        assert int(counts[1]) == int(counts[2]) >= 500, counts[0]
    finally:
        await runner.cleanup()
