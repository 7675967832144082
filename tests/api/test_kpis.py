"""KPI API: JSON and CSV carry the same numbers, analysts get suppressed aggregates only,
baselines give targets, inflow reports are validated and idempotent, and bad input is a 422."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx

from app.config import Settings
from app.db import Database, utcnow
from app.kpi import formulas as f
from app.web.dashboard import SPECS  # the KPI specs and report-now's
from tests.conftest import auth
from tests.factories import Seed, create_placements
from tests.helpers import assert_problem, pointers

Params = dict[str, str | int]
TODAY = f.local_date(utcnow())
PERIOD: Params = {
    "from": (TODAY - timedelta(days=20)).isoformat(),
    "to": (TODAY + timedelta(days=1)).isoformat(),
}


async def _ready_patients(db: Database, settings: Settings, seed: Seed, n: int, days: int) -> None:
    ready = utcnow() - timedelta(days=days, hours=1)
    await create_placements(
        db,
        settings,
        seed,
        n,
        medically_ready_at=ready.isoformat(),
        subregion="leiden",
    )


def _expected_days(days_ago: int) -> int:
    now = utcnow()
    ready = now - timedelta(days=days_ago, hours=1)
    return f.local_day(now) - f.local_day(ready)


async def test_wrong_bed_days_json_and_csv_agree(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    await _ready_patients(db, settings, seed, 6, 3)
    params: Params = {**PERIOD, "group_by": "subregion", "age_min": 75}
    r = await client.get(
        "/v1/kpis/wrong-bed-days", params=params, headers=auth(seed.keys["triagist"])
    )
    assert r.status_code == 200, r.text
    body = r.json()
    per_patient = _expected_days(3)
    assert body["kpi"] == "wrong_bed_days"
    assert body["definition_version"] == f.DEFINITION_VERSION
    assert body["definition"] == "broad"
    assert body["period"] == {**PERIOD, "days": 21, "timezone": "Europe/Amsterdam"}
    assert body["total"]["days"] == 6 * per_patient
    assert body["total"]["patients"] == 6
    assert body["total"]["open_intervals"] == 6
    assert body["total"]["backdated"] == 6  # ready more than 48 h before it was recorded
    assert [(row["group"], row["days"]) for row in body["rows"]] == [("leiden", 6 * per_patient)]
    assert body["targets"] == []
    c = await client.get(
        "/v1/kpis/wrong-bed-days",
        params=params,
        headers={**auth(seed.keys["triagist"]), "Accept": "text/csv"},
    )
    assert c.status_code == 200
    assert c.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(c.text)))
    assert [(x["line"], x["group"], int(x["days"]), int(x["patients"])) for x in lines] == [
        ("row", "leiden", 6 * per_patient, 6),
        ("total", "", 6 * per_patient, 6),
    ]
    assert {x["definition_version"] for x in lines} == {f.DEFINITION_VERSION}
    assert {(x["period_from"], x["period_to"]) for x in lines} == {(PERIOD["from"], PERIOD["to"])}


async def test_analysts_get_small_cells_suppressed_and_no_patient_keys(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    await _ready_patients(db, settings, seed, 2, 2)
    r = await client.get(
        "/v1/kpis/wrong-bed-days",
        params={**PERIOD, "group_by": "month"},
        headers=auth(seed.keys["analyst"]),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"]["suppressed"] is True
    assert body["total"]["days"] is None
    assert body["total"]["patients"] is None
    assert body["suppressed_cells"] >= 1
    assert "patient_key" not in r.text
    c = await client.get(
        "/v1/kpis/wrong-bed-days",
        params=PERIOD,
        headers={**auth(seed.keys["analyst"]), "Accept": "text/csv"},
    )
    (line,) = list(csv.DictReader(io.StringIO(c.text)))[-1:]
    assert (line["days"], line["suppressed"]) == ("", "True")
    # the triagist sees the same cell
    t = await client.get(
        "/v1/kpis/wrong-bed-days", params=PERIOD, headers=auth(seed.keys["triagist"])
    )
    assert t.json()["total"]["patients"] == 2


async def test_other_placement_kpis_answer_in_json_and_csv(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    await create_placements(db, settings, seed, 5)
    extra: list[tuple[str, Params]] = [
        ("/v1/kpis/lead-times", {}),
        ("/v1/kpis/escalations", {"group_by": "care_type"}),
        ("/v1/kpis/ggz-crisis-within-norm", {"group_by": "week"}),
        ("/v1/kpis/capacity", {"group_by": "subregion"}),
        ("/v1/kpis/inflow", {"age_min": 75}),
    ]
    for path, params in extra:
        r = await client.get(path, params={**PERIOD, **params}, headers=auth(seed.keys["admin"]))
        assert r.status_code == 200, (path, r.text)
        c = await client.get(
            path,
            params={**PERIOD, **params},
            headers={**auth(seed.keys["admin"]), "Accept": "text/csv"},
        )
        assert c.status_code == 200, (path, c.text)
        rows = list(csv.DictReader(io.StringIO(c.text)))
        assert all(x["definition_version"] == f.DEFINITION_VERSION for x in rows)
    lead = (
        await client.get("/v1/kpis/lead-times", params=PERIOD, headers=auth(seed.keys["admin"]))
    ).json()
    assert [(x["group"], x["requests"], x["triaged"]) for x in lead["rows"]] == [("elv_high", 5, 5)]
    esc = (
        await client.get("/v1/kpis/escalations", params=PERIOD, headers=auth(seed.keys["admin"]))
    ).json()
    assert (esc["total"]["requests"], esc["total"]["escalated"]) == (5, 0)
    cap = (
        await client.get(
            "/v1/kpis/capacity",
            params={"from": (TODAY - timedelta(days=1)).isoformat(), "to": TODAY.isoformat()},
            headers=auth(seed.keys["admin"]),
        )
    ).json()
    # the seed's units were created today: none existed at yesterday's midnight
    assert cap["total"]["unit_moments"] == 0
    ggz = (
        await client.get(
            "/v1/kpis/ggz-crisis-within-norm", params=PERIOD, headers=auth(seed.keys["admin"])
        )
    ).json()
    assert ggz["targets"][0]["rule"] == "share within norm >= 0.90"


async def test_kpis_need_an_analyst_triagist_or_admin_key(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    for role in ("provider", "referrer"):
        r = await client.get(
            "/v1/kpis/wrong-bed-days", params=PERIOD, headers=auth(seed.keys[role])
        )
        assert_problem(r, 403)
    assert_problem(await client.get("/v1/kpis/inflow", params=PERIOD), 401)


async def test_every_kpi_spec_is_a_route_that_checks_its_roles(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    """/v1/kpis/<slug> answers each spec's question to its roles only, as JSON and as CSV."""
    for spec in SPECS.values():
        path = f"/v1/kpis/{spec.slug}"
        for role in ("provider", "referrer"):
            assert_problem(
                await client.get(path, params=PERIOD, headers=auth(seed.keys[role])), 403
            )
        r = await client.get(path, params=PERIOD, headers=auth(seed.keys["analyst"]))
        assert r.status_code == 200, (path, r.text)
        assert r.json()["kpi"] == spec.name
        if spec.routed:
            headers = {**auth(seed.keys["triagist"]), "Accept": "text/csv"}
            r = await client.get(path, params=PERIOD, headers=headers)
            assert r.headers["content-type"].startswith("text/csv"), path
            assert r.text.startswith("kpi,definition_version,period_from,period_to,line"), path


