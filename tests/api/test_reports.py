"""GET /v1/reports/roaz: the month's figures equal the KPI endpoints' for the same month, the
baseline and target come from the loaded baselines, a bad month is a 422 naming it, and only
analysts and admins read it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.db import Database, utcnow
from app.kpi import formulas as f
from tests.conftest import auth
from tests.factories import Seed, create_placements
from tests.helpers import assert_problem, pointers

NOW = utcnow()
MONTH_START = f.local_date(NOW).replace(day=1)
MONTH = f"{MONTH_START:%Y-%m}"


def ready_at(now: datetime) -> datetime:
    """Three days ago, or just after the month began when that is later."""
    return max(now - timedelta(days=3), f.local_midnight(MONTH_START) + timedelta(hours=1))


async def seed_month(db: Database, settings: Settings, seed: Seed, n: int) -> None:
    await create_placements(
        db,
        settings,
        seed,
        n,
        medically_ready_at=ready_at(utcnow()).isoformat(),
        subregion="leiden",
    )


def measure(body: dict[str, Any], figure: dict[str, Any]) -> tuple[float | None, bool]:
    """The figure's number as the KPI endpoint's answer gives it."""
    if figure["kpi"] == "inflow":
        for row in body["totals"]:
            if row["source"] == figure["scope"]:
                return row["count"], row["suppressed"]
        return 0, False
    total = body["total"]
    return total[figure["measure"]], total["suppressed"]


async def test_the_report_equals_the_kpi_endpoints_for_the_month(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    baselines = [
        {"kpi": "wrong_bed_days", "year": 2022, "scope": "age75+/broad", "value": 8000.0},
        {"kpi": "inflow", "year": 2022, "scope": "seh", "value": 36500.0},
    ]
    r = await client.put(
        "/v1/kpi-baselines",
        json=[{**b, "source": "demo"} for b in baselines],
        headers=auth(seed.keys["admin"]),
    )
    assert r.status_code == 200, r.text
    await seed_month(db, settings, seed, 6)
    r = await client.get(
        "/v1/reports/roaz", params={"month": MONTH}, headers=auth(seed.keys["analyst"])
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["month"] == MONTH
    assert report["definition_version"] == f.DEFINITION_VERSION
    assert report["period"]["from"] == MONTH_START.isoformat()
    assert (
        report["last_year_period"]["from"]
        == MONTH_START.replace(year=MONTH_START.year - 1).isoformat()
    )
    assert report["complete"] is False
    figures = {x["key"]: x for x in report["figures"]}
    assert set(figures) >= {
        "wrong_bed_days",
        "inflow_seh",
        "inflow_hap",
        "inflow_rav",
        "placement_median_minutes",
        "escalation_rate",
        "stale_share",
        "ggz_within_norm",
    }
    # Every figure is the number its KPI endpoint gives for the same month, this year and last.
    for figure in report["figures"]:
        assert figure["query"].startswith("/v1/kpis/"), figure
        k = await client.get(figure["query"], headers=auth(seed.keys["analyst"]))
        assert k.status_code == 200, k.text
        assert measure(k.json(), figure) == (figure["value"], figure["suppressed"]), figure
        last = figure["query"].replace(
            f"from={report['period']['from']}&to={report['period']['to']}",
            f"from={report['last_year_period']['from']}&to={report['last_year_period']['to']}",
        )
        k = await client.get(last, headers=auth(seed.keys["analyst"]))
        assert measure(k.json(), figure) == (figure["last_year"], figure["last_year_suppressed"])
    # ... and independently of the figure's own query: 75+ wrong-bed days of the six patients.
    k = await client.get(
        "/v1/kpis/wrong-bed-days",
        params={"from": report["period"]["from"], "to": report["period"]["to"], "age_min": 75},
        headers=auth(seed.keys["analyst"]),
    )
    wbd = k.json()
    now = utcnow()
    per_patient = f.local_day(now) - f.local_day(ready_at(now))
    assert figures["wrong_bed_days"]["value"] == wbd["total"]["days"] == 6 * per_patient
    assert figures["wrong_bed_patients"]["value"] == 6
    assert figures["wrong_bed_days"]["last_year"] == 0
    # Baseline and target: the 2022 figure scaled to the month, the target path of the year.
    (target,) = wbd["targets"]
    assert figures["wrong_bed_days"]["baseline"] == pytest.approx(8000 * target["fraction"])
    assert figures["wrong_bed_days"]["target"] == target["value"]
    assert figures["wrong_bed_days"]["on_track"] is target["on_track"]
    assert figures["inflow_seh"]["baseline"] == pytest.approx(36500 * target["fraction"])
    assert figures["inflow_hap"]["baseline"] is None
    # Per subregion: the grouped KPI answer's row.
    k = await client.get(
        "/v1/kpis/wrong-bed-days",
        params={
            "from": report["period"]["from"],
            "to": report["period"]["to"],
            "age_min": 75,
            "group_by": "subregion",
        },
        headers=auth(seed.keys["analyst"]),
    )
    rows = {row["group"]: row["days"] for row in k.json()["rows"]}
    subs = {s["subregion"]: s["figures"] for s in report["subregions"]}
    assert rows == {"leiden": 6 * per_patient}
    assert subs["leiden"]["wrong_bed_days"] == {"value": 6 * per_patient, "suppressed": False}
    e = await client.get(
        "/v1/kpis/escalations",
        params={"from": report["period"]["from"], "to": report["period"]["to"]},
        headers=auth(seed.keys["analyst"]),
    )
    assert report["escalations"] == e.json()["total"]
    assert report["stale_capacity_share"] == figures["stale_share"]["value"]


async def test_an_analyst_sees_small_cells_suppressed_in_the_report(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    await seed_month(db, settings, seed, 2)
    r = await client.get(
        "/v1/reports/roaz", params={"month": MONTH}, headers=auth(seed.keys["analyst"])
    )
    figures = {x["key"]: x for x in r.json()["figures"]}
    assert figures["wrong_bed_days"]["suppressed"] is True
    assert figures["wrong_bed_days"]["value"] is None
    assert figures["wrong_bed_patients"]["value"] is None
    assert r.json()["suppressed_cells"] >= 1
    a = await client.get(
        "/v1/reports/roaz", params={"month": MONTH}, headers=auth(seed.keys["admin"])
    )
    admin = {x["key"]: x for x in a.json()["figures"]}
    assert admin["wrong_bed_patients"] == {**admin["wrong_bed_patients"], "value": 2}


@pytest.mark.parametrize(
    ("month", "detail"),
    [
        ("2026-13", "YYYY-MM"),
        ("2026-1", "YYYY-MM"),
        ("november", "YYYY-MM"),
        ("２０２６-11", "YYYY-MM"),
        ("2015-06", "before 2016-01"),
        (f"{MONTH_START.year + 1}-01", "after the current month"),
    ],
)
async def test_a_bad_month_is_a_422_naming_it(
    client: httpx.AsyncClient, seed: Seed, month: str, detail: str
) -> None:
    r = await client.get(
        "/v1/reports/roaz", params={"month": month}, headers=auth(seed.keys["analyst"])
    )
    body = assert_problem(r, 422)
    assert pointers(body) == ["query:month"]
    assert detail in body["detail"]


async def test_a_missing_month_is_a_422(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.get("/v1/reports/roaz", headers=auth(seed.keys["analyst"]))
    assert "query:month" in pointers(assert_problem(r, 422))


@pytest.mark.parametrize("role", ["provider", "referrer", "triagist"])
async def test_only_analysts_and_admins_read_the_report(
    client: httpx.AsyncClient, seed: Seed, role: str
) -> None:
    r = await client.get("/v1/reports/roaz", params={"month": MONTH}, headers=auth(seed.keys[role]))
    assert_problem(r, 403)
    assert_problem(await client.get("/v1/reports/roaz", params={"month": MONTH}), 401)
