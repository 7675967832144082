"""The KPI dashboard and the ROAZ report page over HTTP: the state is in the query string, the
downloads carry the API's figures, bad input is an error page, and only analysts (and admins)
get in."""

from __future__ import annotations

import csv
import io

import httpx
from openpyxl import load_workbook

from app.config import Settings
from app.db import Database
from app.enums import Role
from tests.api.test_reports import MONTH, seed_month
from tests.conftest import auth
from tests.factories import Seed, add_person
from tests.web.helpers import web_login


async def test_the_dashboard_downloads_equal_the_api_for_the_same_query(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    await seed_month(db, settings, seed, 7)
    person = await add_person(db, Role.ANALYST, None)
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
    person = await add_person(db, Role.ANALYST, None)
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