async def test_malformed_kpi_questions_are_422_naming_the_parameter(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    key = auth(seed.keys["analyst"])
    cases: list[tuple[str, Params, str]] = [
        ("/v1/kpis/wrong-bed-days", {"from": "2026-02-01", "to": "2026-02-01"}, "query:to"),
        ("/v1/kpis/wrong-bed-days", {"from": "2026-02-01", "to": "2026-01-01"}, "query:to"),
        ("/v1/kpis/wrong-bed-days", {"from": "2020-01-01", "to": "2026-01-01"}, "query:to"),
        ("/v1/kpis/wrong-bed-days", {"from": "2001-01-01", "to": "2002-01-01"}, "query:from"),
        ("/v1/kpis/wrong-bed-days", {"from": "2040-06-01", "to": "2042-01-01"}, "query:to"),
        ("/v1/kpis/wrong-bed-days", {**PERIOD, "group_by": "planet"}, "query:group_by"),
        ("/v1/kpis/capacity", {**PERIOD, "group_by": "hospital"}, "query:group_by"),
        ("/v1/kpis/capacity", {"from": "2025-01-01", "to": "2026-06-01"}, "query:to"),
        ("/v1/kpis/inflow", {**PERIOD, "group_by": "care_type"}, "query:group_by"),
        ("/v1/kpis/wrong-bed-days", {"to": "2026-01-01"}, "query:from"),
        ("/v1/kpis/wrong-bed-days", {**PERIOD, "from": "yesterday"}, "query:from"),
        ("/v1/kpis/wrong-bed-days", {**PERIOD, "definition": "wide"}, "query:definition"),
        ("/v1/kpis/wrong-bed-days", {**PERIOD, "age_min": "-1"}, "query:age_min"),
        ("/v1/kpis/wrong-bed-days", {**PERIOD, "subregion": "atlantis"}, "query:subregion"),
        ("/v1/kpis/lead-times", {**PERIOD, "hospital": "not-a-uuid"}, "query:hospital"),
        ("/v1/kpis/inflow", {**PERIOD, "subregion": "a\x00b"}, "query:subregion"),
    ]
    for path, params, pointer in cases:
        r = await client.get(path, params=params, headers=key)
        body = assert_problem(r, 422)
        assert pointer in pointers(body), (path, params, body)


async def test_baselines_give_targets_for_a_year(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    baselines = [
        {
            "kpi": "wrong_bed_days",
            "year": 2022,
            "scope": "age75+/broad",
            "value": 8000,
            "source": "DHD 2022, ROAZ West share (demo figure)",
        },
        {"kpi": "inflow", "year": 2022, "scope": "seh", "value": 36500, "source": "demo"},
    ]
    r = await client.put("/v1/kpi-baselines", json=baselines, headers=auth(seed.keys["admin"]))
    assert r.status_code == 200, r.text
    assert [b["scope"] for b in r.json()] == ["age75+/broad", "seh"]
    again = [{**baselines[0], "value": 8100}]
    r = await client.put("/v1/kpi-baselines", json=again, headers=auth(seed.keys["admin"]))
    assert r.json()[0]["value"] == 8100
    listed = await client.get("/v1/kpi-baselines", headers=auth(seed.keys["analyst"]))
    assert [(b["kpi"], b["value"]) for b in listed.json()] == [
        ("inflow", 36500),
        ("wrong_bed_days", 8100),
    ]
    assert_problem(
        await client.put("/v1/kpi-baselines", json=baselines, headers=auth(seed.keys["analyst"])),
        403,
    )
    assert_problem(
        await client.put(
            "/v1/kpi-baselines",
            json=[{**baselines[0], "value": -1}],
            headers=auth(seed.keys["admin"]),
        ),
        422,
    )
    assert_problem(
        await client.put(
            "/v1/kpi-baselines", json=baselines + baselines[:1], headers=auth(seed.keys["admin"])
        ),
        422,
    )
    await _ready_patients(db, settings, seed, 5, 2)
    year = TODAY.year
    r = await client.get(
        "/v1/kpis/wrong-bed-days",
        params={"from": f"{year}-01-01", "to": f"{year + 1}-01-01", "age_min": 75},
        headers=auth(seed.keys["analyst"]),
    )
    (target,) = r.json()["targets"]
    path = 8100 * (1 - 0.25 * min(year - 2022, 8) / 8)
    assert target["value"] == path
    assert target["baseline_source"] == "DHD 2022, ROAZ West share (demo figure)"
    assert target["measured"] == r.json()["total"]["days"]
    assert target["on_track"] is True
    # not a 75+ broad question: no target
    r = await client.get(
        "/v1/kpis/wrong-bed-days",
        params={"from": f"{year}-01-01", "to": f"{year + 1}-01-01"},
        headers=auth(seed.keys["analyst"]),
    )
    assert r.json()["targets"] == []


def _report(**overrides: Any) -> dict[str, Any]:
    start = TODAY - timedelta(days=2)
    line = {
        "period_start": start.isoformat(),
        "period_end": (start + timedelta(days=1)).isoformat(),
        "subregion": "leiden",
        "age_band": "85+",
        "urgency_native": "U3",
        "contact_type": "registration",
        "count": 7,
    }
    line.update(overrides)
    return {"source": "seh", "lines": [line]}


async def test_inflow_reports_are_validated_and_a_resend_replaces(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    key = auth(seed.keys["referrer"])  # the hospital's key reports its ED
    r = await client.post("/v1/inflow-reports", json=_report(), headers=key)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 1, "inserted": 1, "replaced": 0}
    r = await client.post("/v1/inflow-reports", json=_report(count=9), headers=key)
    assert r.json() == {"received": 1, "inserted": 0, "replaced": 1}
    answer = await client.get(
        "/v1/kpis/inflow",
        params={**PERIOD, "age_min": 75, "group_by": "subregion"},
        headers=auth(seed.keys["triagist"]),
    )
    body = answer.json()
    assert [(x["source"], x["group"], x["count"]) for x in body["rows"]] == [("seh", "leiden", 9)]
    assert [(x["source"], x["count"]) for x in body["totals"]] == [("seh", 9)]
    invalid: list[tuple[dict[str, Any], str]] = [
        ({"count": -1}, "#/lines/0/count"),
        ({"age_band": "75+"}, "#/lines/0/age_band"),
        ({"period_end": (TODAY + timedelta(days=5)).isoformat()}, "#/lines/0/period_end"),
        ({"period_start": (TODAY - timedelta(days=60)).isoformat()}, "#/lines/0/period_end"),
        ({"subregion": "atlantis"}, "#/lines/0/subregion"),
        ({"contact_type": "deployment"}, "#/lines/0/contact_type"),
        ({"urgency_native": "A1"}, "#/lines/0/urgency_native"),
    ]
    for overrides, pointer in invalid:
        r = await client.post("/v1/inflow-reports", json=_report(**overrides), headers=key)
        assert pointer in pointers(assert_problem(r, 422)), (overrides, r.text)
    bad_source = {**_report(), "source": "xyz"}
    assert_problem(await client.post("/v1/inflow-reports", json=bad_source, headers=key), 422)
    wrong_kind = {**_report(), "source": "rav"}
    wrong_kind["lines"] = _report(contact_type="deployment", urgency_native="A1")["lines"]
    r = await client.post("/v1/inflow-reports", json=wrong_kind, headers=key)
    assert "#/source" in pointers(assert_problem(r, 422))
    twice = _report()
    twice["lines"] = twice["lines"] * 2
    assert_problem(await client.post("/v1/inflow-reports", json=twice, headers=key), 422)
    other = {**_report(), "organisation_id": str(seed.organisations["vvt-leiden"])}
    assert_problem(await client.post("/v1/inflow-reports", json=other, headers=key), 403)
    assert_problem(
        await client.post("/v1/inflow-reports", json=_report(), headers=auth(seed.keys["admin"])),
        422,
    )
    assert_problem(
        await client.post("/v1/inflow-reports", json=_report(), headers=auth(seed.keys["analyst"])),
        403,
    )
