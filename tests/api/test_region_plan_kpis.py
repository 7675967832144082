"""Respite and observation beds with their admission guarantee, acute VVT inflow, ambulance rides
of all ages against their own target, and wrong-bed days of GGZ clinics counted apart
(docs/domain.md §3, §6.1, §6.2, §6.5)."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import httpx

from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType
from app.kpi import formulas as f
from tests.conftest import auth
from tests.factories import Seed, add_unit, create_placements, placement_body
from tests.helpers import assert_problem, pointers

TODAY = f.local_date(utcnow())
PERIOD = {
    "from": (TODAY - timedelta(days=5)).isoformat(),
    "to": (TODAY + timedelta(days=1)).isoformat(),
}


async def _post(
    client: httpx.AsyncClient, key: str, path: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(path, json=body, headers=auth(key))


async def _respite_request(
    client: httpx.AsyncClient, seed: Seed, care_type: str, hours_ago: float
) -> str:
    at = utcnow() - timedelta(hours=hours_ago)
    body = placement_body(
        care_type=care_type,
        origin_setting="home",
        subregion="leiden",
        occurred_at=at.isoformat(),
        consent_given_at=(at - timedelta(minutes=1)).isoformat(),
        triage={"care_type": care_type, "rule_set": "west-2026.1"},
    )
    r = await client.post("/v1/placements", json=body, headers=auth(seed.keys["referrer"]))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _place(
    client: httpx.AsyncClient, seed: Seed, pid: str, unit: str, hours_ago: float
) -> None:
    at = (utcnow() - timedelta(hours=hours_ago)).isoformat()
    r = await _post(
        client,
        seed.keys["triagist"],
        f"/v1/placements/{pid}/holds",
        {"unit_id": unit, "occurred_at": at},
    )
    assert r.status_code == 201, r.text
    r = await _post(
        client, seed.keys["provider"], f"/v1/placements/{pid}/accept", {"occurred_at": at}
    )
    assert r.status_code == 200, r.text


async def test_respite_and_observation_beds_are_searchable_and_guaranteed(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    respite = await add_unit(
        db,
        settings,
        seed.locations["leiden"],
        name="Logeeropvang",
        care_type=CareType.RESPITE,
        free=3,
    )
    observation = await add_unit(
        db,
        settings,
        seed.locations["leiden"],
        name="Observatie",
        care_type=CareType.OBSERVATION,
        free=3,
    )
    found = await client.get(
        "/v1/availability",
        params={"care_type": "respite", "subregion": "leiden"},
        headers=auth(seed.keys["triagist"]),
    )
    assert found.status_code == 200, found.text
    assert [x["unit_id"] for x in found.json()["items"]] == [str(respite)]

    # within: requested 40 h ago, placed 20 h later; late: requested 40 h ago, placed after 30 h;
    # overdue: open for 30 h; pending: open for 2 h; cancelled; an ELV request does not count.
    within = await _respite_request(client, seed, "respite", 40)
    await _place(client, seed, within, str(respite), 20)
    late = await _respite_request(client, seed, "observation", 40)
    await _place(client, seed, late, str(observation), 10)
    await _respite_request(client, seed, "observation", 30)
    await _respite_request(client, seed, "respite", 2)
    gone = await _respite_request(client, seed, "respite", 3)
    r = await _post(
        client, seed.keys["referrer"], f"/v1/placements/{gone}/cancel", {"reason": "recovered"}
    )
    assert r.status_code == 200, r.text
    await create_placements(db, settings, seed, 2)

    r = await client.get(
        "/v1/kpis/admission-guarantee", params=PERIOD, headers=auth(seed.keys["triagist"])
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kpi"] == "admission_guarantee"
    total = body["total"]
    assert (total["requests"], total["within"], total["late"]) == (5, 1, 1)
    assert (total["open_overdue"], total["open_within"], total["cancelled"]) == (1, 1, 1)
    assert total["share"] == 1 / 3
    assert body["targets"][0]["rule"] == "share placed within 24 h >= 1.00"
    assert body["targets"][0]["on_track"] is False

    by_type = await client.get(
        "/v1/kpis/admission-guarantee",
        params={**PERIOD, "group_by": "care_type"},
        headers={**auth(seed.keys["admin"]), "Accept": "text/csv"},
    )
    assert by_type.status_code == 200
    assert by_type.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(by_type.text)))
    assert [(x["line"], x["group"], x["requests"], x["within"]) for x in lines] == [
        ("row", "observation", "2", "0"),
        ("row", "respite", "3", "1"),
        ("total", "", "5", "1"),
    ]

    # analysts see small cells suppressed; a non-guaranteed care type is a 422
    analyst = (
        await client.get(
            "/v1/kpis/admission-guarantee",
            params={**PERIOD, "group_by": "care_type"},
            headers=auth(seed.keys["analyst"]),
        )
    ).json()
    assert [(x["group"], x["suppressed"], x["share"]) for x in analyst["rows"]] == [
        ("observation", True, None),
        ("respite", True, None),
    ]
    assert (analyst["total"]["requests"], analyst["suppressed_cells"]) == (5, 2)
    bad = await client.get(
        "/v1/kpis/admission-guarantee",
        params={**PERIOD, "care_type": "elv_high"},
        headers=auth(seed.keys["triagist"]),
    )
    assert "query:care_type" in pointers(assert_problem(bad, 422))
    assert_problem(
        await client.get(
            "/v1/kpis/admission-guarantee", params=PERIOD, headers=auth(seed.keys["provider"])
        ),
        403,
    )


async def test_acute_vvt_is_a_fourth_inflow_source_with_its_own_contact_types(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    start = TODAY - timedelta(days=3)
    line = {
        "period_start": start.isoformat(),
        "period_end": TODAY.isoformat(),  # a 3-day line: counts on its start date
        "subregion": "leiden",
        "age_band": "85+",
        "urgency_native": "UUL4",
        "contact_type": "acute_admission",
        "count": 6,
    }
    report = {
        "source": "vvt_acute",
        "lines": [
            line,
            {**line, "contact_type": "acute_home_visit", "count": 4},
            {**line, "contact_type": "information_call", "count": 50},
        ],
    }
    key = auth(seed.keys["provider"])  # a VVT organisation reports its acute admissions
    r = await client.post("/v1/inflow-reports", json=report, headers=key)
    assert r.status_code == 200, r.text
    body = (
        await client.get(
            "/v1/kpis/inflow",
            params={**PERIOD, "age_min": 75},
            headers=auth(seed.keys["triagist"]),
        )
    ).json()
    assert [(x["source"], x["count"]) for x in body["totals"]] == [("vvt_acute", 10)]
    assert body["targets"] == []  # the region steers inflow to acute VVT: no cap
    # a contact type of another source, or one no source knows, is a 422 on the line
    for contact_type in ("deployment", "walk_in"):
        bad = {**report, "lines": [{**line, "contact_type": contact_type}]}
        r = await client.post("/v1/inflow-reports", json=bad, headers=key)
        assert "#/lines/0/contact_type" in pointers(assert_problem(r, 422)), contact_type
    # a hospital key cannot report acute VVT inflow
    r = await client.post("/v1/inflow-reports", json=report, headers=auth(seed.keys["referrer"]))
    assert "#/source" in pointers(assert_problem(r, 422))


async def test_ambulance_rides_of_all_ages_have_their_own_target(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    admin = auth(seed.keys["admin"])
    r = await client.post(
        "/v1/organisations",
        json={"name": "RAV Haaglanden", "kind": "rav", "region_id": str(seed.region_id)},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    rav = r.json()["id"]
    year = TODAY.year
    start = date(year, 1, 1)
    lines = [
        {
            "period_start": start.isoformat(),
            "period_end": (start + timedelta(days=31)).isoformat(),
            "age_band": band,
            "urgency_native": "A1",
            "contact_type": "deployment",
            "count": n,
        }
        for band, n in (("18-64", 800), ("75-84", 300))
    ]
    r = await client.post(
        "/v1/inflow-reports",
        json={"source": "rav", "organisation_id": rav, "lines": lines},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    baselines = [
        {"kpi": "inflow", "year": 2022, "scope": "rav/all-ages", "value": 10_000, "source": "RAV"},
        {"kpi": "inflow", "year": 2022, "scope": "rav", "value": 4_000, "source": "RAV 75+"},
    ]
    assert (await client.put("/v1/kpi-baselines", json=baselines, headers=admin)).status_code == 200
    period = {"from": start.isoformat(), "to": date(year + 1, 1, 1).isoformat()}
    all_ages = (await client.get("/v1/kpis/inflow", params=period, headers=admin)).json()
    assert [(x["source"], x["count"]) for x in all_ages["totals"]] == [("rav", 1100)]
    [target] = all_ages["targets"]
    progress = min(max(year - 2022, 0), 3) / 3
    assert target["scope"] == "rav/all-ages"
    assert target["value"] == 10_000 * (1 - 0.10 * progress)
    assert (target["measured"], target["on_track"]) == (1100.0, True)
    aged = (
        await client.get("/v1/kpis/inflow", params={**period, "age_min": 75}, headers=admin)
    ).json()
    assert [t["scope"] for t in aged["targets"]] == ["rav"]  # the 75+ target, not the all-ages one
    assert aged["totals"][0]["count"] == 300


async def test_wrong_bed_days_in_ggz_clinics_are_counted_apart(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    ready = (utcnow() - timedelta(days=3, hours=1)).isoformat()
    await create_placements(db, settings, seed, 2, medically_ready_at=ready)
    await create_placements(
        db, settings, seed, 3, medically_ready_at=ready, origin_setting="ggz_clinic"
    )
    r = await client.get(
        "/v1/kpis/wrong-bed-days",
        params={**PERIOD, "group_by": "source"},
        headers=auth(seed.keys["triagist"]),
    )
    assert r.status_code == 200, r.text
    now = utcnow()
    per_patient = f.local_day(now) - f.local_day(now - timedelta(days=3, hours=1))
    assert [(x["group"], x["patients"], x["days"]) for x in r.json()["rows"]] == [
        ("ggz_clinic", 3, 3 * per_patient),
        ("hospital_ward", 2, 2 * per_patient),
    ]
    # medically ready is for in-patients only
    bad = placement_body(medically_ready_at=ready, origin_setting="home")
    r = await client.post("/v1/placements", json=bad, headers=auth(seed.keys["referrer"]))
    assert "#/medically_ready_at" in pointers(assert_problem(r, 422))


async def test_demand_forecast_per_care_type_and_subregion_next_to_capacity(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    # 35 days of history in Leiden: two ELV requests on Mondays, one on the other days.
    created = 0
    for days_ago in range(1, 36):
        at = utcnow() - timedelta(days=days_ago)
        n = 2 if f.local_date(at).weekday() == 0 else 1
        await create_placements(
            db, settings, seed, n, subregion="leiden", occurred_at=at.isoformat()
        )
        created += n
    await create_placements(db, settings, seed, 3, subregion="leiden")  # today: not history
    r = await client.get(
        "/v1/forecast/demand",
        params={"history_days": 35, "subregion": "leiden"},
        headers=auth(seed.keys["analyst"]),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["history"]["to"] == TODAY.isoformat()
    assert body["history"]["days"] == 35
    series = {(s["care_type"], s["subregion"]): s for s in body["series"]}
    assert set(series) == {("elv_high", "leiden"), ("grz", "leiden")}
    elv = series["elv_high", "leiden"]
    assert elv["history_requests"] == created
    assert elv["method"] == "holt_winters_damped"
    assert elv["capacity"] == {"units": 1, "available": 2, "closed_units": 0, "stale_units": 0}
    assert [d["date"] for d in elv["days"]] == [
        (TODAY + timedelta(days=i)).isoformat() for i in range(14)
    ]
    for d in elv["days"]:
        assert 0 <= d["lower"] <= d["expected"] <= d["upper"]
        weekday = date.fromisoformat(d["date"]).weekday()
        assert abs(d["expected"] - (2 if weekday == 0 else 1)) < 0.6, d
    assert elv["backtest"]["train_days"] == 26
    assert elv["backtest"]["test_days"] == 9
    grz = series["grz", "leiden"]  # a unit but no requests: zero demand next to 4 places
    assert grz["history_requests"] == 0
    assert grz["capacity"]["available"] == 4
    assert {d["expected"] for d in grz["days"]} == {0.0}
    assert body["total"]["history_requests"] == created
    assert body["total"]["capacity"]["available"] == 6

    key = auth(seed.keys["triagist"])
    for params, pointer in (
        ({"history_days": 7}, "query:history_days"),
        ({"care_type": "beds"}, "query:care_type"),
        ({"subregion": "atlantis"}, "query:subregion"),
    ):
        bad = await client.get("/v1/forecast/demand", params=params, headers=key)
        assert pointer in pointers(assert_problem(bad, 422)), params
    assert_problem(
        await client.get("/v1/forecast/demand", headers=auth(seed.keys["referrer"])), 403
    )


async def test_the_openapi_document_lists_contact_types_care_types_and_origins(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    line = schemas["InflowLineIn"]["properties"]
    contact = set(line["contact_type"]["enum"])
    assert {c for types in f.CONTACT_TYPES.values() for c in types} == contact
    assert "counts on this date" in line["period_start"]["description"]
    assert set(schemas["InflowReportIn"]["properties"]["source"]["enum"]) == set(f.INFLOW_SOURCES)
    assert {"respite", "observation"} <= set(schemas["CareType"]["enum"])
    assert "ggz_clinic" in schemas["OriginSetting"]["enum"]
    assert "/v1/kpis/admission-guarantee" in doc["paths"]
    assert "/v1/forecast/demand" in doc["paths"]
