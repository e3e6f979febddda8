"""The vendor-wide blacklist: CRUD, and its effect on the loader check in every project."""

import asyncio
import dataclasses
import ipaddress
import random
import re
from typing import Any

import pytest
from redis.asyncio import Redis

from service.config import Settings
from store import Store, keyspace
from tests.support.api import Api, execute, keys_matching, setup_key

URL = "/api/vendor/blacklist"


async def test_crud_shapes_and_errors(api: Api) -> None:
    entry = await api.call("POST", URL, {"hwid": "bad-pc"})
    assert set(entry) == {"id", "ip", "hwid", "reason", "attempts", "timestamp"}
    assert entry["hwid"] == "bad-pc" and entry["ip"] is None
    assert entry["reason"] == "Manual ban" and entry["attempts"] == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", entry["timestamp"])
    both = await api.call(
        "POST", URL + "/", {"ip": "10.0.0.1", "hwid": "x", "reason": "chargeback"}
    )
    assert both["reason"] == "chargeback"
    listed = await api.call("GET", URL)
    assert sorted(e["id"] for e in listed) == sorted([entry["id"], both["id"]])
    resp = await api.client.post(URL, data=b"{", headers=api.auth)
    assert resp.status == 400
    body = await api.call("POST", URL, {"reason": "no target"}, status=400)
    assert body == {"detail": "Must provide either IP or HWID"}
    await api.call("POST", URL, {"ip": "", "hwid": ""}, status=422)  # empty HWID: too short
    body = await api.call("POST", URL, {"ip": "not-an-ip"}, status=422)
    assert "ip" in body["detail"]
    await api.call("POST", URL, {"hwid": 5}, status=422)
    assert await api.call("DELETE", f"{URL}/{entry['id']}") == {"status": "success"}
    body = await api.call("DELETE", f"{URL}/{entry['id']}", status=404)
    assert body == {"detail": "Entry not found"}
    other = await api.as_other()
    assert await other.call("GET", URL) == []
    assert await other.call("DELETE", f"{URL}/{both['id']}", status=404) == {
        "detail": "Entry not found"
    }
    assert len(await api.call("GET", URL)) == 1


async def test_blacklisted_hwid_refused_in_every_project(api: Api) -> None:
    pid1, kid1 = await setup_key(api)
    entry = await api.call("POST", URL, {"hwid": "cheater"})
    pid2, kid2 = await setup_key(api)  # created after the entry: mirrored too
    for pid, kid in ((pid1, kid1), (pid2, kid2)):
        data = await execute(api, pid, kid, hwid="cheater")
        assert data["code"] == "HWID_BANNED"
        assert (await execute(api, pid, kid, hwid="honest"))["code"] == "KEY_VALID"
    # Even a valid, bound key of that machine, and in a free-for-all project.
    await api.call("PATCH", f"/api/vendor/projects/{pid1}", {"ffa_active": True})
    assert (await execute(api, pid1, "", hwid="cheater"))["code"] == "HWID_BANNED"
    [listed] = await api.call("GET", URL)
    assert listed["attempts"] == 3
    # Other vendors' projects do not see it.
    other = await api.as_other()
    opid, okid = await setup_key(other)
    assert (await execute(other, opid, okid, hwid="cheater"))["code"] == "KEY_VALID"
    await api.call("DELETE", f"{URL}/{entry['id']}")
    assert (await execute(api, pid2, "", hwid="cheater"))["code"] == "KEY_INCORRECT"


async def test_blacklisted_ip(api: Api) -> None:
    pid, kid = await setup_key(api)
    entry = await api.call("POST", URL, {"ip": "127.0.0.1", "reason": "abuse"})
    data = await execute(api, pid, kid, hwid="anything")
    assert data["code"] == "HWID_BANNED"
    assert (await api.call("GET", URL))[0]["attempts"] == 1
    await api.call("DELETE", f"{URL}/{entry['id']}")
    assert (await execute(api, pid, kid, hwid="anything"))["code"] == "KEY_VALID"
    # IPv6 forms are canonicalised.
    entry = await api.call("POST", URL, {"ip": "0:0:0:0:0:0:0:1"})
    assert entry["ip"] == "::1"


async def test_overlapping_entries(api: Api) -> None:
    pid, kid = await setup_key(api)
    first = await api.call("POST", URL, {"hwid": "shared"})
    second = await api.call("POST", URL, {"hwid": "shared", "reason": "again"})
    await api.call("DELETE", f"{URL}/{first['id']}")
    assert (await execute(api, pid, kid, hwid="shared"))["code"] == "HWID_BANNED"
    await api.call("DELETE", f"{URL}/{second['id']}")
    assert (await execute(api, pid, kid, hwid="shared"))["code"] == "KEY_VALID"


