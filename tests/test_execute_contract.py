"""store/execute_contract.py is store/lua/execute.lua's contract on the Python side: its
``execute_call`` drives the real script, whose replies read as its structs, and the script's
header lists the same fields."""

import re
from pathlib import Path

import msgspec
from redis.asyncio import Redis

from store import Store
from store.execute_contract import (
    WIDE,
    FailureReply,
    HostedReply,
    LimitedReply,
    ValidReply,
    decode_check,
    execute_call,
)
from store.models import Limit, Limits

SCRIPT = Path(__file__).resolve().parent.parent / "store" / "lua" / "execute.lua"
NOW = 1_800_000_000  # a multiple of 60: the execution window starts here


def _header() -> str:
    lines = []
    for line in SCRIPT.read_text().splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.removeprefix("--"))
    return " ".join(lines)


def _documented_fields(header: str, name: str) -> list[str]:
    """The fields the header lists for ``name`` (``Name {a, b (remark, ...), c}``)."""
    body = header[header.index(f"{name} {{") + len(name) + 2 :]
    body = re.sub(r"\([^()]*\)", "", body)  # remarks may hold commas and braces
    return [field.strip() for field in body[: body.index("}")].split(",")]


def test_the_script_header_lists_each_structs_fields() -> None:
    header = _header()
    for struct in (HostedReply, LimitedReply, FailureReply, ValidReply):
        documented = _documented_fields(header, struct.__name__)
        assert len(documented) == len(struct.__struct_fields__), (struct, documented)
    assert _documented_fields(header, "ValidReply")[:3] == [
        "'KEY_VALID'",
        "discord_id",
        "total_executions",
    ]


async def test_execute_call_drives_the_script_and_its_replies_fit_the_structs(
    redis_client: Redis,
) -> None:
    store = Store(redis_client, clock=lambda: NOW)
    await store.core.load_scripts()
    vendor_id, _ = await store.vendors.create("v", "1")
    project = await store.projects.create(vendor_id, {"name": "Hub"})
    pid = project.project_id
    made = await store.licences.generate(
        vendor_id, pid, amount=1, key_days=1, key_hours=0, key_minutes=0, note="vip"
    )
    key_id = made[0].key_id
    client, wide = "2001:db8:1:2::", "2001:db8:1::"
    checks = [
        (key_id, "hw", client, "2001:db8:1:2::5", wide, "synapse", None, None),
        ("no-such-key", "hw", client, "2001:db8:1:2::5", wide, "unknown", None, None),
        (key_id, "hw", client, "2001:db8:1:2::5", wide, "synapse", None, None),
    ]
    keys, args = execute_call(
        pid,
        checks,
        mode=WIDE,
        now=NOW,
        retention=3600,
        cached_rev="",
        limits=Limits(execute=2, execute_window=60, failures=5, failures_48=9),
        executor_cap=16,
    )
    reply = await redis_client.evalsha(store.core.scripts.execute.sha, len(keys), *keys, *args)
    _, hosted, *results = reply
    assert msgspec.convert(hosted, HostedReply, strict=False) == HostedReply(
        "", "Hub", "0.0.0", "", None
    )
    assert [decode_check(r) for r in results] == [
        ValidReply(
            "KEY_VALID", "", 1, str(NOW + 86400), "vip", True, False, 1, NOW + 60, None, None, True
        ),
        FailureReply("KEY_INCORRECT", 0, NOW + 60),
        LimitedReply("RATE_LIMITED", Limit.EXECUTIONS, NOW + 60, 60),
    ]
    # Each check's third KEY is its /48's limit hash: the wrong key counted there.
    assert await redis_client.hget(keys[9 + 2], "fn") == "1"
    store.core.deadlines.close()
    await store.core.pipe.close()
