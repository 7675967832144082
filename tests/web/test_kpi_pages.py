"""The KPI dashboard and the ROAZ report page over HTTP: the state is in the query string, the
downloads carry the API's figures, bad input is an error page, and only analysts (and admins)
get in."""

from __future__ import annotations

import csv
import io

import httpx
from openpyxl import load_workbook

from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.kpi import formulas as f
from app.main import create_app
from app.web import dashboard as dash
from tests.api.test_report_requests import _ask, _units
from tests.api.test_reports import MONTH, seed_month
from tests.conftest import auth
from tests.factories import Seed, add_person
from tests.web.helpers import web_login


async def test_the_dashboard_downloads_equal_the_api_for_the_same_query(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    await seed_month(db, settings, seed, 7)
    person = await add_person(db, Role.ANALYST, seed.organisations["rap"])
    await web_login(client, person)
    query = {"kpi": "wrong_bed_days", "span": "month", "period": MONTH, "group_by": "subregion"}
    page = await client.get("/ui/kpis", params=query)
    assert page.status_code == 200, page.text
    assert 'id="kpi-chart-data"' in page.text
    assert 'data-group="leiden"' in page.text
    api_params = {
        "from": f"{MONTH}-01",
        "group_by": "subregion",
        "age_min": "75",
        "definition": "broad",
    }
    start = f"{MONTH}-01"
    y, m = int(MONTH[:4]), int(MONTH[5:])
    api_params["to"] = f"{y + m // 12:04d}-{m % 12 + 1:02d}-01"
    api_params["from"] = start
    api = await client.get(
        "/v1/kpis/wrong-bed-days",
        params=api_params,
        headers={**auth(seed.keys["analyst"]), "Accept": "text/csv"},
    )
    assert api.status_code == 200, api.text
    c = await client.get("/ui/kpis/export.csv", params=query)
    assert c.status_code == 200
    assert c.headers["content-disposition"].startswith("attachment;")
    assert c.text == api.text
    x = await client.get("/ui/kpis/export.xlsx", params=query)
    assert x.status_code == 200
    sheet = load_workbook(io.BytesIO(x.content)).active
    assert sheet is not None
    cells = [
        ["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)
    ]
    assert cells == list(csv.reader(io.StringIO(api.text)))


async def test_bad_dashboard_input_is_an_error_page_naming_it(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    person = await add_person(db, Role.ANALYST, seed.organisations["rap"])
    await web_login(client, person)
    for params, word in [
        ({"period": "2026-99"}, "period"),
        ({"kpi": "nope"}, "kpi"),
        ({"kpi": "capacity", "group_by": "hospital"}, "group_by"),
        ({"age_min": "x"}, "age_min"),
    ]:
        r = await client.get("/ui/kpis", params=params)
        assert r.status_code == 422, (params, r.status_code)
        assert word in r.text
    r = await client.get("/ui/reports/roaz", params={"month": "2026-13"})
    assert r.status_code == 422
    assert "YYYY-MM" in r.text


async def test_only_analysts_and_admins_open_the_kpi_pages(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    provider = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    await web_login(client, provider)
    for path in ("/ui/kpis", "/ui/kpis/export.csv", "/ui/kpis/export.xlsx", "/ui/reports/roaz"):
        r = await client.get(path)
        assert r.status_code == 403, path


def _cell(value: object) -> object:
    """A spreadsheet or CSV cell for comparing: numbers as floats (0 and 0.0), empty as ''."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return str(value)
    try:
        return float(str(value))
    except ValueError:
        return str(value)


async def test_every_kpi_the_api_has_is_a_dashboard_tab_with_the_apis_figures(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    """Each /v1/kpis/* endpoint has its tab; its table renders and its CSV and XLSX carry the
    API's figures for the same question (report requests: the API's JSON rows)."""
    await seed_month(db, settings, seed, 7)
    await _units(db, settings, seed)
    asked = await _ask(client, seed)
    assert asked.status_code == 201, asked.text
    person = await add_person(db, Role.ANALYST, seed.organisations["rap"])
    await web_login(client, person)
    paths = [p for p in create_app(settings, database=db).openapi()["paths"] if "/kpis/" in p]
    kpis = [p.removeprefix("/v1/kpis/").replace("-", "_") for p in paths]
    assert set(kpis) == set(dash.KPIS), "a KPI of the API is not on the dashboard"
    today = f.local_date(utcnow())
    non_empty = set()
    for kpi in kpis:
        query = {"kpi": kpi, "span": "month", "period": MONTH}
        page = await client.get("/ui/kpis", params=query)
        assert page.status_code == 200, (kpi, page.text)
        assert 'id="kpi-table"' in page.text
        assert 'id="kpi-chart-data"' in page.text
        for other in dash.KPIS:
            assert f"kpi={other}&amp;" in page.text, (kpi, other)
        view = dash.parse_view(query, today=today)
        exported = await client.get("/ui/kpis/export.csv", params=query)
        assert exported.status_code == 200, (kpi, exported.text)
        lines = list(csv.reader(io.StringIO(exported.text)))
        x = await client.get("/ui/kpis/export.xlsx", params=query)
        sheet = load_workbook(io.BytesIO(x.content)).active
        assert sheet is not None
        cells = [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        assert cells == [[_cell(v) for v in line] for line in lines], kpi
        headers = {**auth(seed.keys["analyst"]), "Accept": "text/csv"}
        api = await client.get(view.endpoint, params=view.api_params(), headers=headers)
        assert api.status_code == 200, (kpi, api.text)
        if kpi == "report_requests":
            body = api.json()
            header = lines[0]
            got = [dict(zip(header, line, strict=True)) for line in lines[1:]]
            assert [g["organisation_id"] for g in got] == [
                r["organisation_id"] for r in body["rows"]
            ]
            for g, r in zip(got, body["rows"], strict=True):
                assert g["targeted"] == str(r["targeted"])
                assert g["answered"] == str(r["answered"])
        else:
            assert exported.text == api.text, kpi
        if len(lines) > 2:
            non_empty.add(kpi)
    # the seed's month has figures in these, so the comparisons above compare numbers
    assert {"wrong_bed_days", "lead_times", "between_the_cracks", "report_requests"} <= non_empty
