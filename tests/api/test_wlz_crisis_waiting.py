"""GET /v1/kpis/wlz-crisis-waiting: patients waiting for a Wlz-crisis place at each local
midnight, as JSON and CSV, scoped to the caller's region (docs/domain.md §6.7)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta

import httpx

from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType
from app.kpi import formulas as f
from tests.conftest import auth
from tests.factories import Seed, add_unit, placement_body
from tests.helpers import assert_problem, pointers

TODAY = f.local_date(utcnow())
PERIOD = {
    "from": (TODAY - timedelta(days=5)).isoformat(),
    "to": (TODAY + timedelta(days=1)).isoformat(),
}
# every request is made at local noon four days ago
NOON = datetime.combine(TODAY - timedelta(days=4), time(12), tzinfo=f.TZ)


async def _request(client: httpx.AsyncClient, seed: Seed, care_type: str) -> str:
    body = placement_body(
        care_type=care_type,
        origin_setting="home",
        subregion="leiden",
        occurred_at=NOON.isoformat(),
        consent_given_at=(NOON - timedelta(minutes=1)).isoformat(),
        triage={"care_type": care_type, "rule_set": "west-2026.1"},
    )
    r = await client.post("/v1/placements", json=body, headers=auth(seed.keys["referrer"]))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_patients_waiting_for_a_wlz_crisis_place_per_day(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    unit = await add_unit(
        db,
        settings,
        seed.locations["leiden"],
        name="Crisisbed",
        care_type=CareType.WLZ_CRISIS,
        free=2,
    )
    await _request(client, seed, "wlz_crisis")  # still waiting
    gone = await _request(client, seed, "wlz_crisis")  # cancelled now: waited until today
    placed = await _request(client, seed, "wlz_crisis")  # placed an hour later: never waited
    await _request(client, seed, "elv_high")  # another care type
    at = (NOON + timedelta(hours=1)).isoformat()
    r = await client.post(
        f"/v1/placements/{placed}/holds",
        json={"unit_id": str(unit), "occurred_at": at},
        headers=auth(seed.keys["triagist"]),
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/placements/{placed}/accept",
        json={"occurred_at": at},
        headers=auth(seed.keys["provider"]),
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"/v1/placements/{gone}/cancel",
        json={"reason": "recovered"},
        headers=auth(seed.keys["referrer"]),
    )
    assert r.status_code == 200, r.text

    r = await client.get(
        "/v1/kpis/wlz-crisis-waiting", params=PERIOD, headers=auth(seed.keys["triagist"])
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kpi"] == "wlz_crisis_waiting"
    # the midnights of the two days before the requests find nobody; the next four find two
    assert [(x["day"], x["waiting"]) for x in body["rows"]] == [
        ((TODAY - timedelta(days=5 - i)).isoformat(), 0 if i < 2 else 2) for i in range(6)
    ]
    assert (body["total"]["days"], body["total"]["patient_days"], body["total"]["peak"]) == (
        6,
        8,
        2,
    )

    lines = list(
        csv.DictReader(
            io.StringIO(
                (
                    await client.get(
                        "/v1/kpis/wlz-crisis-waiting",
                        params=PERIOD,
                        headers={**auth(seed.keys["admin"]), "Accept": "text/csv"},
                    )
                ).text
            )
        )
    )
    assert [(x["line"], x["waiting"]) for x in lines] == [
        *[("row", "0")] * 2,
        *[("row", "2")] * 4,
        ("total", ""),
    ]
    assert lines[-1]["patient_days"] == "8"

    # analysts see the small daily counts suppressed
    analyst = (
        await client.get(
            "/v1/kpis/wlz-crisis-waiting", params=PERIOD, headers=auth(seed.keys["analyst"])
        )
    ).json()
    assert [x["suppressed"] for x in analyst["rows"]] == [False] * 2 + [True] * 4
    assert analyst["total"]["suppressed"] is True
    assert analyst["suppressed_cells"] == 5

    # another subregion has nobody waiting; bad input is a problem document
    other = await client.get(
        "/v1/kpis/wlz-crisis-waiting",
        params={**PERIOD, "subregion": "gouda"},
        headers=auth(seed.keys["triagist"]),
    )
    assert other.status_code == 200, other.text
    assert {x["waiting"] for x in other.json()["rows"]} == {0}
    bad = await client.get(
        "/v1/kpis/wlz-crisis-waiting",
        params={**PERIOD, "group_by": "month"},
        headers=auth(seed.keys["triagist"]),
    )
    assert bad.status_code == 200  # group_by is not a parameter of this KPI: ignored
    assert_problem(
        await client.get(
            "/v1/kpis/wlz-crisis-waiting",
            params={"from": PERIOD["to"], "to": PERIOD["from"]},
            headers=auth(seed.keys["triagist"]),
        ),
        422,
    )
    assert "query:subregion" in pointers(
        assert_problem(
            await client.get(
                "/v1/kpis/wlz-crisis-waiting",
                params={**PERIOD, "subregion": "nowhere"},
                headers=auth(seed.keys["triagist"]),
            ),
            422,
        )
    )
    assert_problem(
        await client.get(
            "/v1/kpis/wlz-crisis-waiting", params=PERIOD, headers=auth(seed.keys["provider"])
        ),
        403,
    )
