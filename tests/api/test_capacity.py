"""Capacity reports: append-only history, all-or-nothing bulk, ordering, idempotent retries."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select

from app.capacity.models import CapacityReport
from app.db import Database, utcnow
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem, pointers


async def report_count(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(CapacityReport)) or 0)


async def test_report_becomes_current_and_history_grows(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    unit = seed.units["leiden-elv-high"]
    key = auth(seed.keys["provider"])
    r = await client.put(
        f"/v1/units/{unit}/capacity", json={"free": 5, "expected_free_24h": 6}, headers=key
    )
    assert r.status_code == 200, r.text
    assert r.json()["available"] == 5
    history = (await client.get(f"/v1/units/{unit}/capacity-history", headers=key)).json()
    assert [h["free"] for h in history["items"]] == [5, 2]
    search = await client.get(
        "/v1/availability",
        params={"care_type": "elv_high", "subregion": "leiden"},
        headers=auth(seed.keys["triagist"]),
    )
    assert [h["available"] for h in search.json()["items"]] == [5]


async def test_history_pages(client: httpx.AsyncClient, seed: Seed) -> None:
    unit = seed.units["leiden-elv-high"]
    key = auth(seed.keys["provider"])
    for free in (1, 2, 3):
        await client.put(f"/v1/units/{unit}/capacity", json={"free": free}, headers=key)
    first = (
        await client.get(f"/v1/units/{unit}/capacity-history", params={"limit": 3}, headers=key)
    ).json()
    assert [h["free"] for h in first["items"]] == [3, 2, 1]
    rest = (
        await client.get(
            f"/v1/units/{unit}/capacity-history",
            params={"limit": 3, "cursor": first["next_cursor"]},
            headers=key,
        )
    ).json()
    assert [h["free"] for h in rest["items"]] == [2]
    assert rest["next_cursor"] is None


async def test_report_older_than_latest_is_refused(client: httpx.AsyncClient, seed: Seed) -> None:
    unit = seed.units["leiden-elv-high"]
    old = (utcnow() - timedelta(hours=2)).isoformat()
    r = await client.put(
        f"/v1/units/{unit}/capacity",
        json={"free": 1, "reported_at": old},
        headers=auth(seed.keys["provider"]),
    )
    body = assert_problem(r, 409, type_slug="stale-report")
    assert pointers(body) == ["#/reported_at"]


async def test_bulk_is_all_or_nothing(client: httpx.AsyncClient, seed: Seed, db: Database) -> None:
    before = await report_count(db)
    key = auth(seed.keys["provider"])
    batch = [
        {"unit_id": str(seed.units["leiden-elv-high"]), "free": 1},
        {"unit_id": str(seed.units["leiden-grz"]), "free": 99},
    ]
    r = await client.post("/v1/capacity-reports", json=batch, headers=key)
    assert pointers(assert_problem(r, 422)) == ["#/1/free"]
    assert await report_count(db) == before
    batch[1]["free"] = 3
    r = await client.post("/v1/capacity-reports", json=batch, headers=key)
    assert r.status_code == 201, r.text
    assert [x["free"] for x in r.json()] == [1, 3]
    assert await report_count(db) == before + 2


async def test_bulk_refuses_foreign_and_unknown_units(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    key = auth(seed.keys["provider"])
    foreign = [{"unit_id": str(seed.units["gouda-elv-high"]), "free": 0}]
    assert_problem(await client.post("/v1/capacity-reports", json=foreign, headers=key), 403)
    unknown = [{"unit_id": "00000000-0000-4000-8000-000000000000", "free": 0}]
    r = await client.post("/v1/capacity-reports", json=unknown, headers=key)
    assert pointers(assert_problem(r, 422)) == ["#/0/unit_id"]
    assert_problem(await client.post("/v1/capacity-reports", json=[], headers=key), 422)


async def test_retried_put_with_idempotency_key_writes_once(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    before = await report_count(db)
    headers = {**auth(seed.keys["provider"]), "Idempotency-Key": "report-7f3a"}
    url = f"/v1/units/{seed.units['leiden-elv-high']}/capacity"
    first = await client.put(url, json={"free": 4}, headers=headers)
    again = await client.put(url, json={"free": 4}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await report_count(db) == before + 1
    other = await client.put(url, json={"free": 3}, headers=headers)
    assert_problem(other, 422, type_slug="idempotency-key-reused")
    assert await report_count(db) == before + 1


async def test_idempotency_keys_are_per_api_key(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    url = f"/v1/units/{seed.units['leiden-elv-high']}/capacity"
    await client.put(
        url, json={"free": 4}, headers={**auth(seed.keys["provider"]), "Idempotency-Key": "k1"}
    )
    r = await client.put(
        url, json={"free": 4}, headers={**auth(seed.keys["admin"]), "Idempotency-Key": "k1"}
    )
    assert "idempotent-replayed" not in r.headers


async def test_concurrent_retries_with_one_key_write_once(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    import asyncio

    before = await report_count(db)
    headers = {**auth(seed.keys["provider"]), "Idempotency-Key": "burst-1"}
    url = f"/v1/units/{seed.units['leiden-grz']}/capacity"
    responses = await asyncio.gather(
        *(client.put(url, json={"free": 2}, headers=headers) for _ in range(8))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await report_count(db) == before + 1
