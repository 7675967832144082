"""The referral's patient group and advance-care-planning answer: stored, shown on reads, and
counted by GET /v1/kpis/advance-care-planning and lead times by patient group
(docs/domain.md §6.8)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx

from app.db import utcnow
from app.kpi import formulas as f
from tests.conftest import auth
from tests.factories import Seed, placement_body
from tests.helpers import assert_problem, pointers

TODAY = f.local_date(utcnow())
PERIOD = {
    "from": (TODAY - timedelta(days=5)).isoformat(),
    "to": (TODAY + timedelta(days=1)).isoformat(),
}


async def _refer(client: httpx.AsyncClient, seed: Seed, birth_year: int, **extra: Any) -> Any:
    r = await client.post(
        "/v1/placements",
        json=placement_body(birth_year=birth_year, **extra),
        headers=auth(seed.keys["referrer"]),
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_advance_care_planning_share_and_patient_groups(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    year = TODAY.year
    first = await _refer(
        client,
        seed,
        year - 80,
        patient_group="dementia",
        advance_care_planning="recorded",
    )
    assert (first["patient_group"], first["advance_care_planning"]) == ("dementia", "recorded")
    read = await client.get(f"/v1/placements/{first['id']}", headers=auth(seed.keys["triagist"]))
    assert read.status_code == 200, read.text
    assert (read.json()["patient_group"], read.json()["advance_care_planning"]) == (
        "dementia",
        "recorded",
    )
    await _refer(
        client, seed, year - 70, patient_group="frail_elderly", advance_care_planning="not_recorded"
    )
    unknown = await _refer(client, seed, year - 90)  # neither field given
    assert (unknown["patient_group"], unknown["advance_care_planning"]) == (None, None)
    await _refer(client, seed, year - 40, advance_care_planning="recorded")  # under 65

    r = await client.get(
        "/v1/kpis/advance-care-planning", params=PERIOD, headers=auth(seed.keys["triagist"])
    )
    assert r.status_code == 200, r.text
    total = r.json()["total"]
    assert (total["referrals"], total["recorded"], total["not_recorded"], total["unknown"]) == (
        3,
        1,
        1,
        1,
    )
    assert (total["share"], total["share_known"]) == (1 / 3, 0.5)

    by_group = await client.get(
        "/v1/kpis/advance-care-planning",
        params={**PERIOD, "group_by": "patient_group"},
        headers={**auth(seed.keys["admin"]), "Accept": "text/csv"},
    )
    assert by_group.status_code == 200
    lines = list(csv.DictReader(io.StringIO(by_group.text)))
    assert [(x["line"], x["group"], x["referrals"], x["recorded"]) for x in lines] == [
        ("row", "dementia", "1", "1"),
        ("row", "frail_elderly", "1", "0"),
        ("row", "unknown", "1", "0"),
        ("total", "", "3", "1"),
    ]

    lead = await client.get(
        "/v1/kpis/lead-times",
        params={**PERIOD, "group_by": "patient_group"},
        headers=auth(seed.keys["triagist"]),
    )
    assert lead.status_code == 200, lead.text
    assert [(x["group"], x["requests"]) for x in lead.json()["rows"]] == [
        ("dementia", 1),
        ("frail_elderly", 1),
        ("unknown", 2),
    ]

    analyst = (
        await client.get(
            "/v1/kpis/advance-care-planning", params=PERIOD, headers=auth(seed.keys["analyst"])
        )
    ).json()
    assert (analyst["total"]["suppressed"], analyst["total"]["share"]) == (True, None)

    bad = await client.post(
        "/v1/placements",
        json=placement_body(patient_group="elderly", advance_care_planning="yes"),
        headers=auth(seed.keys["referrer"]),
    )
    assert {"#/patient_group", "#/advance_care_planning"} <= set(pointers(assert_problem(bad, 422)))
    for params in (
        {**PERIOD, "group_by": "patient_group"},  # not a dimension of wrong-bed days
    ):
        wrong = await client.get(
            "/v1/kpis/wrong-bed-days", params=params, headers=auth(seed.keys["triagist"])
        )
        assert "query:group_by" in pointers(assert_problem(wrong, 422))
    low = await client.get(
        "/v1/kpis/advance-care-planning",
        params={**PERIOD, "age_min": 50},
        headers=auth(seed.keys["triagist"]),
    )
    assert "query:age_min" in pointers(assert_problem(low, 422))
    assert_problem(
        await client.get(
            "/v1/kpis/advance-care-planning", params=PERIOD, headers=auth(seed.keys["provider"])
        ),
        403,
    )


async def test_between_the_cracks(client: httpx.AsyncClient, seed: Seed) -> None:
    def ago(hours: float) -> dict[str, str]:
        at = utcnow() - timedelta(hours=hours)
        return {
            "occurred_at": at.isoformat(),
            "consent_given_at": (at - timedelta(minutes=1)).isoformat(),
        }

    await _refer(client, seed, 1940, patient_group="dementia", **ago(30))  # open past 24 h
    await _refer(client, seed, 1940, patient_identifier="mrn-cracks-1", **ago(2))  # within
    gone = await _refer(client, seed, 1940, **ago(3))
    r = await client.post(
        f"/v1/placements/{gone['id']}/cancel",
        json={"reason": "recovered"},
        headers=auth(seed.keys["referrer"]),
    )
    assert r.status_code == 200, r.text
    await _refer(client, seed, 1940, patient_identifier="mrn-cracks-1", **ago(1))  # again

    r = await client.get(
        "/v1/kpis/between-the-cracks", params=PERIOD, headers=auth(seed.keys["triagist"])
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kpi"] == "between_the_cracks"
    assert body["norms_hours"]["elv_high"] == 24
    total = body["total"]
    assert (total["requests"], total["over_norm"]) == (4, 1)
    assert (total["cancelled_without_place"], total["re_referrals"]) == (1, 1)

    by_group = await client.get(
        "/v1/kpis/between-the-cracks",
        params={**PERIOD, "group_by": "patient_group"},
        headers={**auth(seed.keys["admin"]), "Accept": "text/csv"},
    )
    assert by_group.status_code == 200
    lines = list(csv.DictReader(io.StringIO(by_group.text)))
    assert [(x["line"], x["group"], x["requests"], x["over_norm"]) for x in lines] == [
        ("row", "dementia", "1", "1"),
        ("row", "unknown", "3", "0"),
        ("total", "", "4", "1"),
    ]
    analyst = (
        await client.get(
            "/v1/kpis/between-the-cracks", params=PERIOD, headers=auth(seed.keys["analyst"])
        )
    ).json()
    assert (analyst["total"]["suppressed"], analyst["total"]["over_norm"]) == (True, None)
    bad = await client.get(
        "/v1/kpis/between-the-cracks",
        params={**PERIOD, "group_by": "nothing"},
        headers=auth(seed.keys["triagist"]),
    )
    assert "query:group_by" in pointers(assert_problem(bad, 422))
    assert_problem(
        await client.get(
            "/v1/kpis/between-the-cracks", params=PERIOD, headers=auth(seed.keys["provider"])
        ),
        403,
    )