async def test_project_delete_drops_mirrors(api: Api) -> None:
    pid, _ = await setup_key(api)
    await api.call("POST", URL, {"hwid": "h", "ip": "10.1.1.1"})
    await api.call("DELETE", f"/api/vendor/projects/{pid}")
    assert await keys_matching(api.store.redis, f"*{{{pid}}}*") == []
    [entry] = await api.call("GET", URL)
    assert entry["attempts"] == 0


# ---- ranges and normalised addresses ------------------------------------------------------


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test client (127.0.0.1) is a trusted proxy: X-Forwarded-For sets the client IP."""
    return dataclasses.replace(settings, trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))


async def verdict(api: Api, pid: str, kid: str, ip: str) -> str:
    data = await execute(api, pid, kid, hwid="pc", headers={"X-Forwarded-For": ip})
    return str(data["code"])


async def blacklist_ip(
    api: Api,
    pid: str,
    kid: str,
    ip: str,
    stored: str | None = None,
    banned: tuple[str, ...] = (),
    valid: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Blacklists ``ip`` and checks the entry: stored as ``stored`` (when given), each client
    of ``banned`` refused (HWID_BANNED), then each of ``valid`` let through (KEY_VALID)."""
    entry: dict[str, Any] = await api.call("POST", URL, {"ip": ip})
    if stored is not None:
        assert entry["ip"] == stored
    for client in banned:
        assert await verdict(api, pid, kid, client) == "HWID_BANNED", client
    for client in valid:
        assert await verdict(api, pid, kid, client) == "KEY_VALID", client
    return entry


async def test_mapped_ipv6_entry_blocks_the_ipv4_client(api: Api) -> None:
    pid, kid = await setup_key(api)
    # The mapped client is refused too.
    banned = ("8.8.4.4", "::ffff:8.8.4.4")
    await blacklist_ip(api, pid, kid, "::ffff:8.8.4.4", "8.8.4.4", banned, ("8.8.4.5",))
    assert (await api.call("GET", URL))[0]["attempts"] == 2
    # A mapped network is the IPv4 network.
    await blacklist_ip(api, pid, kid, "::ffff:9.9.9.0/120", "9.9.9.0/24", ("9.9.9.200",))


async def test_ipv4_ranges(api: Api) -> None:
    pid, kid = await setup_key(api)
    c24 = await blacklist_ip(
        api, pid, kid, "198.51.100.0/24", "198.51.100.0/24", ("198.51.100.7",), ("198.51.101.7",)
    )
    # Not on a nibble: a /22 and a /13.
    await blacklist_ip(
        api, pid, kid, "203.0.112.0/22", None, ("203.0.115.255",), ("203.0.116.0", "203.0.111.255")
    )
    # Host bits set: normalised to the network.
    c8 = await blacklist_ip(
        api, pid, kid, "10.1.2.3/8", "10.0.0.0/8", ("10.200.0.1",), ("11.0.0.1",)
    )
    # A /32 is the address.
    await blacklist_ip(api, pid, kid, "192.0.2.9/32", "192.0.2.9", ("192.0.2.9",), ("192.0.2.8",))
    # Nested networks: the attempt goes to the longest prefix.
    c16 = await blacklist_ip(api, pid, kid, "198.51.0.0/16", None, ("198.51.100.9", "198.51.7.9"))
    attempts = {e["id"]: e["attempts"] for e in await api.call("GET", URL)}
    assert attempts[c24["id"]] == 2 and attempts[c16["id"]] == 1 and attempts[c8["id"]] == 1


async def test_ipv6_ranges(api: Api) -> None:
    pid, kid = await setup_key(api)
    banned = ("2001:db8:1:2:ffff::9", "[2001:db8:1:2::]:443")
    await blacklist_ip(api, pid, kid, "2001:DB8:1:2::/64", None, banned, ("2001:db8:1:3::1",))
    banned = ("2001:db8:aa:ffff:1:2:3:4",)
    await blacklist_ip(
        api, pid, kid, "2001:db8:aa::/48", "2001:db8:aa::/48", banned, ("2001:db8:ab::1",)
    )
    # Not on a nibble (/35), and host bits set.
    e35 = await blacklist_ip(
        api,
        pid,
        kid,
        "2001:db8:1234::1/35",
        "2001:db8::/35",
        ("2001:db8:1fff::1",),
        ("2001:db8:2000::1",),
    )
    # A single IPv6 address, written long: itself only (not its /64); cc:2 is in the /35.
    long = "2001:0db8:0000:0000:0000:0000:00cc:0001"
    await blacklist_ip(api, pid, kid, long, None, ("2001:db8::cc:1", "2001:db8::cc:2"))
    await api.call("DELETE", f"{URL}/{e35['id']}")
    assert await verdict(api, pid, kid, "2001:db8::cc:2") == "KEY_VALID"
    assert await verdict(api, pid, kid, "2001:db8::cc:1") == "HWID_BANNED"
    # IPv4 clients are not looked up in IPv6 networks (and the other way round).
    assert await verdict(api, pid, kid, "32.1.13.184") == "KEY_VALID"


