"""The analyst's pages in Chromium: the KPI dashboard (period and grouping change the chart and
the table, the CSV and XLSX downloads equal the API's figures, suppressed cells say so) and the
monthly ROAZ report (its figures equal /v1/reports/roaz, it prints on A4), axe, Dutch and English.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from openpyxl import load_workbook
from playwright.async_api import Page, expect
from sqlalchemy import select

from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.flows import simulate
from app.flows.demo import load_demo
from app.kpi import formulas as f
from app.registry.models import Organisation
from app.web import dashboard as dash
from tests.api.test_reports import MONTH, ready_at
from tests.browser.conftest import SCREENSHOTS, LiveServer
from tests.browser.helpers import assert_accessible, login
from tests.conftest import truncate_all
from tests.factories import Seed, add_person, create_placements


async def _seed(db: Database, settings: Settings, seed: Seed) -> None:
    """Seven 75+ patients waiting in Leiden, two in Gouda (a small cell), all this month."""
    ready = ready_at(utcnow()).isoformat()
    for subregion, n in (("leiden", 7), ("gouda", 2)):
        await create_placements(
            db, settings, seed, n, medically_ready_at=ready, subregion=subregion
        )


async def _chart_labels(page: Page) -> list[str]:
    await expect(page.locator("#kpi-chart")).to_have_attribute("data-ready", "true")
    labels: list[str] = await page.evaluate(
        "() => window.Chart.getChart(document.getElementById('kpi-chart')).data.labels"
    )
    return labels


async def _table_groups(page: Page) -> list[str]:
    return [
        await row.get_attribute("data-group") or ""
        for row in await page.locator("#kpi-table tbody tr[data-group]").all()
    ]


async def _api(live_server: LiveServer, key: str, path: str, params: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=live_server.url) as api:
        r = await api.get(
            path, params=params, headers={"Authorization": f"Bearer {key}", "Accept": "text/csv"}
        )
    assert r.status_code == 200, r.text
    return r.text


def _cell(value: object) -> object:
    """A spreadsheet or CSV cell for comparing: numbers as floats, empty as ''."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return str(value)
    try:
        return float(str(value))
    except ValueError:
        return str(value)


async def _download(page: Page, link: str) -> Path:
    async with page.expect_download() as info:
        await page.click(link)
    download = await info.value
    path = await download.path()
    assert path is not None
    return Path(path)


