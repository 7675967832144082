"""The LPZ-style capacity snapshot (JSON and CSV) and CSV capacity uploads."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from app.capacity.models import CapacityReport
from app.db import Database, utcnow
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem, pointers

CSV = {"Content-Type": "text/csv"}


async def report_count(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(CapacityReport)) or 0)


async def snapshot(client: httpx.AsyncClient, key: str, **params: Any) -> dict[str, Any]:
    r = await client.get("/v1/capacity-snapshot", params=params, headers=auth(key))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_snapshot_has_one_row_per_unit_with_availability(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    unit = seed.units["leiden-elv-high"]
    key = seed.keys["provider"]
    r = await client.put(
        f"/v1/units/{unit}/capacity", json={"free": 4, "expected_free_24h": 6}, headers=auth(key)
    )
    assert r.status_code == 200, r.text
    body = await snapshot(client, seed.keys["triagist"])
    assert body["count"] == len(seed.units) == len(body["items"])
    rows = {row["unit_id"]: row for row in body["items"]}
    assert set(rows) == {str(u) for u in seed.units.values()}
    row = rows[str(unit)]
    assert row["organisation_id"] == str(seed.organisations["vvt-leiden"])
    assert row["location_id"] == str(seed.locations["leiden"])
    assert (row["care_type"], row["staffed"], row["free"], row["held"]) == ("elv_high", 10, 4, 0)
    assert (row["available"], row["expected_free_24h"]) == (4, 6)
    assert row["accepting"] is True
    assert row["not_accepting_reason"] is None
    assert row["stale"] is False
    assert row["subregion"] == "leiden"


async def test_snapshot_filters_and_marks_stale(client: httpx.AsyncClient, seed: Seed) -> None:
    unit = seed.units["leiden-grz"]
    old = (utcnow() - timedelta(hours=2)).isoformat()
    # The seed reported 10 minutes ago; an older report is refused, so age it through a new unit.
    body = await snapshot(client, seed.keys["analyst"], care_type="grz")
    assert [row["unit_id"] for row in body["items"]] == [str(unit)]
    body = await snapshot(
        client, seed.keys["analyst"], organisation_id=str(seed.organisations["vvt-den-haag"])
    )
    assert [row["unit_id"] for row in body["items"]] == [str(seed.units["den-haag-elv-high"])]
    r = await client.post(
        "/v1/units",
        json={
            "location_id": str(seed.locations["gouda"]),
            "name": "Nooit gemeld",
            "care_type": "elv_low",
            "target_groups": ["somatic"],
            "staffed_capacity": 3,
        },
        headers=auth(seed.keys["admin"]),
    )
    assert r.status_code == 201, r.text
    body = await snapshot(client, seed.keys["analyst"], care_type="elv_low")
    (row,) = body["items"]
    assert (row["stale"], row["reported_at"], row["free"], row["available"]) == (True, None, 0, 0)
    assert old  # the history of a unit stays append-only; staleness follows its latest report


async def test_snapshot_as_csv_has_the_same_rows(client: httpx.AsyncClient, seed: Seed) -> None:
    key = seed.keys["triagist"]
    body = await snapshot(client, key)
    r = await client.get("/v1/capacity-snapshot", headers={**auth(key), "Accept": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["unit_id"] for row in rows] == [row["unit_id"] for row in body["items"]]
    for row, item in zip(rows, body["items"], strict=True):
        assert int(row["available"]) == item["available"]
        assert int(row["free"]) == item["free"]
        assert row["accepting"] == "true"
        assert row["stale"] == ("true" if item["stale"] else "false")


async def test_csv_upload_reports_every_line(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    at = (utcnow() - timedelta(minutes=1)).isoformat()
    text = (
        "unit_id,free,expected_free_24h,reported_at\n"
        f"{seed.units['leiden-elv-high']},7,8,{at}\n"
        f"{seed.units['leiden-grz']},1,,\n"
    )
    r = await client.post(
        "/v1/capacity-reports", content=text, headers={**auth(seed.keys["provider"]), **CSV}
    )
    assert r.status_code == 201, r.text
    assert [(x["free"], x["expected_free_24h"], x["source"]) for x in r.json()] == [
        (7, 8, "csv"),
        (1, None, "csv"),
    ]
    rows = {row["unit_id"]: row for row in (await snapshot(client, seed.keys["triagist"]))["items"]}
    assert rows[str(seed.units["leiden-elv-high"])]["available"] == 7
    assert rows[str(seed.units["leiden-grz"])]["free"] == 1


async def test_csv_upload_names_every_bad_line_and_writes_nothing(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    before = await report_count(db)
    future = (utcnow() + timedelta(hours=1)).isoformat()
    text = (
        "unit_id;free;expected_free_24h;reported_at\n"  # semicolons, as Dutch spreadsheets write
        f"{seed.units['leiden-elv-high']};3;;\n"
        "not-a-uuid;2;;\n"
        f"{seed.units['leiden-grz']};-1;x;yesterday\n"
        "\n"
        f"{seed.units['leiden-grz']};99;;{future}\n"
        f"00000000-0000-0000-0000-000000000001;1;;\n"
        f"{seed.units['leiden-elv-high']};1;;\n"
    )
    r = await client.post(
        "/v1/capacity-reports", content=text, headers={**auth(seed.keys["provider"]), **CSV}
    )
    body = assert_problem(r, 422, type_slug="validation")
    assert pointers(body) == [
        "/lines/3/unit_id",
        "/lines/4/free",
        "/lines/4/expected_free_24h",
        "/lines/4/reported_at",
    ]
    assert await report_count(db) == before
    # Once the lines parse, the unit checks name theirs (duplicate, unknown, capacity, future).
    text = "\n".join(line for i, line in enumerate(text.splitlines()) if i not in (2, 3))
    r = await client.post(
        "/v1/capacity-reports", content=text, headers={**auth(seed.keys["provider"]), **CSV}
    )
    body = assert_problem(r, 422, type_slug="validation")
    assert pointers(body) == [
        "/lines/4/free",  # above staffed capacity
        "/lines/4/reported_at",  # in the future
        "/lines/5/unit_id",  # no such unit
        "/lines/6/unit_id",  # the same unit as line 2
    ]
    assert "first at /lines/2" in body["errors"][3]["detail"]
    assert await report_count(db) == before


async def test_csv_upload_of_another_organisations_unit_is_forbidden(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    before = await report_count(db)
    text = f"unit_id,free\n{seed.units['leiden-elv-high']},3\n{seed.units['den-haag-elv-high']},1\n"
    r = await client.post(
        "/v1/capacity-reports", content=text, headers={**auth(seed.keys["provider"]), **CSV}
    )
    body = assert_problem(r, 403, type_slug="forbidden")
    assert pointers(body) == ["/lines/3/unit_id"]
    r = await client.post(
        "/v1/capacity-reports", content=text, headers={**auth(seed.keys["triagist"]), **CSV}
    )
    assert_problem(r, 403, type_slug="forbidden")
    assert await report_count(db) == before


async def test_csv_header_and_encoding_problems(client: httpx.AsyncClient, seed: Seed) -> None:
    key = {**auth(seed.keys["provider"]), **CSV}
    r = await client.post("/v1/capacity-reports", content="unit,places\nx,1\n", headers=key)
    body = assert_problem(r, 422)
    assert pointers(body) == ["/lines/1"]
    r = await client.post("/v1/capacity-reports", content=b"unit_id,free\n\xff,1\n", headers=key)
    assert_problem(r, 400, type_slug="malformed-request")
    r = await client.post("/v1/capacity-reports", content="unit_id,free\n", headers=key)
    assert pointers(assert_problem(r, 422)) == ["/lines/2"]


async def test_snapshot_posted_back_as_csv_round_trips(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    provider = seed.keys["provider"]
    own = str(seed.organisations["vvt-leiden"])
    before = await snapshot(client, provider, organisation_id=own)
    assert len(before["items"]) == 2
    r = await client.get(
        "/v1/capacity-snapshot",
        params={"organisation_id": own},
        headers={**auth(provider), "Accept": "text/csv"},
    )
    reports = await report_count(db)
    r = await client.post("/v1/capacity-reports", content=r.text, headers={**auth(provider), **CSV})
    assert r.status_code == 201, r.text
    assert await report_count(db) == reports + 2
    after = await snapshot(client, provider, organisation_id=own)

    def state(doc: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k != "age_minutes"} for row in doc["items"]]

    assert state(after) == state(before)


async def test_csv_upload_retried_with_its_idempotency_key_writes_once(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    headers = {**auth(seed.keys["provider"]), **CSV, "Idempotency-Key": "csv-upload-1"}
    text = f"unit_id,free\n{seed.units['leiden-grz']},2\n"
    first = await client.post("/v1/capacity-reports", content=text, headers=headers)
    assert first.status_code == 201, first.text
    count = await report_count(db)
    again = await client.post("/v1/capacity-reports", content=text, headers=headers)
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert await report_count(db) == count
    other = await client.post(
        "/v1/capacity-reports", content=text.replace(",2", ",3"), headers=headers
    )
    assert_problem(other, 422, type_slug="idempotency-key-reused")


async def test_a_nul_byte_in_a_csv_upload_is_named_by_line(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    """PostgreSQL text cannot hold NUL: an external identifier with one must be a 422, not a 500."""
    text = "external_id,free\nunit-a,1\nunit-\x00b,2\n"
    r = await client.post(
        "/v1/capacity-reports", content=text, headers={**auth(seed.keys["provider"]), **CSV}
    )
    assert r.status_code == 422, r.text
    assert [e["pointer"] for e in r.json()["errors"]] == ["/lines/3"]
