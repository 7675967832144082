"""``/v1/partners`` (admin) and partner units in the search, against the cache directly.

The live two-region behaviour (pulls, the stream, forwarded holds) is tests/e2e/test_federation.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from app.config import Settings
from app.db import Database, utcnow
from app.exchange import federation
from app.exchange.models import Partner
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem

KEY = "jp_partner_issued_key_0123456789"


async def _create(client: httpx.AsyncClient, seed: Seed, **body: Any) -> httpx.Response:
    payload = {"label": "Zeeland", "base_url": "https://zeeland.example", "key": KEY, **body}
    return await client.post("/v1/partners", json=payload, headers=auth(seed.keys["admin"]))


async def test_admin_registers_lists_and_removes_a_partner(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings
) -> None:
    created = await _create(client, seed, base_url="https://zeeland.example/")
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["Location"] == f"/v1/partners/{body['id']}"
    assert body["base_url"] == "https://zeeland.example"
    assert body["reachable"] is False
    assert body["last_fetch_at"] is None
    assert KEY not in created.text  # never shown again
    async with db.sessionmaker() as session:
        sealed = await session.scalar(select(Partner.key_sealed))
    assert sealed is not None
    assert KEY not in sealed
    assert federation.secret_box(settings).open(sealed) == KEY

    again = await _create(client, seed)
    assert_problem(again, 409)
    listed = await client.get("/v1/partners", headers=auth(seed.keys["admin"]))
    assert [p["id"] for p in listed.json()["items"]] == [body["id"]]
    assert listed.json()["next_cursor"] is None

    gone = await client.delete(f"/v1/partners/{body['id']}", headers=auth(seed.keys["admin"]))
    assert gone.status_code == 200, gone.text
    listed = await client.get("/v1/partners", headers=auth(seed.keys["admin"]))
    assert listed.json()["items"] == []
    twice = await client.delete(f"/v1/partners/{body['id']}", headers=auth(seed.keys["admin"]))
    assert_problem(twice, 404)


async def test_only_admins_manage_partners(client: httpx.AsyncClient, seed: Seed) -> None:
    for role in ("triagist", "referrer", "provider", "analyst"):
        r = await client.post(
            "/v1/partners",
            json={"label": "Zeeland", "base_url": "https://zeeland.example", "key": KEY},
            headers=auth(seed.keys[role]),
        )
        assert_problem(r, 403)
        assert_problem(await client.get("/v1/partners", headers=auth(seed.keys[role])), 403)
    r = await client.delete(f"/v1/partners/{uuid.uuid4()}", headers=auth(seed.keys["triagist"]))
    assert_problem(r, 403)


async def test_malformed_partners_are_refused_with_the_field(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    for body, field in [
        ({"base_url": "ftp://zeeland.example"}, "base_url"),
        ({"base_url": "https://zeeland.example/?token=x"}, "base_url"),
        ({"base_url": "https://user:pw@zeeland.example"}, "base_url"),
        ({"label": "   "}, "label"),
        ({"label": "a\x00b"}, "label"),
        ({"key": "short"}, "key"),
    ]:
        r = await _create(client, seed, **body)
        problem = assert_problem(r, 422)
        assert field in r.text, (body, problem)


def _row(unit_id: uuid.UUID, **over: Any) -> dict[str, Any]:
    now = utcnow()
    row: dict[str, Any] = {
        "unit_id": str(unit_id),
        "unit_name": "ELV HC Goes",
        "care_type": "elv_high",
        "target_groups": ["somatic"],
        "features": [],
        "sex_policy": "any",
        "organisation_id": str(uuid.uuid4()),
        "organisation_name": "Zorgstroom",
        "location_id": str(uuid.uuid4()),
        "location_name": "Huis Goes",
        "address": "Markt 1",
        "postcode": "4461 AA",
        "municipality": "Goes",
        "phone": None,
        "latitude": 51.50,
        "longitude": 3.89,
        "subregion": "oosterschelde",
        "staffed": 10,
        "free": 2,
        "held": 0,
        "available": 2,
        "expected_free_24h": None,
        "accepting": True,
        "reported_at": now.isoformat(),
        "stale": False,
    }
    row.update(over)
    return row


async def test_partner_units_follow_the_filters_and_age_when_the_partner_is_down(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    created = await _create(client, seed)
    partner_id = uuid.UUID(created.json()["id"])
    open_unit, female_only, full, stale = (uuid.uuid4() for _ in range(4))
    await federation.store_snapshot(
        db,
        partner_id,
        [
            _row(open_unit),
            _row(female_only, sex_policy="female"),
            _row(full, free=1, held=1, available=0),
            _row(stale, stale=True),
            _row(uuid.uuid4(), care_type="grz"),
        ],
        now=utcnow(),
    )

    async def search(**params: str) -> dict[str, Any]:
        r = await client.get(
            "/v1/availability",
            params={"care_type": "elv_high", **params},
            headers=auth(seed.keys["triagist"]),
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def partner_ids(body: dict[str, Any]) -> set[uuid.UUID]:
        return {uuid.UUID(h["unit_id"]) for h in body["items"] if h["source"] is not None}

    assert partner_ids(await search()) == set()  # the own region only
    found = await search(include_partners="true")
    assert partner_ids(found) == {open_unit, female_only}
    own = [h for h in found["items"] if h["source"] is None]
    assert own
    assert found["items"][: len(own)] == own
    assert found["partners"][0]["reachable"] is True
    assert partner_ids(await search(include_partners="true", sex="male")) == {open_unit}
    assert partner_ids(await search(include_partners="true", include_stale="true")) == {
        open_unit,
        female_only,
        stale,
    }

    await federation.mark_unreachable(db, partner_id, "ConnectError: refused", now=utcnow())
    down = await search(include_partners="true")
    assert partner_ids(down) == set()
    assert down["partners"][0]["reachable"] is False
    assert down["partners"][0]["last_error"] == "ConnectError: refused"
    aged = await search(include_partners="true", include_stale="true")
    assert partner_ids(aged) == {open_unit, female_only, stale}
    for hit in aged["items"]:
        if hit["source"] is not None:
            assert hit["stale"] is True
            assert hit["source"]["reachable"] is False

    # A's own exports never carry partner units (no loops between regions).
    snap = await client.get("/v1/capacity-snapshot", headers=auth(seed.keys["analyst"]))
    assert {uuid.UUID(i["unit_id"]) for i in snap.json()["items"]} == set(seed.units.values())