async def test_an_analyst_switches_period_and_grouping_and_downloads_what_is_shown(
    page: Page, live_server: LiveServer, db: Database, settings: Settings, seed: Seed
) -> None:
    await _seed(db, settings, seed)
    person = await add_person(db, Role.ANALYST, seed.organisations["rap"], name="Anouk")
    await login(page, person)
    await expect(page).to_have_url(re.compile(r"/ui/kpis$"))
    await expect(page.locator("h1")).to_have_text("Indicatoren")
    # The default view: wrong-bed days of 75+ this month, by week.
    await expect(page.locator("#kpi-title")).to_contain_text("Verkeerde-beddagen")
    weeks = await _chart_labels(page)
    assert weeks == await _table_groups(page)
    assert all(re.fullmatch(r"\d{4}-W\d{2}", w) for w in weeks), weeks
    await assert_accessible(page)

    # Split by subregion: the chart and the table now have Leiden and Gouda (suppressed).
    await page.select_option("#group_by", "subregion")
    async with page.expect_navigation():
        await page.click("#kpi-show")
    assert "group_by=subregion" in page.url
    groups = await _table_groups(page)
    assert sorted(groups) == ["gouda", "leiden"]
    assert await _chart_labels(page) == groups
    gouda = page.locator("#kpi-table tr[data-group='gouda']")
    await expect(gouda.locator("td").first).to_have_text("afgeschermd (< 5)")
    leiden = page.locator("#kpi-table tr[data-group='leiden']")
    await expect(leiden.locator("td").nth(1)).to_have_text("7")  # patients
    days = await page.evaluate(
        "() => window.Chart.getChart(document.getElementById('kpi-chart')).data.datasets[0].data"
    )
    per_patient = f.local_day(utcnow()) - f.local_day(ready_at(utcnow()))
    # the suppressed cell is a gap in the chart, never a number
    assert dict(zip(groups, days, strict=True)) == {"gouda": None, "leiden": 7 * per_patient}

    # The year, by month: twelve points.
    await page.select_option("#span", "year")
    await page.select_option("#group_by", "month")
    async with page.expect_navigation():
        await page.click("#kpi-show")
    year = MONTH[:4]
    assert await _chart_labels(page) == [f"{year}-{m:02d}" for m in range(1, 13)]
    assert await _table_groups(page) == [f"{year}-{m:02d}" for m in range(1, 13)]
    await expect(page.locator("#period")).to_have_value(year)

    # The downloads are the API's answer to the same question.
    params = {
        "from": f"{year}-01-01",
        "to": f"{int(year) + 1}-01-01",
        "group_by": "month",
        "age_min": "75",
        "definition": "broad",
    }
    expected = await _api(live_server, seed.keys["analyst"], "/v1/kpis/wrong-bed-days", params)
    got_csv = (await _download(page, "#download-csv")).read_text(encoding="utf-8")
    assert got_csv == expected
    xlsx = (await _download(page, "#download-xlsx")).read_bytes()
    sheet = load_workbook(io.BytesIO(xlsx)).active
    assert sheet is not None
    rows: list[list[Any]] = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert [[_cell(v) for v in r] for r in rows] == [
        [_cell(v) for v in r] for r in csv.reader(io.StringIO(expected))
    ]
    total = next(r for r in rows if r[4] == "total")
    assert total[rows[0].index("days")] == 9 * per_patient  # Gouda's 2 patients count too
    await assert_accessible(page)

    # The URL is the whole state: another person opening it sees the same view, in English.
    shared = page.url
    await page.goto(shared + "&lang=en")
    await expect(page.locator("#kpi-title")).to_contain_text("Wrong-bed days")
    await expect(page.locator("#span")).to_have_value("year")
    await expect(page.locator("#group_by")).to_have_value("month")
    await assert_accessible(page)

    # Every KPI of the API has a tab that draws a chart and passes axe; rows without a group
    # are named by their day (several care types of one day are one point of the chart).
    tabs = page.locator("nav.kpi-tabs a")
    assert await tabs.count() == len(dash.KPIS)
    for kpi in dash.KPIS[1:]:
        await page.goto(f"/ui/kpis?kpi={kpi}&span=month&period={MONTH}&group_by=week&lang=nl")
        table = list(dict.fromkeys(await _table_groups(page)))
        assert await _chart_labels(page) == table or kpi == "inflow", kpi
        await assert_accessible(page)
        if kpi in ("between_the_cracks", "wlz_crisis_waiting", "shortage"):
            view = dash.parse_view(
                {"kpi": kpi, "span": "month", "period": MONTH, "group_by": "week"},
                today=f.local_date(utcnow()),
            )
            key = seed.keys["analyst"]
            expected = await _api(live_server, key, view.endpoint, view.api_params())
            got = (await _download(page, "#download-csv")).read_text(encoding="utf-8")
            assert got == expected, kpi
    await page.goto(f"/ui/kpis?kpi=lead_times&span=month&period={MONTH}&group_by=patient_group")
    await expect(page.locator("#group_by")).to_have_value("patient_group")
    await expect(page.locator("#kpi-table caption")).to_contain_text("patiëntgroep")
    await page.goto(f"/ui/kpis?kpi=wrong_bed_days&span=month&period={MONTH}&group_by=subregion")
    await _chart_labels(page)
    await page.screenshot(path=str(SCREENSHOTS / "kpi-dashboard.png"), full_page=True)


async def _simulate_last_month(db: Database, settings: Settings) -> str:
    """The demo region with the last ten days of last month simulated through the services
    (referrals, declines, escalations, capacity and inflow reports); the month as YYYY-MM."""
    first = f.local_date(utcnow()).replace(day=1)
    start = (first - timedelta(days=1)).replace(day=1)
    end = f.local_midnight(first)
    await truncate_all(db)
    async with db.sessionmaker() as session:
        await load_demo(
            session,
            simulate.SIMULATOR,
            now=f.local_midnight(start) - timedelta(hours=1),
            settings=settings,
        )
        await session.commit()
    await simulate.simulate(db, settings, days=10, seed=12, end=end, referrals_per_day=8)
    return f"{start:%Y-%m}"


