"""The store's key search (store/licences.py ``Licences.search``): what the dashboard's key
tables and banned count use, and any caller that searches keys (the API, the bot)."""

from typing import Any

import pytest
from redis.asyncio import Redis

from store.licences import KeySearch
from store.models import ActiveKey, BuyerKey
from store.store import Store
from tests.support.api import Api, ApiWith, Clock


async def _keys(api: Api) -> tuple[Store, str, list[str]]:
    """A project of 6 keys: notes "alpha-0".."alpha-2" and "Beta-3".."Beta-5"; keys 0-3 redeemed
    (0-1 by Discord user 555, 2-3 by 777), key 1 with a HWID, key 2 banned."""
    s, v = api.store, api.vendor_id
    pid = (await api.project())["project_id"]
    ids: list[str] = []
    for n in range(6):
        note = f"alpha-{n}" if n < 3 else f"Beta-{n}"
        made = await s.licences.generate(
            v, pid, amount=1, key_days=1, key_hours=0, key_minutes=0, note=note
        )
        ids.append(made[0].key_id)
    for n in range(4):
        await s.licences.redeem(v, ids[n], "555" if n < 2 else "777")
    await s.licences.set_hwid(v, ids[1], "HW-ONE")
    await s.licences.ban(v, ids[2])
    return s, pid, ids


@pytest.fixture
async def store_api(api_with: ApiWith, redis_client: Redis) -> Api:
    return await api_with(redis_client)  # fakeredis and a real Valkey


def _ids(found: KeySearch[Any]) -> set[str]:
    return {k.key_id for k in found.rows}


async def test_lookups_and_plain_pages(store_api: Api) -> None:
    s, pid, ids = await _keys(store_api)
    v = store_api.vendor_id
    # A key id: one lookup, typed rows of the kind asked for.
    found = await s.licences.search(v, pid, ids[0], ActiveKey)
    assert found.by == "key id" and found.next is None
    assert isinstance(found.rows[0], ActiveKey) and _ids(found) == {ids[0]}
    buyer = await s.licences.search(v, pid, ids[5], BuyerKey)
    assert isinstance(buyer.rows[0], BuyerKey) and _ids(buyer) == {ids[5]}
    # An unredeemed key is no active key: the id is then searched as a HWID or note.
    missed = await s.licences.search(v, pid, ids[5], ActiveKey)
    assert missed.by == "scan" and missed.rows == [] and missed.scanned == 4
    # Another vendor's key id finds nothing.
    other = await store_api.as_other()
    assert (await s.licences.search(other.vendor_id, None, ids[0], BuyerKey)).rows == []
    # A Discord ID on active keys: that user's index, no scan.
    by_user = await s.licences.search(v, pid, "777", ActiveKey)
    assert by_user.by == "discord id" and _ids(by_user) == {ids[2], ids[3]}
    # Nothing to filter: a plain page, continued by its cursor.
    first = await s.licences.search(v, pid, "", BuyerKey, limit=4)
    assert first.by == "" and len(first.rows) == 4 and first.next is not None
    rest = await s.licences.search(v, pid, "", BuyerKey, cursor=first.next, limit=4)
    assert rest.next is None and _ids(first) | _ids(rest) == set(ids)


async def test_scans_by_note_hwid_and_status(store_api: Api) -> None:
    s, pid, ids = await _keys(store_api)
    v = store_api.vendor_id
    # A note: a substring in any case; a HWID: exact.
    beta = await s.licences.search(v, pid, "BETA", BuyerKey)
    assert beta.by == "scan" and beta.scanned == 6 and beta.next is None
    assert _ids(beta) == set(ids[3:])
    hwid = await s.licences.search(v, pid, "HW-ONE", ActiveKey)
    assert _ids(hwid) == {ids[1]}
    assert (await s.licences.search(v, pid, "HW-ON", ActiveKey)).rows == []
    # The status filters, alone and with a query.
    for status, kind, want in (
        ("banned", ActiveKey, {ids[2]}),
        ("unbanned", ActiveKey, {ids[0], ids[1], ids[3]}),
        ("redeemed", BuyerKey, set(ids[:4])),
        ("unredeemed", BuyerKey, set(ids[4:])),
    ):
        found = await s.licences.search(v, pid, "", kind, status=status)
        assert _ids(found) == want, status
    alpha = await s.licences.search(v, pid, "alpha", BuyerKey, status="unredeemed")
    assert alpha.rows == []
    # A Discord ID with a filter: a scan of that user's index only.
    banned = await s.licences.search(v, pid, "777", ActiveKey, status="banned")
    assert banned.by == "scan" and banned.scanned == 2 and _ids(banned) == {ids[2]}
    # Every project (None), as the overview's banned count asks.
    await store_api.project(name="second")
    every = await s.licences.search(v, None, "", ActiveKey, status="banned")
    assert _ids(every) == {ids[2]} and every.next is None


async def test_the_budget_bounds_a_scan(store_api: Api, clock: Clock) -> None:
    s, pid, ids = await _keys(store_api)
    v = store_api.vendor_id
    # At most `budget` keys read per call; `next` continues where the scan stopped.
    seen: set[str] = set()
    cursor: str | None = None
    calls = 0
    while True:
        found = await s.licences.search(v, pid, "a", BuyerKey, cursor=cursor, budget=2)
        assert found.by == "scan" and found.scanned <= 2
        seen |= _ids(found)
        calls += 1
        cursor = found.next
        if cursor is None:
            break
    assert calls >= 3 and seen == set(ids)  # every note holds an "a"
    # At most `limit` rows a page, and no match is skipped: the pages hold every one once.
    assert len((await s.licences.search(v, pid, "a", BuyerKey, limit=2)).rows) == 2
    scans = ((BuyerKey, "a", "all", ids), (ActiveKey, "", "unbanned", [ids[0], ids[1], ids[3]]))
    for kind, query, status, expected in scans:
        pages: list[str] = []
        cursor = None
        for _ in range(10):
            found = await s.licences.search(
                v, pid, query, kind, status=status, cursor=cursor, limit=2
            )
            assert found.by == "scan" and 1 <= len(found.rows) <= 2
            pages += [k.key_id for k in found.rows]
            cursor = found.next
            if cursor is None:
                break
        assert sorted(pages) == sorted(expected), (kind, query)
    # A timed ban that has ended is no ban.
    await s.licences.ban(v, ids[3], duration=60)
    banned = await s.licences.search(v, pid, "", ActiveKey, status="banned")
    assert _ids(banned) == {ids[2], ids[3]}
    clock.advance(61)
    banned = await s.licences.search(v, pid, "", ActiveKey, status="banned")
    assert _ids(banned) == {ids[2]}
    with pytest.raises(ValueError):
        await s.licences.search(v, pid, "a", BuyerKey, budget=0)