@pytest.mark.parametrize(
    "bad",
    [
        "not-an-ip",
        "1.2.3",
        "10.0.0.0/33",
        "10.0.0.0/8/8",
        "2001:db8::/129",
        "2001:db8:::1",
        "fe80::1%eth0",
        "10.0.0.0/-1",
    ],
)
async def test_invalid_ips_are_422(api: Api, bad: str) -> None:
    body = await api.call("POST", URL, {"ip": bad}, status=422)
    assert body["detail"].startswith("ip: not an IP address or CIDR network"), bad
    assert await api.call("GET", URL) == []


async def test_deleting_ranges_lifts_the_block(api: Api) -> None:
    pid, kid = await setup_key(api)
    mirror = keyspace.blacklist_ips(pid)
    first = await api.call("POST", URL, {"ip": "198.51.100.0/24"})
    second = await api.call("POST", URL, {"ip": "203.0.113.0/24", "hwid": "h"})
    same = await api.call("POST", URL, {"ip": "203.0.113.77/24", "reason": "again"})
    wide = await api.call("POST", URL, {"ip": "2001:db8:aa::/48"})
    assert await api.store.redis.hget(mirror, "/") == "6/48 4/24"
    pid2, kid2 = await setup_key(api)  # created after the entries: mirrored too
    assert await api.store.redis.hget(keyspace.blacklist_ips(pid2), "/") == "6/48 4/24"
    for p, k in ((pid, kid), (pid2, kid2)):
        assert await verdict(api, p, k, "198.51.100.1") == "HWID_BANNED"
        assert await verdict(api, p, k, "2001:db8:aa::1") == "HWID_BANNED"
    await api.call("DELETE", f"{URL}/{first['id']}")
    # Another /24 is still listed: the prefix length stays.
    assert await api.store.redis.hget(mirror, "/") == "6/48 4/24"
    for p, k in ((pid, kid), (pid2, kid2)):
        assert await verdict(api, p, k, "198.51.100.1") == "KEY_VALID"
        assert await verdict(api, p, k, "203.0.113.1") == "HWID_BANNED"
    # Two entries for the same network: deleting one leaves the other in force.
    await api.call("DELETE", f"{URL}/{second['id']}")
    assert await verdict(api, pid, kid, "203.0.113.1") == "HWID_BANNED"
    await api.call("DELETE", f"{URL}/{same['id']}")
    assert await verdict(api, pid, kid, "203.0.113.1") == "KEY_VALID"
    assert await api.store.redis.hget(mirror, "/") == "6/48"
    await api.call("DELETE", f"{URL}/{wide['id']}")
    for p, k in ((pid, kid), (pid2, kid2)):
        assert await verdict(api, p, k, "2001:db8:aa::1") == "KEY_VALID"
        # Nothing is left of the mirror: a check costs what it did before ranges.
        assert await api.store.redis.hgetall(keyspace.blacklist_ips(p)) == {}


async def test_range_matching_agrees_with_python(redis_client: Redis) -> None:
    """The script's network arithmetic (execute.lua) against Python's ipaddress: random
    networks of every prefix length, and clients inside, at the edges and outside them."""
    rng = random.Random(7)
    store = Store(redis_client, check_batch=4)
    await store.core.load_scripts()
    vendor_id, _ = await store.vendors.create("v", "1")
    pid = (await store.projects.create(vendor_id, {"name": "Hub"})).project_id
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for bits in (32, 128):
        for _ in range(12):
            prefix = rng.randrange(1, bits)
            addr = ipaddress.ip_address(rng.getrandbits(bits))
            nets.append(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))
    for net in nets:
        await store.blacklist.add(vendor_id, str(net), None, "r")
    clients: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for net in nets:
        lo, hi = int(net.network_address), int(net.broadcast_address)
        kind = type(net.network_address)
        for value in (lo, hi, rng.randint(lo, hi), lo - 1, hi + 1):
            if 0 <= value < 2**net.max_prefixlen:
                clients.append(kind(value))
    clients += [ipaddress.ip_address(rng.getrandbits(128)) for _ in range(20)]
    clients += [ipaddress.ip_address(rng.getrandbits(32)) for _ in range(20)]
    # Zero runs of every length and place, as Python writes them (RFC 5952).
    clients += [ipaddress.ip_address(a) for a in ("::", "::1", "1::", "1:0:0:2::", "0:1::1:0:0")]
    texts = [str(c) for c in clients]
    results = await asyncio.gather(
        *(store.checks.execute(pid, "nope", "hw", None, ip) for ip in texts)
    )
    for client, result in zip(clients, results, strict=True):
        listed = any(client.version == n.version and client in n for n in nets)
        assert result.code == ("HWID_BANNED" if listed else "KEY_INCORRECT"), client
    store.core.deadlines.close()
    await store.core.pipe.close()