async def test_the_roaz_report_of_a_simulated_month_equals_the_api_and_prints_on_a4(
    page: Page, live_server: LiveServer, db: Database, settings: Settings
) -> None:
    month = await _simulate_last_month(db, settings)
    async with db.sessionmaker() as session:  # KPIs are scoped to the analyst's own region
        desk = await session.scalar(select(Organisation.id).where(Organisation.kind == "rap"))
    person = await add_person(db, Role.ANALYST, desk)
    await login(page, person, next_path=f"/ui/reports/roaz?month={month}")
    await expect(page.locator("h1")).to_have_text(f"ROAZ-maandrapportage {month}")
    r = await page.request.get(f"/v1/reports/roaz?month={month}")  # the person's session
    assert r.status == 200, await r.text()
    report = await r.json()
    assert report["complete"] is True
    shown = {
        await row.get_attribute("data-figure"): (
            await row.get_attribute("data-value"),
            await row.get_attribute("data-suppressed"),
            await row.get_attribute("data-last-year"),
        )
        for row in await page.locator("#roaz-figures tbody tr").all()
    }
    assert shown == {
        x["key"]: (_attr(x["value"]), str(x["suppressed"]).lower(), _attr(x["last_year"]))
        for x in report["figures"]
    }
    assert report["figures"][0]["value"] > 0  # a simulated month has wrong-bed days
    assert len(report["subregions"]) >= 2
    for sub in report["subregions"]:
        row = page.locator(f"#roaz-subregions tr[data-subregion='{sub['subregion']}']")
        for key, cell in sub["figures"].items():
            await expect(row.locator(f"td[data-figure='{key}']")).to_have_attribute(
                "data-value", _attr(cell["value"])
            )
    reasons = [
        (await row.get_attribute("data-reason"), int(await row.get_attribute("data-count") or 0))
        for row in await page.locator("#roaz-declines tbody tr").all()
    ]
    assert reasons == [(x["reason"], x["count"]) for x in report["top_decline_reasons"]]
    assert reasons, "a simulated month has declines"
    for field in ("requests", "escalated", "to_region"):
        await expect(page.locator(f"tr[data-escalation='{field}']")).to_have_attribute(
            "data-value", _attr(report["escalations"][field])
        )
    await expect(page.locator("[data-stale-share]")).to_have_attribute(
        "data-stale-share", _attr(report["stale_capacity_share"])
    )
    await expect(page.locator("[data-definition-version]").first).to_have_text(
        report["definition_version"]
    )
    await assert_accessible(page)
    await page.screenshot(path=str(SCREENSHOTS / "roaz-report.png"), full_page=True)

    # Printed: no navigation or form, A4 pages, a few at most.
    await page.emulate_media(media="print")
    await expect(page.locator(".site-header")).to_be_hidden()
    await expect(page.locator(".report-actions")).to_be_hidden()
    pdf = await page.pdf(prefer_css_page_size=True, print_background=True)
    assert pdf.startswith(b"%PDF")
    sizes = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)
    assert sizes, "no pages"
    assert {(round(float(w)), round(float(h))) for w, h in sizes} == {(595, 842)}  # A4 in pt
    assert len(sizes) <= 3
    await page.emulate_media(media="screen")

    await page.goto(f"/ui/reports/roaz?month={month}&lang=en")
    await expect(page.locator("h1")).to_have_text(f"ROAZ monthly report {month}")
    await assert_accessible(page)


def _attr(value: object) -> str:
    return "" if value is None else str(value)


async def test_the_roaz_report_shows_small_cells_as_suppressed(
    page: Page, db: Database, settings: Settings, seed: Seed
) -> None:
    await _seed(db, settings, seed)
    person = await add_person(db, Role.ANALYST, seed.organisations["rap"])
    await login(page, person, next_path=f"/ui/reports/roaz?month={MONTH}")
    gouda = page.locator("#roaz-subregions tr[data-subregion='gouda']")
    await expect(gouda.locator("td[data-figure='wrong_bed_days']")).to_have_text(
        "afgeschermd (< 5)"
    )
    await expect(gouda.locator("td[data-figure='wrong_bed_days']")).to_have_attribute(
        "data-value", ""
    )
    leiden = page.locator("#roaz-subregions tr[data-subregion='leiden']")
    await expect(leiden.locator("td[data-figure='wrong_bed_patients']")).to_have_text("7")
    await expect(page.locator("tr[data-figure='wrong_bed_patients']")).to_have_attribute(
        "data-value", "9.0"
    )
